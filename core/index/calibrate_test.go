package index

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPickFusion: the highest nDCG@10 wins unless another trial within FusionTie of it has
// a higher recall; equal recall goes to the lower dense weight.
func TestPickFusion(t *testing.T) {
	if _, err := PickFusion(nil); err == nil {
		t.Fatal("no trials: no error")
	}
	cases := []struct {
		trials []FusionTrial
		want   float64
	}{
		{[]FusionTrial{{DenseWeight: 0.3, NDCG10: 0.60, Recall: 0.7}, {DenseWeight: 0.4, NDCG10: 0.65, Recall: 0.7}}, 0.4},
		// 0.5 is within the tie margin of 0.4 and recalls more.
		{[]FusionTrial{{DenseWeight: 0.4, NDCG10: 0.654, Recall: 0.81}, {DenseWeight: 0.5, NDCG10: 0.650, Recall: 0.84}}, 0.5},
		// 0.5 is outside the margin: its recall does not count.
		{[]FusionTrial{{DenseWeight: 0.4, NDCG10: 0.654, Recall: 0.81}, {DenseWeight: 0.5, NDCG10: 0.643, Recall: 0.84}}, 0.4},
		// A full tie goes to the lower weight, whatever the order.
		{[]FusionTrial{{DenseWeight: 0.6, NDCG10: 0.5, Recall: 0.8}, {DenseWeight: 0.2, NDCG10: 0.5, Recall: 0.8}}, 0.2},
	}
	for i, c := range cases {
		got, err := PickFusion(c.trials)
		if err != nil || got.DenseWeight != c.want {
			t.Errorf("case %d: picked %+v (err %v), want dense weight %v", i, got, err, c.want)
		}
	}
}

// calibrationIndex is a real-episode index (hashed bag-of-words vectors) and judged queries
// over it: each query is one episode's title, that episode graded 2.
func calibrationIndex(t *testing.T) (*Index, string, []JudgedQuery) {
	t.Helper()
	docs, vecs := loadEpisodes(t)
	dir := t.TempDir()
	ix := createOpen(t, dir, trainTestModel(t, vecs), 2, docs, vecs, "")
	var qs []JudgedQuery
	for i := 0; i < len(docs); i += 41 {
		d := docs[i]
		qs = append(qs, JudgedQuery{Vector: embedText(d.Title), Text: d.Title, Relevant: map[string]int{d.ID: 2}})
	}
	return ix, dir, qs
}

// TestCalibrateFusion chooses a weight through the index by PickFusion's rule, records it,
// and every later hybrid search that leaves the fusion at zero serves it, after a reopen too.
func TestCalibrateFusion(t *testing.T) {
	ix, dir, qs := calibrationIndex(t)
	ctx := context.Background()
	if f := ix.Searcher().Fusion(); f.Fusion != DefaultFusion || f.DenseWeight != DefaultDenseWeight || f.Queries != 0 {
		t.Fatalf("uncalibrated index: fusion %+v, want the defaults", f)
	}
	f, trials, err := CalibrateFusion(ctx, ix.Searcher(), qs, ZScore, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != len(CalibrationWeights) {
		t.Fatalf("%d trials for %d weights", len(trials), len(CalibrationWeights))
	}
	best, _ := PickFusion(trials)
	if f.DenseWeight != best.DenseWeight || f.NDCG10 != best.NDCG10 || f.Queries != len(qs) || f.RecallK != 30 {
		t.Fatalf("calibrated %+v, PickFusion of the trials %+v", f, best)
	}
	for _, tr := range trials {
		if tr.NDCG10 <= 0 || tr.NDCG10 > 1 || tr.Recall <= 0 || tr.Recall > 1 {
			t.Fatalf("trial %+v: scores outside (0, 1]", tr)
		}
	}
	// Title queries over their own episodes: the fusion finds most of them first.
	if f.NDCG10 < 0.5 {
		t.Fatalf("calibrated nDCG@10 %.3f for title queries", f.NDCG10)
	}
	// A weight that differs from the default, so the test sees the recorded one served.
	f.DenseWeight = 0.8
	f.Source = "titles"
	if err := ix.SetFusion(f); err != nil {
		t.Fatal(err)
	}
	check := func(ix *Index) {
		t.Helper()
		if got := ix.Searcher().Fusion(); got != f {
			t.Fatalf("recorded fusion %+v, want %+v", got, f)
		}
		for _, q := range qs[:5] {
			implicit, err := ix.SearchHybrid(ctx, q.Vector, q.Text, HybridOptions{Dense: SearchOptions{K: 10}})
			if err != nil {
				t.Fatal(err)
			}
			explicit, err := ix.SearchHybrid(ctx, q.Vector, q.Text, HybridOptions{Dense: SearchOptions{K: 10}, Fusion: ZScore, DenseWeight: 0.8})
			if err != nil {
				t.Fatal(err)
			}
			named, err := ix.SearchHybrid(ctx, q.Vector, q.Text, HybridOptions{Dense: SearchOptions{K: 10}, Fusion: ZScore})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(implicit, explicit) || !slices.Equal(named, explicit) {
				t.Fatalf("query %q: default hybrid %v, fusion named %v, recorded fusion %v", q.Text, implicit, named, explicit)
			}
		}
	}
	check(ix)
	// Updates keep the recorded fusion: a deletion, then a compaction.
	if n, err := ix.Delete([]string{gradedTwo(qs[0])}); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if err := ix.Compact(); err != nil {
		t.Fatal(err)
	}
	check(ix)
	ix.Close()
	re, err := Open(dir, "", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	check(re)
}

// TestCalibrateFusionErrors: no queries, unjudged queries, a bad depth and out-of-range
// settings are refused; a manifest with a damaged fusion does not open.
func TestCalibrateFusionErrors(t *testing.T) {
	ix, dir, qs := calibrationIndex(t)
	ctx := context.Background()
	sr := ix.Searcher()
	if _, _, err := CalibrateFusion(ctx, sr, nil, ZScore, 30); err == nil {
		t.Error("no queries: no error")
	}
	if _, _, err := CalibrateFusion(ctx, sr, qs, ZScore, 5); err == nil {
		t.Error("recall depth 5: no error")
	}
	bad := slices.Clone(qs)
	bad[1].Relevant = map[string]int{bad[1].Text: 0}
	if _, _, err := CalibrateFusion(ctx, sr, bad, ZScore, 30); err == nil {
		t.Error("a query without a relevant episode: no error")
	}
	for _, f := range []FusionSetting{{Fusion: ZScore}, {Fusion: ZScore, DenseWeight: 1}, {Fusion: "max", DenseWeight: 0.5}} {
		if err := ix.SetFusion(f); err == nil {
			t.Errorf("SetFusion(%+v): no error", f)
		}
	}
	if err := ix.SetFusion(FusionSetting{Fusion: ZScore, DenseWeight: 0.3}); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := strings.Replace(string(b), `"dense_weight": 0.3`, `"dense_weight": 7`, 1)
	if damaged == string(b) {
		t.Fatal("the manifest does not record the dense weight as expected")
	}
	if err := os.WriteFile(path, []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "", OpenOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("manifest with dense weight 7: %v, want ErrCorrupt", err)
	}
}

// gradedTwo is the id of q's episode graded 2 (calibrationIndex judges one).
func gradedTwo(q JudgedQuery) string {
	for id, g := range q.Relevant {
		if g == 2 {
			return id
		}
	}
	return ""
}

// TestFusionTrials scores each calibration weight from the rankings it is given: a ranking
// that puts the judged episode first at weights above 0.5 and last otherwise; rankings for
// the wrong number of queries and no queries are refused.
func TestFusionTrials(t *testing.T) {
	rel := []map[string]int{{"a": 2}, {"b": 1}}
	trials, err := FusionTrials(ZScore, rel, 30, func(w float64) ([][]string, error) {
		if w > 0.5 {
			return [][]string{{"a", "x"}, {"b"}}, nil
		}
		return [][]string{{"x"}, {"y"}}, nil
	})
	if err != nil || len(trials) != len(CalibrationWeights) {
		t.Fatalf("%d trials, %v", len(trials), err)
	}
	for _, tr := range trials {
		want := 0.0
		if tr.DenseWeight > 0.5 {
			want = 1
		}
		if tr.NDCG10 != want || tr.Recall != want || tr.Fusion != ZScore {
			t.Fatalf("trial %+v, want nDCG@10 and recall %v", tr, want)
		}
	}
	if best, _ := PickFusion(trials); best.DenseWeight != 0.6 {
		t.Fatalf("picked %+v, want the lowest of the tied best weights, 0.6", best)
	}
	if _, err := FusionTrials(ZScore, rel, 30, func(float64) ([][]string, error) { return [][]string{{"a"}}, nil }); err == nil {
		t.Error("one ranking for two queries accepted")
	}
	if _, err := FusionTrials(ZScore, nil, 30, func(float64) ([][]string, error) { return nil, nil }); err == nil {
		t.Error("no judged queries accepted")
	}
}
