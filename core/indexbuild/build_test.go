package indexbuild

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testcorpus"
)

// TestBuildQueryAware builds an index of the real RSS episodes with the real encoder and the
// defaults (those of `podsearch index`): the corpus's own synthetic queries guide spilling
// (within the byte budget) and choose the operating point recorded in the manifest, which
// is what a search with zero settings then uses; a filtered search fills k.
func TestBuildQueryAware(t *testing.T) {
	testcorpus.RequireModel(t)
	dir, corpus, eps := testcorpus.RSS(t, ingest.Options{Seed: 1})
	out := filepath.Join(dir, "idx")
	o := DefaultOptions()
	o.Corpus, o.Out, o.Shards, o.TargetRecall = corpus, out, 2, 0.9
	if err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(out, "", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	op := ix.Searcher().OperatingPoint()
	if op.Target != 0.9 || op.Queries == 0 || op.NProbe < 1 || op.RerankFactor < 1 {
		t.Fatalf("operating point %+v: not chosen at build", op)
	}
	if b := ix.BytesPerVector(); b > 2048.0/6 {
		t.Fatalf("%.1f bytes per vector, over 1/6 of float32", b)
	}
	spilled := 0
	for _, v := range ix.Searcher().Views() {
		spilled += v.Seg.SpillEntries()
	}
	if spilled == 0 {
		t.Fatal("the sample queries spilled no episode")
	}
	vecs, d, err := vec.ReadFvecs(filepath.Join(out, index.VectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	q := vec.Row(vecs, d, 5)
	implicit, err := ix.Search(context.Background(), q, index.SearchOptions{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := ix.Search(context.Background(), q, index.SearchOptions{K: 10, NProbe: op.NProbe, RerankFactor: op.RerankFactor})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(implicit, explicit) || len(implicit) != 10 || implicit[0].ID != eps[5].ID {
		t.Fatalf("default search %v, at the operating point %v (episode 5 is %s)", implicit, explicit, eps[5].ID)
	}
	langs := map[string]int{}
	for _, e := range eps {
		langs[e.Language]++
	}
	for lang, n := range langs {
		hits, err := ix.Search(context.Background(), q, index.SearchOptions{K: 10, NProbe: 1, Filter: &index.Filter{Languages: []string{lang}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != min(10, n) {
			t.Errorf("language %q (%d episodes): %d hits with one list probed", lang, n, len(hits))
		}
	}
	ix.Close()
	checkCalibrate(t, out, eps)
}

// checkCalibrate chooses the fusion of the index in out on judged queries (each a real
// episode's title, that episode graded 2) encoded by the real encoder, and checks what the
// manifest records; judged queries of another corpus are refused.
func checkCalibrate(t *testing.T, out string, eps []ingest.Episode) {
	t.Helper()
	ctx := context.Background()
	var lines []string
	n := 0
	for i := 0; i < len(eps); i += 17 {
		q := map[string]any{"qid": eps[i].ID, "query": eps[i].Title, "relevant": map[string]int{eps[i].ID: 2}}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
		n++
	}
	file := filepath.Join(t.TempDir(), "judged.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Calibrate(ctx, out, file, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fusion != index.ZScore || !slices.Contains(index.CalibrationWeights, f.DenseWeight) || f.Queries != n ||
		f.Source != "judged.jsonl" || f.RecallK != CalibrationRecallK || f.NDCG10 < 0.5 {
		t.Fatalf("calibrated fusion %+v for %d title queries", f, n)
	}
	ix, err := index.Open(out, "", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if got := ix.Searcher().Fusion(); got != f {
		t.Fatalf("manifest records %+v, calibration returned %+v", got, f)
	}
	other := filepath.Join(t.TempDir(), "other.jsonl")
	if err := os.WriteFile(other, []byte(`{"qid":"q1","query":"news","relevant":{"not-an-episode":2}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Calibrate(ctx, out, other, "", nil); err == nil || !strings.Contains(err.Error(), "another corpus") {
		t.Fatalf("queries of another corpus: %v", err)
	}
}

// TestSplitSample: every fifth query is held out, the others guide, each in order.
func TestSplitSample(t *testing.T) {
	const d = 2
	var sample []float32
	for i := range 11 {
		sample = append(sample, float32(i), float32(-i))
	}
	guide, heldOut := SplitSample(sample, d)
	if want := []float32{4, -4, 9, -9}; !slices.Equal(heldOut, want) {
		t.Fatalf("held out %v, want %v", heldOut, want)
	}
	if len(guide) != 9*d || guide[0] != 0 || guide[len(guide)-2] != 10 {
		t.Fatalf("guide %v", guide)
	}
}

// TestReadQueryTexts: plain lines and JSON lines' fields, blank texts skipped, a bad field refused.
func TestReadQueryTexts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "q.jsonl")
	if err := os.WriteFile(p, []byte("plain query\n\n{\"query\":\"a\",\"description\":\"b\"}\n{\"query\":\" \"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string][]string{"query": {"plain query", "a"}, "description": {"plain query", "b"}, "both": {"plain query", "a", "b"}} {
		got, err := ReadQueryTexts(p, field)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", field, got, err, want)
		}
	}
	if _, err := ReadQueryTexts(p, "title"); err != ErrField {
		t.Fatalf("field title: %v, want ErrField", err)
	}
}

// TestEvenSample keeps all items under the limit and spreads the sample over them above it.
func TestEvenSample(t *testing.T) {
	items := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if got := EvenSample(items, 0); len(got) != 10 {
		t.Fatalf("limit 0: %v", got)
	}
	if got := EvenSample(items, 4); !slices.Equal(got, []int{0, 2, 5, 7}) {
		t.Fatalf("limit 4: %v", got)
	}
}
