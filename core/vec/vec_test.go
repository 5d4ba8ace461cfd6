package vec

import (
	"math"
	"math/rand/v2"
	"testing"
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
