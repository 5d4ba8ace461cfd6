package index

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestCandidatesMatchTopK offers the same entries, with many tied distances, to the scan's
// buffered candidates and to the heap: both keep the same k smallest, in the same order.
func TestCandidatesMatchTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		k := 1 + r.IntN(40)
		n := r.IntN(20 * k)
		levels := 1 + r.IntN(50) // few levels: many ties in dist, settled by key
		var h topK
		var c candidates
		h.reset(k)
		c.reset(k)
		for i := range n {
			x := entry{dist: float32(r.IntN(levels)), key: uint64(r.IntN(3 * n)), doc: uint32(i)}
			if c.admits(x.dist) {
				c.push(x)
			}
			h.push(x)
		}
		want := h.sorted()
		got := c.sorted()
		if !slices.EqualFunc(got, want, func(a, b entry) bool { return a.dist == b.dist && a.key == b.key }) {
			t.Fatalf("trial %d (k %d, n %d): candidates %v, heap %v", trial, k, n, got, want)
		}
	}
}

// TestKthSmallest checks the float selection against a sort, with and without ties.
func TestKthSmallest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 1 + r.IntN(300)
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.IntN(1+trial%9)) + float32(r.NormFloat64())*float32(trial%2)
		}
		k := r.IntN(n)
		sorted := slices.Clone(d)
		slices.Sort(sorted)
		if got := kthSmallest(d, k); got != sorted[k] {
			t.Fatalf("trial %d: element %d of %d sorted: got %v, want %v", trial, k, n, got, sorted[k])
		}
		keys := make([]uint64, n) // the keys of tied entries, with repeats
		for i := range keys {
			keys[i] = uint64(r.IntN(1 + n/2))
		}
		sortedKeys := slices.Clone(keys)
		slices.Sort(sortedKeys)
		if got := kthSmallest(keys, k); got != sortedKeys[k] {
			t.Fatalf("trial %d: key %d of %d sorted: got %v, want %v", trial, k, n, got, sortedKeys[k])
		}
	}
}

// BenchmarkKthSmallest selects the 200th of 400 distances, as a cut of the candidate buffer
// does at k = 200: distinct values, and quantized ones with many ties.
func BenchmarkKthSmallest(b *testing.B) {
	for _, levels := range []int{5000, 60} {
		b.Run("levels="+strconv.Itoa(levels), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			src := make([][]float32, 64)
			for i := range src {
				src[i] = make([]float32, 400)
				for j := range src[i] {
					src[i][j] = float32(r.IntN(levels)) * 0.013
				}
			}
			buf := make([]float32, 400)
			i := 0
			for b.Loop() {
				copy(buf, src[i%len(src)])
				kthSmallest(buf, 199)
				i++
			}
		})
	}
}
