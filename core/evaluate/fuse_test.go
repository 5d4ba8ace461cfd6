package evaluate

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/podsearch/podsearch/core/index"
)

// TestFuseMatchesIndexFuse checks that the min-max and RRF fusions rank as core/index.Fuse
// (what the index and the edge serve) on random candidate lists without ties.
func TestFuseMatchesIndexFuse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		var l SideLists
		mk := func(n int) []ScoredDoc {
			perm := r.Perm(40)[:n]
			list := make([]ScoredDoc, n)
			s := float32(10)
			for i, d := range perm {
				s -= float32(r.Float64()) + 0.01
				list[i] = ScoredDoc{d, s}
			}
			return list
		}
		l.Dense = [][]ScoredDoc{mk(20)}
		l.Keyword = [][]ScoredDoc{mk(1 + r.IntN(20))}
		for _, c := range []struct {
			norm   Norm
			fusion index.Fusion
		}{{NormMinMax, index.Convex}, {NormRRF, index.RRF}} {
			w := 0.1 + 0.8*r.Float64()
			got, err := l.Fuse(FuseOptions{Norm: c.norm, DenseWeight: w}, 10)
			if err != nil {
				t.Fatal(err)
			}
			conv := func(list []ScoredDoc) []index.Ranked[int] {
				out := make([]index.Ranked[int], len(list))
				for i, e := range list {
					out[i] = index.Ranked[int]{Key: e.Doc, Score: e.Score, Tie: uint64(e.Doc)}
				}
				return out
			}
			ref, err := index.Fuse(conv(l.Dense[0]), conv(l.Keyword[0]), 10, index.HybridOptions{Fusion: c.fusion, DenseWeight: w})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int, len(ref))
			for i, e := range ref {
				want[i] = e.Key
			}
			if !reflect.DeepEqual(got[0], want) {
				t.Fatalf("trial %d %s w%.2f: Fuse %v, index.Fuse %v", trial, c.norm, w, got[0], want)
			}
		}
	}
}

// TestFuseNormalisations checks z-score and rank fusion on a hand-computed case.
func TestFuseNormalisations(t *testing.T) {
	l := SideLists{
		Dense:   [][]ScoredDoc{{{1, 0.9}, {2, 0.5}, {3, 0.1}}},
		Keyword: [][]ScoredDoc{{{3, 12}, {4, 6}}},
	}
	// rank (depth 3): dense 1->1, 2->2/3, 3->1/3; keyword 3->1, 4->2/3; w=0.5:
	// 1: 0.5, 2: 1/3, 3: 2/3, 4: 1/3 -> 3, 1, 2, 4 (2 and 4 tie, lower index first).
	got, err := l.Fuse(FuseOptions{Norm: NormRank, DenseWeight: 0.5}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 1, 2, 4}; !reflect.DeepEqual(got[0], want) {
		t.Errorf("rank fusion %v, want %v", got[0], want)
	}
	// z-score: dense mean 0.5, std sqrt(0.32/3)=0.3266: 1->1.2247, 2->0, 3->-1.2247 (missing
	// -1.2247); keyword mean 9, std 3: 3->1, 4->-1 (missing -1). w=0.5:
	// 1: (1.2247-1)/2=0.112, 2: (0-1)/2=-0.5, 3: (-1.2247+1)/2=-0.112, 4: (-1.2247-1)/2=-1.112.
	got, err = l.Fuse(FuseOptions{Norm: NormZScore, DenseWeight: 0.5}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3, 2, 4}; !reflect.DeepEqual(got[0], want) {
		t.Errorf("z-score fusion %v, want %v", got[0], want)
	}
	if _, err := l.Fuse(FuseOptions{Norm: "nope", DenseWeight: 0.5}, 4); err == nil {
		t.Error("unknown normalisation accepted")
	}
	if _, err := l.Fuse(FuseOptions{Norm: NormRank, DenseWeight: 1.5}, 4); err == nil {
		t.Error("dense weight 1.5 accepted")
	}
	if ns, err := ParseNorms("all"); err != nil || len(ns) != 4 {
		t.Errorf("ParseNorms(all) = %v, %v", ns, err)
	}
	if _, err := ParseNorms("minmax,bogus"); err == nil {
		t.Error("ParseNorms accepted bogus")
	}
}

// TestCandidateListsTakeTopDepth checks both sides' candidates against exact search and BM25.
func TestCandidateListsTakeTopDepth(t *testing.T) {
	docs := [][]float32{{1, 0}, {0.8, 0.6}, {0, 1}, {-1, 0}}
	q := [][]float32{{1, 0}}
	kw := []Sparse{{2: 3, 0: 1, 3: 2}}
	l, err := CandidateLists(q, docs, kw, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []ScoredDoc{{0, 1}, {1, 0.8}}; !reflect.DeepEqual(l.Dense[0], want) {
		t.Errorf("dense candidates %v, want %v", l.Dense[0], want)
	}
	if want := []ScoredDoc{{2, 3}, {3, 2}}; !reflect.DeepEqual(l.Keyword[0], want) {
		t.Errorf("keyword candidates %v, want %v", l.Keyword[0], want)
	}
	if _, err := CandidateLists(q, docs, nil, 2); err == nil {
		t.Error("missing keyword scores accepted")
	}
}
