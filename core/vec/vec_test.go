package vec

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/x448/float16"
)

func naiveDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestDotAndL2MatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 4, 7, 128, 513} {
		a := make([]float32, n)
		b := make([]float32, n)
		for i := range a {
			a[i] = r.Float32()*2 - 1
			b[i] = r.Float32()*2 - 1
		}
		if got, want := float64(Dot(a, b)), naiveDot(a, b); math.Abs(got-want) > 1e-4 {
			t.Errorf("n=%d: Dot=%v, want %v", n, got, want)
		}
		d := make([]float32, n)
		Sub(d, a, b)
		if got, want := float64(L2Sq(a, b)), naiveDot(d, d); math.Abs(got-want) > 1e-4 {
			t.Errorf("n=%d: L2Sq=%v, want %v", n, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	a := []float32{3, 4}
	if !Normalize(a) || math.Abs(float64(Norm(a))-1) > 1e-6 {
		t.Fatalf("Normalize gave %v", a)
	}
	z := []float32{0, 0}
	if Normalize(z) {
		t.Fatal("zero vector reported as normalised")
	}
}

func TestFvecsRoundTripAndErrors(t *testing.T) {
	data := []float32{1, 2, 3, 4, 5, 6}
	var buf bytes.Buffer
	if err := WriteFvecs(&buf, data, 3); err != nil {
		t.Fatal(err)
	}
	got, d, err := ParseFvecs(buf.Bytes(), "mem")
	if err != nil || d != 3 || !slices.Equal(got, data) {
		t.Fatalf("round trip: %v %d %v", got, d, err)
	}
	if _, _, err := ParseFvecs(buf.Bytes()[:buf.Len()-1], "mem"); err == nil {
		t.Error("truncated file accepted")
	}
	bad := slices.Clone(buf.Bytes())
	bad[16] = 9 // second row's width
	if _, _, err := ParseFvecs(bad, "mem"); err == nil {
		t.Error("ragged rows accepted")
	}
	dir := t.TempDir()
	var ib bytes.Buffer
	if err := WriteIvecs(&ib, [][]int32{{1, 2}, {3, 4}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "x.ivecs")
	if err := os.WriteFile(p, ib.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadIvecs(p)
	if err != nil || len(rows) != 2 || rows[1][1] != 4 {
		t.Fatalf("ivecs: %v %v", rows, err)
	}
}

func FuzzParseFvecs(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, d, err := ParseFvecs(b, "fuzz")
		if err == nil && len(data) != len(b)/(4+4*d)*d {
			t.Fatalf("%d values from %d bytes of width %d", len(data), len(b), d)
		}
	})
}

// TestDotBytes4: the four sums split the terms by j mod 4, the tail going to sum 0.
func TestDotBytes4(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	code := []byte{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 99} // one byte past len(a), ignored
	s0, s1, s2, s3 := DotBytes4(a, code)
	if s0 != 1+10+27+30 || s1 != 2+12 || s2 != 3+14 || s3 != 4+16 {
		t.Fatalf("DotBytes4 = %v %v %v %v", s0, s1, s2, s3)
	}
}

// TestDotHalf checks the half-precision inner product against float32 arithmetic over the
// rounded values, for lengths around the kernel's steps of 8 and 32, and the rounding
// itself (relative error at most 2^-11).
func TestDotHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 100, 512, 515} {
		a := make([]float32, n)
		b := make([]float32, n)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
			b[i] = float32(rng.NormFloat64()) * 0.1
		}
		h := ToHalf(b)
		var want, abs float64
		for i := range a {
			r := float64(float16.Frombits(h[i]).Float32())
			if e := math.Abs(r-float64(b[i])) / math.Abs(float64(b[i])); math.Abs(float64(b[i])) > 1e-4 && e > 1.0/2048 {
				t.Fatalf("n=%d: %v rounds to %v (relative error %g)", n, b[i], r, e)
			}
			want += float64(a[i]) * r
			abs += math.Abs(float64(a[i]) * r)
		}
		got := float64(DotHalf(a, h))
		if math.Abs(got-want) > 1e-5*(abs+1) {
			t.Errorf("n=%d: DotHalf = %v, want %v", n, got, want)
		}
		// The Go loop alone (what machines without the kernel run) agrees too.
		goOnly := float64(dotWith(a, []uint16(h), false, dotHalfKernel, halfToFloat))
		if math.Abs(goOnly-want) > 1e-5*(abs+1) {
			t.Errorf("n=%d: Go loop = %v, want %v", n, goOnly, want)
		}
	}
}

// BenchmarkMatVec512 multiplies a 512 x 512 matrix by a vector, as the query rotation of a
// transform-quantized re-rank does, with float32 rows (Dot, 1 MB) and half-precision rows
// (DotHalf, 512 KB): hot (the matrix stays cached between products) and cold (a 32 MB
// buffer is read between products, untimed, as a search's scan does between queries).
func BenchmarkMatVec512(b *testing.B) {
	const d = 512
	rng := rand.New(rand.NewPCG(1, 2))
	m := make([]float32, d*d)
	for i := range m {
		m[i] = float32(rng.NormFloat64()) / 22
	}
	x := make([]float32, d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	h := ToHalf(m)
	y := make([]float32, d)
	flush := make([]byte, 32<<20)
	var sink byte
	for _, cache := range []string{"hot", "cold"} {
		for _, rows := range []string{"float32", "half"} {
			b.Run("cache="+cache+"/rows="+rows, func(b *testing.B) {
				for b.Loop() {
					if cache == "cold" {
						b.StopTimer()
						for i := 0; i < len(flush); i += 64 {
							sink += flush[i]
						}
						b.StartTimer()
					}
					for i := range y {
						if rows == "half" {
							y[i] = DotHalf(x, h[i*d:(i+1)*d])
						} else {
							y[i] = Dot(Row(m, d, i), x)
						}
					}
				}
			})
		}
	}
	_ = sink
}

// TestDotBytes checks DotBytes, and its Go loop alone, against float64 arithmetic for
// lengths around the kernel's steps of 8 and 32.
func TestDotBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 61, 64, 100, 512} {
		a := make([]float32, n)
		code := make([]byte, n)
		var want, abs float64
		for i := range a {
			a[i] = float32(rng.NormFloat64())
			code[i] = byte(rng.IntN(256))
			want += float64(a[i]) * float64(code[i])
			abs += math.Abs(float64(a[i]) * float64(code[i]))
		}
		if got := float64(DotBytes(a, code)); math.Abs(got-want) > 1e-6*(abs+1) {
			t.Errorf("n=%d: DotBytes = %v, want %v", n, got, want)
		}
		if got := float64(dotWith(a, code, false, dotBytesKernel, byteToFloat)); math.Abs(got-want) > 1e-6*(abs+1) {
			t.Errorf("n=%d: Go loop = %v, want %v", n, got, want)
		}
	}
}

// TestQueryRows checks MulVec against float32 products of the rows, and that the zero
// value multiplies nothing.
func TestQueryRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, d = 37, 100
	rows := make([]float32, n*d)
	for i := range rows {
		rows[i] = float32(rng.NormFloat64()) / 10
	}
	x := make([]float32, d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	m := NewQueryRows(rows, d)
	if m.Half() != HalfKernel {
		t.Fatalf("Half() = %v on a machine where HalfKernel = %v", m.Half(), HalfKernel)
	}
	out := make([]float32, n)
	m.MulVec(x, out)
	for i, got := range out {
		want := Dot(Row(rows, d, i), x)
		if math.Abs(float64(got-want)) > float64(Norm(Row(rows, d, i))*Norm(x))/1024 {
			t.Errorf("row %d: MulVec %v, float32 %v", i, got, want)
		}
	}
	QueryRows{}.MulVec(nil, nil)
}
