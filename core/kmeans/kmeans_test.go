package kmeans

import (
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

// loadSIFT reads the SIFT10K base vectors (fvecs: int32 dim, then dim float32s per row).
func loadSIFT(t *testing.T) ([]float32, int) {
	t.Helper()
	b, err := os.ReadFile(testenv.Shared(t, "data/ann/sift10k/siftsmall_base.fvecs"))
	if err != nil {
		t.Fatal(err)
	}
	d := int(binary.LittleEndian.Uint32(b))
	rowBytes := 4 + 4*d
	n := len(b) / rowBytes
	out := make([]float32, 0, n*d)
	for i := 0; i < n; i++ {
		row := b[i*rowBytes+4 : (i+1)*rowBytes]
		for j := 0; j < d; j++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(row[4*j:])))
		}
	}
	return out, d
}

func inertia(data []float32, d int, cent []float32) float64 {
	n := len(data) / d
	assign := make([]int32, n)
	dist := make([]float32, n)
	Assign(data, d, cent, assign, dist, 2)
	var s float64
	for _, v := range dist {
		s += float64(v)
	}
	return s / float64(n)
}

func TestTrainSIFTReducesInertiaAndIsDeterministic(t *testing.T) {
	data, d := loadSIFT(t)
	data = data[:3000*d] // keeps the race-enabled run short
	k := 32
	c1, err := Train(data, d, k, Options{Iters: 8, Seed: 7, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Train(data, d, k, Options{Iters: 8, Seed: 7, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c1, c2) {
		t.Fatal("same seed, different worker counts: centroids differ")
	}
	// One Lloyd step from the k-means++ seeds must not beat the converged clustering.
	c0, err := Train(data, d, k, Options{Iters: 1, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	i0, i8 := inertia(data, d, c0), inertia(data, d, c1)
	if !(i8 < i0) {
		t.Fatalf("inertia after 8 iterations %.0f is not below the 1-iteration %.0f", i8, i0)
	}
	// Every centroid is used.
	n := len(data) / d
	assign := make([]int32, n)
	Assign(data, d, c1, assign, make([]float32, n), 2)
	used := make([]bool, k)
	for _, a := range assign {
		used[a] = true
	}
	for c, u := range used {
		if !u {
			t.Errorf("centroid %d has no points", c)
		}
	}
	if got := Nearest(vec.Row(data, d, 5), c1); got != int(assign[5]) {
		t.Errorf("Nearest=%d, Assign=%d", got, assign[5])
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		data []float32
		d, k int
	}{
		{"zero dim", []float32{1, 2}, 0, 1},
		{"ragged", []float32{1, 2, 3}, 2, 1},
		{"too few points", []float32{1, 2}, 2, 2},
		{"nan", []float32{float32(math.NaN()), 1}, 1, 1},
		{"k zero", []float32{1, 2}, 1, 0},
	}
	for _, c := range cases {
		if _, err := Train(c.data, c.d, c.k, Options{}); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestDuplicatePointsStillGiveKCentroids(t *testing.T) {
	data := make([]float32, 40) // 20 identical 2-d points
	cent, err := Train(data, 2, 4, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(cent) != 8 {
		t.Fatalf("got %d values, want 8", len(cent))
	}
}
