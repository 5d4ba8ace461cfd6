package train

import (
	"math/rand/v2"
	"testing"
)

func TestBatchesHaveNoDuplicates(t *testing.T) {
	// 300 pairs over 100 episodes (3 queries each, as the pairs command makes), some query
	// texts repeated across episodes.
	var keys []string
	var eps []int
	for e := 0; e < 100; e++ {
		for k := 0; k < 3; k++ {
			eps = append(eps, e)
			keys = append(keys, string(rune('a'+(e*3+k)%37)))
		}
	}
	batches := Batches(keys, eps, 16, rand.New(rand.NewPCG(1, 2)))
	seen := map[int]bool{}
	for bi, b := range batches {
		if len(b) < 2 || len(b) > 16 {
			t.Fatalf("batch %d has %d pairs", bi, len(b))
		}
		qs, es := map[string]bool{}, map[int]bool{}
		for _, p := range b {
			if qs[keys[p]] || es[eps[p]] {
				t.Fatalf("batch %d repeats a query or an episode", bi)
			}
			qs[keys[p]], es[eps[p]] = true, true
			if seen[p] {
				t.Fatalf("pair %d in two batches", p)
			}
			seen[p] = true
		}
	}
	// 37 distinct query texts cap a batch at 16 easily; nearly every pair must be used.
	if len(seen) < 290 {
		t.Errorf("only %d of 300 pairs batched", len(seen))
	}
	again := Batches(keys, eps, 16, rand.New(rand.NewPCG(1, 2)))
	if len(again) != len(batches) || again[0][0] != batches[0][0] {
		t.Error("same seed gave different batches")
	}
}

func TestBatchesAllSameEpisode(t *testing.T) {
	if b := Batches(nil, []int{4, 4, 4}, 8, rand.New(rand.NewPCG(1, 1))); len(b) != 0 {
		t.Errorf("pairs of one episode made batches: %v", b)
	}
}
