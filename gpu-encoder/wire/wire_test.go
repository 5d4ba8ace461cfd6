package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestTokensRoundTrip(t *testing.T) {
	for name, seqs := range map[string][][]int32{
		"uint16": {{1, 2, 3}, {8001}, {0, 7}},
		"int32":  {{70000, 1}, {2}},
	} {
		b := EncodeTokens(nil, seqs)
		wantDType := Uint16
		if name == "int32" {
			wantDType = Int32
		}
		if DType(b[5]) != wantDType {
			t.Errorf("%s: dtype %d", name, b[5])
		}
		got, err := DecodeTokens(b, Limits{})
		if name == "int32" {
			if err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
				t.Errorf("id 70000 accepted: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, seqs, slices.Equal) {
			t.Fatalf("%v != %v", got, seqs)
		}
	}
}

func TestTokenLimits(t *testing.T) {
	b := EncodeTokens(nil, [][]int32{{1}, {2, 3, 4}})
	if _, err := DecodeTokens(b, Limits{MaxSeqs: 1}); !errors.Is(err, ErrLimit) {
		t.Errorf("too many sequences: %v", err)
	}
	if _, err := DecodeTokens(b, Limits{MaxSeqTokens: 2}); !errors.Is(err, ErrLimit) {
		t.Errorf("sequence too long: %v", err)
	}
	// A header announcing 2^32-1 sequences must be refused without allocating for them.
	huge := append([]byte(nil), b[:8]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0xff)
	if _, err := DecodeTokens(huge, Limits{}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("huge count: %v", err)
	}
	if err := ValidateTokens([][]int32{{1}, {}}, Limits{}); err == nil || !strings.Contains(err.Error(), "sequence 1 is empty") {
		t.Errorf("empty sequence: %v", err)
	}
}

func TestEmbeddingsRoundTrip(t *testing.T) {
	vecs := [][]float32{{0.5, -0.25, 1e-7, 0.044194173}, {1, 0, -1, 0.3333333}}
	for _, dt := range []DType{Float32, Float16} {
		b := EncodeEmbeddings(nil, "fp123", vecs, dt)
		model, got, err := DecodeEmbeddings(b)
		if err != nil || model != "fp123" || len(got) != 2 {
			t.Fatalf("dtype %d: %q %v %v", dt, model, got, err)
		}
		for i := range vecs {
			for j := range vecs[i] {
				d := math.Abs(float64(got[i][j] - vecs[i][j]))
				if dt == Float32 && d != 0 || dt == Float16 && d > 1e-3*math.Abs(float64(vecs[i][j]))+1e-7 {
					t.Errorf("dtype %d: [%d][%d] = %g, want %g", dt, i, j, got[i][j], vecs[i][j])
				}
			}
		}
		wantLen := 16 + 5 + 8*4
		if dt == Float16 {
			wantLen = 16 + 5 + 8*2
		}
		if len(b) != wantLen {
			t.Errorf("dtype %d: %d bytes, want %d", dt, len(b), wantLen)
		}
	}
}

func TestJSONEmbeddingsExact(t *testing.T) {
	vecs := [][]float32{{0.1, float32(math.Pi), -3.4028235e38, 1.0e-45}, {}}
	b := AppendJSONEmbeddings(nil, "m\"x", vecs)
	var r JSONResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if r.Model != "m\"x" || !slices.Equal(r.Embeddings[0], vecs[0]) || len(r.Embeddings[1]) != 0 {
		t.Fatalf("%s decoded to %+v", b, r)
	}
}

func FuzzDecodeTokens(f *testing.F) {
	f.Add(EncodeTokens(nil, [][]int32{{1, 2, 3}, {4}}))
	f.Add(EncodeTokens(nil, [][]int32{{70000}}))
	f.Add([]byte("PSTK\x01\x01\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x05\x00"))
	f.Add([]byte("PSTK\x01\x09\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{MaxSeqs: 64, MaxSeqTokens: 128}
		seqs, err := DecodeTokens(b, lim)
		if err != nil {
			return
		}
		if err := ValidateTokens(seqs, lim); err != nil {
			t.Fatalf("decoded input fails validation: %v", err)
		}
		again, err := DecodeTokens(EncodeTokens(nil, seqs), lim)
		if err != nil || !slices.EqualFunc(again, seqs, slices.Equal) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeEmbeddings(f *testing.F) {
	f.Add(EncodeEmbeddings(nil, "fp", [][]float32{{1, 2}, {3, 4}}, Float32))
	f.Add(EncodeEmbeddings(nil, "", [][]float32{{0.5}}, Float16))
	f.Add([]byte("PSEM\x01\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		model, vecs, err := DecodeEmbeddings(b)
		if err != nil {
			return
		}
		size := 4
		if DType(b[5]) == Float16 {
			size = 2
		}
		n := 0
		for _, v := range vecs {
			n += len(v)
		}
		if len(b) != 16+len(model)+n*size {
			t.Fatalf("%d bytes decoded to %d values", len(b), n)
		}
	})
}

// BenchmarkAnswer measures writing and reading one 512-d answer in each response format:
// the service's and the pool's per-request serialization cost.
func BenchmarkAnswer(b *testing.B) {
	v := make([]float32, 512)
	for i := range v {
		v[i] = float32(math.Sin(float64(i))) * 0.044
	}
	vecs := [][]float32{v}
	b.Run("json", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = AppendJSONEmbeddings(buf[:0], "fingerprint", vecs)
			var r JSONResponse
			if err := json.Unmarshal(buf, &r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes")
	})
	for _, dt := range []DType{Float32, Float16} {
		b.Run(fmt.Sprintf("binary-dtype%d", dt), func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf = EncodeEmbeddings(buf[:0], "fingerprint", vecs, dt)
				if _, _, err := DecodeEmbeddings(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
	}
}
