package pq

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

func loadSIFT(t testing.TB, rows int) ([]float32, int) {
	t.Helper()
	b, err := os.ReadFile(testenv.Shared(t, "data/ann/sift10k/siftsmall_base.fvecs"))
	if err != nil {
		t.Fatal(err)
	}
	d := int(binary.LittleEndian.Uint32(b))
	rowBytes := 4 + 4*d
	n := min(len(b)/rowBytes, rows)
	out := make([]float32, 0, n*d)
	for i := 0; i < n; i++ {
		row := b[i*rowBytes+4 : (i+1)*rowBytes]
		for j := 0; j < d; j++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(row[4*j:])))
		}
	}
	return out, d
}

func randomCodes(r *rand.Rand, n, m, ksub int) []byte {
	c := make([]byte, n*m)
	for i := range c {
		c[i] = byte(r.IntN(ksub))
	}
	return c
}

func TestPackUnpackRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 31, 32, 33, 100} {
		for _, m := range []int{1, 3, 16} {
			codes := randomCodes(r, n, m, 16)
			packed, err := PackFastScan4(codes, n, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(packed) != FastScanBytes(n, m) {
				t.Fatalf("n=%d m=%d: %d bytes, want %d", n, m, len(packed), FastScanBytes(n, m))
			}
			back, err := UnpackFastScan4(packed, n, m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back, codes) {
				t.Fatalf("n=%d m=%d: round trip differs", n, m)
			}
		}
	}
	if _, err := PackFastScan4([]byte{16}, 1, 1); err == nil {
		t.Error("a 5-bit code was packed")
	}
}

// TestFastScanLayoutByHand pins the documented byte layout on a tiny example.
func TestFastScanLayoutByHand(t *testing.T) {
	const n, m = 33, 2
	codes := make([]byte, n*m)
	codes[0*m+0] = 1  // vector 0, sq 0 -> block 0, byte 0, low nibble
	codes[17*m+0] = 2 // vector 17, sq 0 -> block 0, byte 1, high nibble
	codes[5*m+1] = 3  // vector 5, sq 1 -> block 0, byte 16+5, low nibble
	codes[32*m+1] = 4 // vector 32, sq 1 -> block 1, byte 32*... = 64+16+0, low nibble
	packed, err := PackFastScan4(codes, n, m)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 2*m*16)
	want[0] = 0x01
	want[1] = 0x20
	want[16+5] = 0x03
	want[m*16+16] = 0x04
	if !slices.Equal(packed, want) {
		t.Fatalf("packed\n%x\nwant\n%x", packed, want)
	}
}

func naiveFastScan(codes []byte, n, m int, qlut []uint8) []uint16 {
	out := make([]uint16, n)
	for i := 0; i < n; i++ {
		var s int
		for j := 0; j < m; j++ {
			s += int(qlut[j*16+int(codes[i*m+j])])
		}
		out[i] = uint16(s)
	}
	return out
}

func TestFastScanMatchesNaiveAndPairTable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, m := range []int{1, 7, 64, MaxFastScanM} {
		n := 97
		codes := randomCodes(r, n, m, 16)
		qlut := make([]uint8, m*16)
		for i := range qlut {
			qlut[i] = 255 - uint8(r.IntN(3)) // near the top: exercises the no-overflow bound
		}
		packed, err := PackFastScan4(codes, n, m)
		if err != nil {
			t.Fatal(err)
		}
		nb := (n + 31) / 32
		ref := make([]uint16, nb*32)
		if err := ScanFastScan4(packed, m, qlut, ref); err != nil {
			t.Fatal(err)
		}
		if want := naiveFastScan(codes, n, m, qlut); !slices.Equal(ref[:n], want) {
			t.Fatalf("m=%d: reference scan differs from the naive sum", m)
		}
		pt, err := NewPairTable(qlut, m)
		if err != nil {
			t.Fatal(err)
		}
		fast := make([]uint16, nb*32)
		if err := pt.Scan(packed, fast); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fast, ref) {
			t.Fatalf("m=%d: pair-table scan differs from the reference", m)
		}
	}
}

func TestScanErrors(t *testing.T) {
	if err := ScanFastScan4(make([]byte, 10), 2, make([]uint8, 32), make([]uint16, 32)); err == nil {
		t.Error("short codes accepted")
	}
	if err := ScanFastScan4(make([]byte, 64), 2, make([]uint8, 32), make([]uint16, 31)); err == nil {
		t.Error("output not a multiple of 32 accepted")
	}
	if err := Scan8(make([]byte, 3), 2, make([]float32, 512), make([]float32, 2)); err == nil {
		t.Error("short 8-bit codes accepted")
	}
	if _, err := Train(make([]float32, 10*4), 4, 3, 8, kmeans.Options{}); err == nil {
		t.Error("d not a multiple of m accepted")
	}
	if _, err := Train(make([]float32, 10*4), 4, 2, 8, kmeans.Options{}); err == nil {
		t.Error("fewer training vectors than centroids accepted")
	}
	if _, err := New(4, 2, 4, make([]float32, 3)); err == nil {
		t.Error("wrong codebook size accepted")
	}
}

// TestTrainEncodeScanSIFT trains both code widths on real SIFT vectors and checks the LUT
// scans equal the distances to the decoded vectors, and that quantization beats the mean.
func TestTrainEncodeScanSIFT(t *testing.T) {
	data, d := loadSIFT(t, 2000)
	n := len(data) / d
	queries := vec.Row(data, d, 0)
	for _, bits := range []int{8, 4} {
		m := 16
		q, err := Train(data, d, m, bits, kmeans.Options{Iters: 4, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		codes := q.EncodeAll(data)
		// Reconstruction error is well below the variance around the mean.
		mean := make([]float32, d)
		for i := 0; i < n; i++ {
			for j, v := range vec.Row(data, d, i) {
				mean[j] += v / float32(n)
			}
		}
		var recErr, varErr float64
		rec := make([]float32, d)
		for i := 0; i < n; i++ {
			q.Decode(codes[i*m:(i+1)*m], rec)
			recErr += float64(vec.L2Sq(rec, vec.Row(data, d, i)))
			varErr += float64(vec.L2Sq(mean, vec.Row(data, d, i)))
		}
		if !(recErr < 0.5*varErr) {
			t.Fatalf("bits=%d: reconstruction error %.0f not below half the variance %.0f", bits, recErr, varErr)
		}
		lut := make([]float32, m*q.Ksub())
		q.L2LUT(queries, lut)
		ip := make([]float32, m*q.Ksub())
		q.InnerProductLUT(queries, -1, ip)
		for i := 0; i < 50; i++ {
			q.Decode(codes[i*m:(i+1)*m], rec)
			var l2, dot float32
			for j := 0; j < m; j++ {
				l2 += lut[j*q.Ksub()+int(codes[i*m+j])]
				dot += ip[j*q.Ksub()+int(codes[i*m+j])]
			}
			if want := vec.L2Sq(queries, rec); math.Abs(float64(l2-want)) > 1e-3*float64(want)+1e-3 {
				t.Fatalf("bits=%d vector %d: LUT L2 %v, decoded %v", bits, i, l2, want)
			}
			if want := -vec.Dot(queries, rec); math.Abs(float64(dot-want)) > 1e-3*math.Abs(float64(want))+1e-3 {
				t.Fatalf("bits=%d vector %d: LUT IP %v, decoded %v", bits, i, dot, want)
			}
		}
		if bits == 8 {
			out := make([]float32, 50)
			if err := Scan8(codes, m, lut, out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				var s float32
				for j := 0; j < m; j++ {
					s += lut[j*256+int(codes[i*m+j])]
				}
				if out[i] != s {
					t.Fatalf("Scan8[%d]=%v, want %v", i, out[i], s)
				}
			}
			continue
		}
		// 4-bit: the quantized scan approximates the float sums within the documented bound.
		qlut := make([]uint8, m*16)
		bias, scale := QuantizeLUT(lut, m, 16, qlut)
		packed, err := PackFastScan4(codes, n, m)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint16, (n+31)/32*32)
		if err := ScanFastScan4(packed, m, qlut, out); err != nil {
			t.Fatal(err)
		}
		bound := float64(m)*0.5/float64(scale) + 1e-3
		for i := 0; i < n; i++ {
			var s float32
			for j := 0; j < m; j++ {
				s += lut[j*16+int(codes[i*m+j])]
			}
			approx := bias + float32(out[i])/scale
			if math.Abs(float64(approx-s)) > bound*1.01 {
				t.Fatalf("vector %d: quantized %v, float %v, bound %v", i, approx, s, bound)
			}
		}
	}
}

func FuzzFastScanEqualsNaive(f *testing.F) {
	f.Add([]byte{1, 2, 3, 250, 17}, uint8(3))
	f.Add(make([]byte, 70), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, mm uint8) {
		m := int(mm%8) + 1
		n := len(raw) / m
		codes := make([]byte, n*m)
		qlut := make([]uint8, m*16)
		for i := range codes {
			codes[i] = raw[i] & 15
		}
		for i := range qlut {
			qlut[i] = raw[i%max(1, len(raw))] ^ byte(i)
		}
		if len(raw) == 0 {
			clear(qlut)
		}
		packed, err := PackFastScan4(codes, n, m)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint16, (n+31)/32*32)
		if err := ScanFastScan4(packed, m, qlut, out); err != nil {
			t.Fatal(err)
		}
		if want := naiveFastScan(codes, n, m, qlut); !slices.Equal(out[:n], want) {
			t.Fatal("fast-scan differs from naive")
		}
	})
}

func BenchmarkScan8(b *testing.B) {
	const n, m = 4096, 64
	r := rand.New(rand.NewPCG(1, 1))
	codes := randomCodes(r, n, m, 256)
	lut := make([]float32, m*256)
	for i := range lut {
		lut[i] = r.Float32()
	}
	out := make([]float32, n)
	b.SetBytes(n * m)
	for b.Loop() {
		_ = Scan8(codes, m, lut, out)
	}
}

func BenchmarkFastScan4(b *testing.B) {
	const n, m = 4096, 64
	r := rand.New(rand.NewPCG(1, 1))
	packed, _ := PackFastScan4(randomCodes(r, n, m, 16), n, m)
	qlut := make([]uint8, m*16)
	for i := range qlut {
		qlut[i] = uint8(r.IntN(256))
	}
	out := make([]uint16, n)
	b.Run("reference", func(b *testing.B) {
		b.SetBytes(n * m)
		for b.Loop() {
			_ = ScanFastScan4(packed, m, qlut, out)
		}
	})
	b.Run("pairtable", func(b *testing.B) {
		pt, _ := NewPairTable(qlut, m)
		b.SetBytes(n * m)
		for b.Loop() {
			_ = pt.Scan(packed, out)
		}
	})
}
