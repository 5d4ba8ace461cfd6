package index

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
)

// TestExactRerank: a model with exact float32 re-ranking stores the vectors in its
// segments; with every list probed and every candidate re-ranked, search returns exactly
// the brute-force top k (ids and scores), and compaction keeps the vectors.
func TestExactRerank(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	for _, metric := range []Metric{Cosine, L2} {
		m, err := Train(vecs, testDim, Config{Metric: metric, NList: 8, M: 16, Iters: 5, Seed: 3, Rerank: RerankFlat})
		if err != nil {
			t.Fatal(err)
		}
		if m.RerankBits() != 32 || m.BytesPerVector() < 4*testDim {
			t.Fatalf("%s: re-rank bits %d, %v bytes per vector", m, m.RerankBits(), m.BytesPerVector())
		}
		dir := filepath.Join(t.TempDir(), "ix")
		if err := Create(dir, m, 2, docs, vecs); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(dir, "", OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k := 10
		opts := SearchOptions{K: k, NProbe: m.NList, RerankFactor: len(docs)}
		check := func(what string) {
			for qi := 0; qi < len(docs); qi += 29 {
				q := slices.Clone(vec.Row(vecs, testDim, qi))
				hits, err := ix.Search(context.Background(), q, opts)
				if err != nil {
					t.Fatal(err)
				}
				want := bruteForce(docs, vecs, q, metric, k)
				for i, h := range hits {
					if h.ID != want[i].id || h.Score != want[i].score {
						t.Fatalf("%s %s query %d hit %d: %s %v, exact %s %v", metric, what, qi, i, h.ID, h.Score, want[i].id, want[i].score)
					}
				}
			}
		}
		check("built")
		if _, err := ix.Delete([]string{docs[3].ID}); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add([]Doc{docs[3]}, vec.Row(vecs, testDim, 3)); err != nil {
			t.Fatal(err)
		}
		if err := ix.Compact(); err != nil {
			t.Fatal(err)
		}
		check("compacted")
		ix.Close()
	}
}

type scored struct {
	id    string
	score float32
}

// bruteForce is the exact top k, scored as Search scores (cosine similarity or negative
// squared L2), ties by id hash as the index breaks them.
func bruteForce(docs []Doc, vecs []float32, q []float32, metric Metric, k int) []scored {
	if metric == Cosine {
		vec.Normalize(q)
	}
	out := make([]scored, len(docs))
	for i, d := range docs {
		x := slices.Clone(vec.Row(vecs, testDim, i))
		var s float32
		if metric == L2 {
			s = -vec.L2Sq(q, x)
		} else {
			vec.Normalize(x)
			s = vec.Dot(q, x)
		}
		out[i] = scored{d.ID, s}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].score != out[b].score {
			return out[a].score > out[b].score
		}
		return HashID(out[a].id) < HashID(out[b].id)
	})
	return out[:k]
}

// TestRerankCodecsRecall: with every list probed, re-ranking with any codec finds more of
// the exact top 10 than the PQ distances alone; exact float32 finds nearly all of them (all
// that the PQ stage keeps among its 100 candidates); and the transform quantizer at 32 bytes
// (4 bits per dimension on average) beats 4-bit scalar codes of the same size.
func TestRerankCodecsRecall(t *testing.T) {
	recall := map[string]float64{}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"none", Config{Rerank: RerankNone}},
		{"sq4", Config{Rerank: RerankSQ4}},
		{"tq32", Config{Rerank: RerankTQ, RerankBytes: 32}},
		{"exact", Config{Rerank: RerankFlat}},
	} {
		cfg := c.cfg
		cfg.Metric, cfg.NList, cfg.M = Cosine, 8, 16
		seg, docs, vecs := buildTestSegment(t, cfg)
		m := seg.Model()
		s, err := NewSearcher([]View{{Seg: seg}})
		if err != nil {
			t.Fatal(err)
		}
		hit, total := 0, 0
		for qi := 0; qi < len(docs); qi += 7 {
			q := slices.Clone(vec.Row(vecs, testDim, qi))
			want := map[string]bool{}
			for _, w := range bruteForce(docs, vecs, q, Cosine, 10) {
				want[w.id] = true
			}
			hits, err := s.Search(context.Background(), q, SearchOptions{K: 10, NProbe: m.NList, RerankFactor: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				if want[h.ID] {
					hit++
				}
			}
			total += 10
		}
		recall[c.name] = float64(hit) / float64(total)
		t.Logf("%-6s %s: recall@10 %.3f at %.0f bytes/vector", c.name, m, recall[c.name], m.BytesPerVector())
	}
	if recall["exact"] < 0.99 || recall["tq32"] <= recall["sq4"] || recall["sq4"] <= recall["none"] {
		t.Fatalf("recall@10 by re-rank codes: %v", recall)
	}
}
