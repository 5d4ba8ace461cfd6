package indexbuild

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/podsearch/podsearch/core/index"
)

// TestReachTarget: a build that misses its target climbs the re-rank ladder (SQ8, then
// float32) keeping the coarse lists and PQ, stops at the first rung that reaches it, does
// not climb when told not to or when the codes are already exact, and stops on other errors.
func TestReachTarget(t *testing.T) {
	const d = 32
	vecs, base := gaussianModel(t, 1, 8)
	// reachesAt says which re-rank bits reach the target; the chooser records what it saw.
	run := func(climb bool, reachesAt int, other error) (*index.Model, []int, error) {
		var seen []int
		m, op, err := ReachTarget(base, vecs, 1, climb, func(m *index.Model) (index.OperatingPoint, error) {
			seen = append(seen, m.RerankBits())
			if other != nil {
				return index.OperatingPoint{}, other
			}
			op := index.OperatingPoint{NProbe: 8, RerankFactor: 4, Recall: 0.9}
			if m.RerankBits() == reachesAt {
				op.Recall = 0.96
				return op, nil
			}
			return op, fmt.Errorf("%w: test", index.ErrBelowTarget)
		})
		if err == nil && op.Recall != 0.96 {
			t.Errorf("point %+v returned without error", op)
		}
		return m, seen, err
	}
	m, seen, err := run(true, 8, nil)
	if err != nil || m.RerankBits() != 8 || fmt.Sprint(seen) != "[1 8]" {
		t.Fatalf("climb to SQ8: bits %d, tried %v, err %v", m.RerankBits(), seen, err)
	}
	if &m.Coarse[0] != &base.Coarse[0] || m.PQ != base.PQ || m.ID() == base.ID() {
		t.Fatal("the finer model does not keep the lists and PQ, or keeps the old id")
	}
	if m, seen, err = run(true, -1, nil); !errors.Is(err, index.ErrBelowTarget) || m.RerankBits() != 32 || fmt.Sprint(seen) != "[1 8 32]" {
		t.Fatalf("whole ladder: bits %d, tried %v, err %v", m.RerankBits(), seen, err)
	}
	if m, seen, err = run(false, 8, nil); !errors.Is(err, index.ErrBelowTarget) || m != base || len(seen) != 1 {
		t.Fatalf("no climb: tried %v, err %v", seen, err)
	}
	boom := errors.New("disk full")
	if _, seen, err = run(true, 8, boom); !errors.Is(err, boom) || len(seen) != 1 {
		t.Fatalf("other error: tried %v, err %v", seen, err)
	}
	exact, err := base.WithRerank(vecs, index.RerankFlat, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var tried int
	if _, _, err := ReachTarget(exact, vecs, 1, true, func(*index.Model) (index.OperatingPoint, error) {
		tried++
		return index.OperatingPoint{}, index.ErrBelowTarget
	}); !errors.Is(err, index.ErrBelowTarget) || tried != 1 {
		t.Fatalf("exact codes climbed: %d tries, err %v", tried, err)
	}
	if _, err := base.WithRerank(vecs[:d+1], index.RerankSQ8, 0, 1); err == nil {
		t.Fatal("WithRerank accepted a ragged vector slice")
	}
}

// TestWithRerankSearches: an index built with a model stepped up to 8-bit codes searches,
// and its exact-neighbour recall is no lower than with the tiny transform-quantized codes.
func TestWithRerankSearches(t *testing.T) {
	const d, n = 32, 3000
	vecs, base := gaussianModel(t, 3, 4)
	sq8, err := base.WithRerank(vecs, index.RerankSQ8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sq8.String(); got != "IVF8,PQ8x4fs,SQ8,cosine" {
		t.Fatalf("stepped-up model %s", got)
	}
	docs := make([]index.Doc, n)
	ids := make([]string, n)
	for i := range docs {
		docs[i].ID = fmt.Sprint(i)
		ids[i] = docs[i].ID
	}
	queries := vecs[:200*d]
	// One sample's exact top 10 serves every model, as ReachTarget's callers use it.
	truth, err := index.NewOperatingSample(index.Cosine, d, queries, vecs, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	recall := func(m *index.Model) float64 {
		seg, err := index.BuildSegmentSpill(m, docs, vecs, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := index.NewSearcher([]index.View{{Seg: seg}})
		if err != nil {
			t.Fatal(err)
		}
		op, _ := index.ChooseOperatingPoint(s, queries, vecs, ids, 0.99, 0)
		if again, _ := truth.Choose(s, 0.99); again != op {
			t.Fatalf("shared sample chose %+v, ChooseOperatingPoint %+v", again, op)
		}
		return op.Recall
	}
	rt, rs := recall(base), recall(sq8)
	t.Logf("recall@10 TQ4 %.3f, SQ8 %.3f", rt, rs)
	if rs < rt || rs < 0.9 {
		t.Fatalf("recall@10 with SQ8 codes %.3f, with TQ4 %.3f", rs, rt)
	}
}

// gaussianModel returns 3,000 Gaussian 32-d vectors (for seed) and an IVF8,PQ8x4fs model
// trained on them with transform-quantized re-rank codes of tqBytes bytes.
func gaussianModel(t *testing.T, seed uint64, tqBytes int) ([]float32, *index.Model) {
	t.Helper()
	const d, n = 32, 3000
	rng := rand.New(rand.NewPCG(seed, seed+1))
	vecs := make([]float32, n*d)
	for i := range vecs {
		vecs[i] = float32(rng.NormFloat64())
	}
	m, err := index.Train(vecs, d, index.Config{Metric: index.Cosine, NList: 8, M: 8, Bits: 4, Rerank: index.RerankTQ, RerankBytes: tqBytes, Iters: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return vecs, m
}
