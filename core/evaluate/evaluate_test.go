package evaluate

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/metrics"
	"github.com/podsearch/podsearch/core/vec"
)

func randVecs(rng *rand.Rand, n, d int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, d)
		for j := range out[i] {
			out[i][j] = float32(rng.NormFloat64())
		}
		vec.Normalize(out[i])
	}
	return out
}

func TestSearchMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	qs, ds := randVecs(rng, 300, 24), randVecs(rng, 500, 24) // 300 queries: two chunks
	got, err := Search(qs, ds, 7)
	if err != nil {
		t.Fatal(err)
	}
	for qi, q := range qs {
		idx := make([]int, len(ds))
		sc := make([]float64, len(ds))
		for i, d := range ds {
			idx[i] = i
			for j := range d {
				sc[i] += float64(q[j]) * float64(d[j])
			}
		}
		sort.SliceStable(idx, func(a, b int) bool { return sc[idx[a]] > sc[idx[b]] })
		for r := 0; r < 7; r++ {
			if got[qi][r] != idx[r] && math.Abs(sc[got[qi][r]]-sc[idx[r]]) > 1e-5 {
				t.Fatalf("query %d rank %d: got doc %d, want %d", qi, r, got[qi][r], idx[r])
			}
		}
	}
	// Ties go to the lower index; k larger than the corpus returns everything.
	tie, _ := Search([][]float32{{1, 0}}, [][]float32{{0, 1}, {1, 0}, {1, 0}}, 10)
	if len(tie[0]) != 3 || tie[0][0] != 1 || tie[0][1] != 2 || tie[0][2] != 0 {
		t.Errorf("tie order = %v, want [1 2 0]", tie[0])
	}
	if _, err := Search([][]float32{{1, 0}}, [][]float32{{1, 0, 0}}, 1); err == nil {
		t.Error("width mismatch accepted")
	}
}

// A hand-built set: 3 docs, 3 queries. Rankings are given directly.
func TestScoreAndSubsets(t *testing.T) {
	s := Set{
		Section: "queries",
		Docs:    []Doc{{ID: "a", Language: "en"}, {ID: "b", Language: "de"}, {ID: "c", Language: "en"}},
		Queries: []Query{
			{ID: "q1", Relevant: metrics.Qrels{"a": 1}, Method: "title"},
			{ID: "q2", Relevant: metrics.Qrels{"b": 1}, Method: "title"},
			{ID: "q3", Relevant: metrics.Qrels{"a": 1, "c": 2}, Method: "ict"},
		},
		Metrics:   metrics.MustParseAll("mrr@2", "recall@1"),
		MinSubset: 1,
	}
	ranked := [][]int{{0, 1}, {0, 1}, {2, 1}}
	rows, err := s.Score("dense", Base, ranked)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, r := range rows {
		got[r.Subset] = r.Metrics
	}
	// q1: rr 1, recall@1 1. q2: rr 1/2, recall@1 0. q3: rr 1, recall@1 1/2.
	if math.Abs(got["all"]["mrr@2"]-2.5/3) > 1e-12 || math.Abs(got["all"]["recall@1"]-0.5) > 1e-12 {
		t.Errorf("all = %v", got["all"])
	}
	// Languages come from the first relevant doc: q1 en, q2 de, q3 en (a or c, both en).
	if math.Abs(got["lang=en"]["mrr@2"]-1) > 1e-12 || math.Abs(got["lang=de"]["mrr@2"]-0.5) > 1e-12 {
		t.Errorf("language rows = %v / %v", got["lang=en"], got["lang=de"])
	}
	if math.Abs(got["method=title"]["recall@1"]-0.5) > 1e-12 || math.Abs(got["method=ict"]["recall@1"]-0.5) > 1e-12 {
		t.Errorf("method rows = %v / %v", got["method=title"], got["method=ict"])
	}
	curve := s.RecallCurve(ranked, 3)
	// k=1: (1 + 0 + 0.5)/3; k=2: (1 + 1 + 0.5)/3; k=3 same.
	want := []float64{1.5 / 3, 2.5 / 3, 2.5 / 3}
	for k := range want {
		if math.Abs(curve[k]-want[k]) > 1e-12 {
			t.Errorf("recall curve = %v, want %v", curve, want)
		}
	}
	if _, err := s.Score("dense", Base, [][]int{{5}, {0}, {0}}); err == nil {
		t.Error("out-of-range ranking accepted")
	}
}

func TestDenseIdentityAdapterChangesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	docs := make([]Doc, 50)
	qs := make([]Query, 40)
	for i := range docs {
		docs[i] = Doc{ID: string(rune('A' + i))}
	}
	for i := range qs {
		qs[i] = Query{ID: "q", Relevant: metrics.Qrels{docs[i].ID: 1}}
	}
	dv := randVecs(rng, 50, 16)
	qv := make([][]float32, 40)
	for i := range qv {
		qv[i] = append([]float32(nil), dv[i]...)
		qv[i][i%16] += 0.3
		vec.Normalize(qv[i])
	}
	s := Set{Section: "test", Docs: docs, Queries: qs, Metrics: metrics.MustParseAll("recall@1", "mrr@10")}
	a, _ := adapter.New(adapter.Config{Kind: adapter.Linear, Dim: 16, BothSides: true}, "fp")
	rows, curves, err := Dense(s, qv, dv, a, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(curves) != 2 || len(curves[0].Recall) != 20 {
		t.Fatalf("rows %d curves %d", len(rows), len(curves))
	}
	if rows[0].Model != Base || rows[1].Model != Tuned {
		t.Fatalf("models %s %s", rows[0].Model, rows[1].Model)
	}
	for m, v := range rows[0].Metrics {
		if math.Abs(rows[1].Metrics[m]-v) > 1e-9 {
			t.Errorf("%s: identity adapter changed %g -> %g", m, v, rows[1].Metrics[m])
		}
	}
	if rows[0].Metrics["recall@1"] < 0.9 {
		t.Errorf("perturbed copies should find themselves: recall@1 %g", rows[0].Metrics["recall@1"])
	}
}

func TestReportOutputs(t *testing.T) {
	r := &Report{Name: "demo", BaseFingerprint: "abc", Rows: []Row{
		{Section: "in-batch", Retrieval: "dense", Model: Base, Subset: "all", Queries: 10, Metrics: map[string]float64{"mrr@5": 0.5, "recall@1": 0.4}},
		{Section: "in-batch", Retrieval: "dense", Model: Tuned, Subset: "all", Queries: 10, Metrics: map[string]float64{"mrr@5": 0.6, "recall@1": 0.5}},
		{Section: "test", Retrieval: "dense", Model: Base, Subset: "all", Queries: 20, Metrics: map[string]float64{"recall@30": 0.7, "mrr@30": 0.3, "recall@1": 0.2}},
		{Section: "test", Retrieval: "dense", Model: Tuned, Subset: "all", Queries: 20, Metrics: map[string]float64{"recall@30": 0.8, "mrr@30": 0.35, "recall@1": 0.25}},
		{Section: "test", Retrieval: "bm25", Model: "-", Subset: "all", Queries: 20, Metrics: map[string]float64{"recall@30": 0.75, "mrr@30": 0.4, "recall@1": 0.3}},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	// Top level: tuned headline, retrieval section's recall@1 over in-batch's.
	if out["mrr@5"] != 0.6 || out["recall@30"] != 0.8 || out["recall@1"] != 0.25 {
		t.Errorf("top-level metrics: %s", b)
	}
	if base := out["base"].(map[string]any); base["mrr@30"] != 0.3 {
		t.Errorf("base metrics: %v", base)
	}
	if sec := out["sections"].(map[string]any)["test"].(map[string]any); sec["bm25"] == nil {
		t.Errorf("bm25 row missing in sections: %v", sec)
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### in-batch", "| dense | all | 10 | 0.500 → 0.600 (+0.100) |", "| bm25 | all | 20 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	dir := t.TempDir()
	if err := r.Save(filepath.Join(dir, "sub", "report")); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "recall.png")
	curves := []Curve{{Label: "test dense base", Recall: []float64{0.1, 0.5, 0.7}}, {Label: "test dense tuned", Recall: []float64{0.2, 0.6, 0.8}}}
	if err := PlotRecall(curves, "Recall@k", png); err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(pb, []byte("\x89PNG")) {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if err := PlotRecall(nil, "x", png); err == nil {
		t.Error("empty plot accepted")
	}
}
