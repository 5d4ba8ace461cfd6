package evaluate

import (
	"hash/fnv"
	"math"
	"testing"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/metrics"
	"github.com/podsearch/podsearch/core/vec"
)

// hashDim is the width of the hashed bag-of-words vectors that stand in for the encoder
// (which needs the model set up): real text, deterministic, similar texts get similar vectors.
const hashDim = 64

func hashEmbed(text string) []float32 {
	v := make([]float32, hashDim)
	for _, t := range bm25.Analyze(text) {
		h := fnv.New64a()
		h.Write([]byte(t))
		x := h.Sum64()
		if x>>63 == 0 {
			v[x%hashDim]++
		} else {
			v[x%hashDim]--
		}
	}
	if !vec.Normalize(v) {
		v[0] = 1
	}
	return v
}

// TestIndexRowsMatchExact builds a real index (IVF-PQ with 8-bit re-rank codes, two shards)
// over SciFact's judged abstracts and checks that, scanning every list and re-ranking every
// candidate, its dense rows equal exact search (up to near-ties that the 8-bit re-rank codes
// and the index's id-hash tie-breaking order differently: recall@10 is equal, MRR and nDCG
// within 0.005) and its BM25 rows equal core/bm25's.
func TestIndexRowsMatchExact(t *testing.T) {
	docs, qs := sciFact(t)
	docs = Subsample(docs, qs, 400)
	s := Set{Section: "test", Docs: docs, Queries: qs, Metrics: metrics.MustParseAll("recall@10", "mrr@10", "ndcg@10")}
	dv := make([][]float32, len(docs))
	flat := make([]float32, 0, len(docs)*hashDim)
	ixDocs := make([]index.Doc, len(docs))
	for i, d := range docs {
		dv[i] = hashEmbed(d.Text)
		flat = append(flat, dv[i]...)
		ixDocs[i] = index.Doc{ID: d.ID, Title: d.Title, Language: d.Language, Text: d.Text}
	}
	qv := make([][]float32, len(qs))
	for i, q := range qs {
		qv[i] = hashEmbed(q.Text)
	}
	const fp = "hashed-bag-of-words-64"
	model, err := index.Train(flat, hashDim, index.Config{NList: 4, Bits: 8, Seed: 1, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := index.Create(dir, model, 2, ixDocs, flat); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(dir, fp, index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()

	rows, err := IndexRows(s, ix.Searcher(), []ModelQueries{{Base, qv}}, IndexOptions{NProbe: 1 << 20, RerankFactor: len(docs)})
	if err != nil {
		t.Fatal(err)
	}
	exact, _, err := Dense(s, qv, dv, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ranked := RankSparse(BM25(docs, qs), len(docs), 10)
	kw, err := s.Score("bm25", "-", ranked)
	if err != nil {
		t.Fatal(err)
	}
	all := func(rs []Row, retrieval string) Row {
		t.Helper()
		for _, r := range rs {
			if r.Retrieval == retrieval && r.Subset == "all" {
				return r
			}
		}
		t.Fatalf("no %q row among %d", retrieval, len(rs))
		return Row{}
	}
	same := func(got, want Row, tol float64) {
		t.Helper()
		if got.Queries != want.Queries || got.Queries != len(qs) {
			t.Fatalf("%s: %d queries, want %d", got.Retrieval, got.Queries, want.Queries)
		}
		for m, w := range want.Metrics {
			if g := got.Metrics[m]; math.Abs(g-w) > tol {
				t.Errorf("%s %s = %.4f, exact %s %.4f", got.Retrieval, m, g, want.Retrieval, w)
			}
		}
	}
	d := all(rows, IndexDense)
	if d.Model != Base || d.Metrics["recall@10"] == 0 {
		t.Fatalf("index dense row %+v", d)
	}
	ed := all(exact, "dense")
	same(d, ed, 0.005)
	if d.Metrics["recall@10"] != ed.Metrics["recall@10"] {
		t.Errorf("index dense recall@10 %v, exact %v", d.Metrics["recall@10"], ed.Metrics["recall@10"])
	}
	same(all(rows, IndexKeyword), all(kw, "bm25"), 1e-9)
	h := all(rows, IndexHybrid)
	for m, v := range h.Metrics {
		if v <= 0 || v > 1 {
			t.Errorf("index hybrid %s = %v", m, v)
		}
	}
	t.Logf("exact dense %v, index dense %v, bm25 %v, index hybrid %v", all(exact, "dense").Metrics, d.Metrics, all(kw, "bm25").Metrics, h.Metrics)
}
