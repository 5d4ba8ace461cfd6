package index

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func trainTestModel(t testing.TB, vecs []float32) *Model {
	t.Helper()
	m, err := Train(vecs, testDim, Config{Metric: Cosine, NList: 8, M: 16, Bits: 4, Iters: 5, Seed: 3, Fingerprint: "test-fingerprint"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// createOpen writes docs (vectors vecs) as an index of shards shards in dir with model m,
// opens it as fingerprint fp (empty: any) and closes it when the test ends.
func createOpen(t testing.TB, dir string, m *Model, shards int, docs []Doc, vecs []float32, fp string) *Index {
	t.Helper()
	if err := Create(dir, m, shards, docs, vecs); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, fp, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

type queryCase struct {
	vec  []float32
	text string
	opts SearchOptions
}

func testQueries(docs []Doc) []queryCase {
	var qs []queryCase
	for i := 0; i < len(docs); i += 37 {
		d := docs[i]
		qs = append(qs, queryCase{vec: embedText(d.Title), text: d.Title, opts: SearchOptions{K: 10, NProbe: 3}})
	}
	qs = append(qs,
		queryCase{vec: embedText("history of the white house"), text: "history of the white house",
			opts: SearchOptions{K: 5, NProbe: 8, Filter: &Filter{Languages: []string{"en"}}}},
		queryCase{vec: embedText("Nachrichten Politik"), text: "Nachrichten Politik",
			opts: SearchOptions{K: 5, NProbe: 8, Filter: &Filter{From: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	)
	return qs
}

// allResults runs every query through dense, keyword and both hybrid searches.
func allResults(t testing.TB, ix *Index, qs []queryCase) [][]Hit {
	t.Helper()
	var out [][]Hit
	for _, q := range qs {
		d, err := ix.Search(context.Background(), q.vec, q.opts)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ix.SearchKeyword(q.text, q.opts.K, q.opts.Filter)
		if err != nil {
			t.Fatal(err)
		}
		h1, err := ix.SearchHybrid(context.Background(), q.vec, q.text, HybridOptions{Dense: q.opts})
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ix.SearchHybrid(context.Background(), q.vec, q.text, HybridOptions{Dense: q.opts, Fusion: RRF})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d, k, h1, h2)
	}
	return out
}

func stripShard(res [][]Hit) [][]Hit {
	out := make([][]Hit, len(res))
	for i, hs := range res {
		out[i] = slices.Clone(hs)
		for j := range out[i] {
			out[i][j].Shard = 0
		}
	}
	return out
}

func equalResults(t *testing.T, what string, got, want [][]Hit) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d result lists, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			g, w := got[i], want[i]
			t.Fatalf("%s: result list %d differs:\n got %v\nwant %v", what, i, ids(g), ids(w))
		}
	}
}

func ids(hs []Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// TestFiltersReturnOnlyMatching checks every hit of filtered dense, keyword and hybrid
// searches matches the filter, and that with every list probed a filtered search still
// returns K hits when K matching episodes exist (the filter runs inside the scan).
func TestFiltersReturnOnlyMatching(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	dir := t.TempDir()
	ix := createOpen(t, dir, model, 2, docs, vecs, "test-fingerprint")
	langs := map[string]int{}
	shows := map[string]int{}
	for _, d := range docs {
		langs[d.Language]++
		shows[d.ShowID]++
	}
	if len(langs) < 2 || len(shows) < 3 {
		t.Fatalf("test data has %d languages and %d shows; want a mix", len(langs), len(shows))
	}
	var someShow string
	for s, c := range shows {
		if c >= 10 && (someShow == "" || s < someShow) {
			someShow = s
		}
	}
	from := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2022, 12, 31, 23, 59, 59, 0, time.UTC)
	filters := []*Filter{
		{Languages: []string{"de"}},
		{ShowIDs: []string{someShow}},
		{From: from, To: to},
		{Languages: []string{"en"}, From: from},
		{ShowIDs: []string{"no-such-show"}},
	}
	match := func(f *Filter, d Doc) bool {
		if len(f.Languages) > 0 && !slices.Contains(f.Languages, d.Language) {
			return false
		}
		if len(f.ShowIDs) > 0 && !slices.Contains(f.ShowIDs, d.ShowID) {
			return false
		}
		if (!f.From.IsZero() || !f.To.IsZero()) && d.Date.IsZero() {
			return false
		}
		if !f.From.IsZero() && d.Date.Before(f.From) {
			return false
		}
		if !f.To.IsZero() && d.Date.After(f.To) {
			return false
		}
		return true
	}
	for fi, f := range filters {
		matching := 0
		for _, d := range docs {
			if match(f, d) {
				matching++
			}
		}
		for qi := 0; qi < 10; qi++ {
			q := docs[qi*31]
			opts := SearchOptions{K: 10, NProbe: model.NList, Filter: f}
			dense, err := ix.Search(context.Background(), embedText(q.Text), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(dense) != min(10, matching) {
				t.Fatalf("filter %d: %d dense hits, want %d (%d episodes match)", fi, len(dense), min(10, matching), matching)
			}
			kw, _ := ix.SearchKeyword(q.Title, 10, f)
			hy, err := ix.SearchHybrid(context.Background(), embedText(q.Text), q.Title, HybridOptions{Dense: opts})
			if err != nil {
				t.Fatal(err)
			}
			for _, hs := range [][]Hit{dense, kw, hy} {
				for _, h := range hs {
					if !match(f, h.Doc) {
						t.Fatalf("filter %d: hit %s (%s, %s, %v) does not match", fi, h.ID, h.Language, h.ShowID, h.Date)
					}
				}
			}
		}
	}
}

// TestHybridAndDense checks both retrieval paths on the episodes: dense search finds an
// episode from its own text, keyword search from its title, and the fusion weights move
// the hybrid ranking between the two.
func TestHybridAndDense(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	seg, err := BuildSegment(model, docs, vecs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSearcher([]View{{Seg: seg}})
	if err != nil {
		t.Fatal(err)
	}
	found, total := 0, 0
	for i := 0; i < len(docs); i += 19 {
		d := docs[i]
		q := embedText(d.Text)
		dense, err := s.Search(context.Background(), q, SearchOptions{K: 10, NProbe: 4})
		if err != nil {
			t.Fatal(err)
		}
		total++
		for _, h := range dense {
			if h.ID == d.ID {
				found++
				break
			}
		}
		kw := s.SearchKeyword(d.Title, 10, nil)
		allDense, _ := s.Search(context.Background(), q, SearchOptions{K: 100, NProbe: 4})
		hyDense, err := s.SearchHybrid(context.Background(), q, d.Title, HybridOptions{Dense: SearchOptions{K: 5, NProbe: 4}, DenseWeight: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(allDense) >= 5 && !slices.Equal(ids(hyDense[:4]), ids(allDense[:4])) {
			t.Fatalf("dense weight 1: hybrid %v, dense %v", ids(hyDense), ids(allDense[:5]))
		}
		hyKW, err := s.SearchHybrid(context.Background(), q, d.Title, HybridOptions{Dense: SearchOptions{K: 5, NProbe: 4}, DenseWeight: 1e-9})
		if err != nil {
			t.Fatal(err)
		}
		if len(kw) >= 5 && kw[3].Score > kw[4].Score && !slices.Equal(ids(hyKW[:4]), ids(kw[:4])) {
			t.Fatalf("dense weight ~0: hybrid %v, keyword %v", ids(hyKW), ids(kw[:5]))
		}
		for _, f := range []Fusion{Convex, RRF} {
			hy, err := s.SearchHybrid(context.Background(), q, d.Title, HybridOptions{Dense: SearchOptions{K: 10, NProbe: 4}, Fusion: f})
			if err != nil {
				t.Fatal(err)
			}
			if len(hy) != 10 {
				t.Fatalf("%s: %d hits", f, len(hy))
			}
			for j := 1; j < len(hy); j++ {
				if hy[j].Score > hy[j-1].Score {
					t.Fatalf("%s: hits out of order", f)
				}
			}
		}
	}
	if found*10 < total*9 {
		t.Fatalf("dense search found the episode from its own text %d of %d times", found, total)
	}
	if _, err := s.SearchHybrid(context.Background(), make([]float32, testDim), "x", HybridOptions{Fusion: "max"}); err == nil {
		t.Fatal("unknown fusion accepted")
	}
	if _, err := s.Search(context.Background(), make([]float32, 3), SearchOptions{}); err == nil {
		t.Fatal("query of the wrong width accepted")
	}
}

func TestOpenRefusesWrongModelAndMissingIndex(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	dir := t.TempDir()
	if err := Create(dir, model, 1, docs[:100], vecs[:100*testDim]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "another-model", OpenOptions{}); !errors.Is(err, ErrWrongModel) {
		t.Fatalf("wrong model: got %v", err)
	}
	if _, err := Open(t.TempDir(), "", OpenOptions{}); err == nil {
		t.Fatal("empty folder opened")
	}
	if err := Create(dir, model, 0, docs, vecs); err == nil {
		t.Fatal("zero shards accepted")
	}

	// An index whose keyword terms another analyzer made is refused with ErrVersion (its
	// postings would miss the query's terms), and a new Create over it serves again.
	if err := Check(dir); err != nil {
		t.Fatalf("Check of a fresh index: %v", err)
	}
	if err := Check(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Check of an empty folder: %v", err)
	}
	man, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	man.Analyzer = ""
	if err := writeManifest(dir, man); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("Check of an index of the old analyzer: %v", err)
	}
	if _, err := Open(dir, model.Fingerprint, OpenOptions{}); !errors.Is(err, ErrVersion) {
		t.Fatalf("Open of an index of the old analyzer: %v", err)
	}
	if err := Create(dir, model, 1, docs[:100], vecs[:100*testDim]); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, model.Fingerprint, OpenOptions{})
	if err != nil {
		t.Fatalf("rebuilt index: %v", err)
	}
	_ = ix.Close()
}

// TestShardSubsetKeywordScores: an Index opened with one shard (OpenOptions.Shards) scores
// keywords with the whole index's statistics, so its episodes get the scores a whole-index
// search gives them, before and after a delete and an add; it is read-only; the replaced
// statistics file is removed.
func TestShardSubsetKeywordScores(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	dir := t.TempDir()
	cut := len(docs) - 20
	ix := createOpen(t, dir, model, 2, docs[:cut], vecs[:cut*testDim], "")
	check := func(what string) {
		part, err := Open(dir, "", OpenOptions{Shards: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		defer part.Close()
		if part.stats == nil {
			t.Fatalf("%s: the shard subset has no whole-index statistics", what)
		}
		whole := ix.Searcher()
		for _, q := range []string{"christmas food", "bread baking", "interview with the author", docs[5].Title} {
			all := whole.SearchKeyword(q, 200, nil)
			var want []Hit
			for _, h := range all {
				if h.Shard == 1 {
					want = append(want, h)
				}
			}
			got, err := part.SearchKeyword(q, len(want), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || !slices.EqualFunc(got, want, func(a, b Hit) bool { return a.ID == b.ID && a.Score == b.Score }) {
				t.Fatalf("%s: %q on shard 1 with index statistics: %v, whole index %v", what, q, ids(got), ids(want))
			}
		}
		if part.Len() >= ix.Len() || part.Add(docs[:1], vecs[:testDim]) == nil {
			t.Fatalf("%s: shard subset holds %d of %d episodes; Add on it accepted", what, part.Len(), ix.Len())
		}
	}
	check("built")
	first, _ := readManifest(dir)
	if _, err := ix.Delete([]string{docs[0].ID, docs[1].ID, docs[2].ID}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(docs[cut:], vecs[cut*testDim:]); err != nil {
		t.Fatal(err)
	}
	check("after delete and add")
	if _, err := os.Stat(filepath.Join(dir, first.BM25Stats)); !os.IsNotExist(err) {
		t.Fatalf("replaced statistics file %s still there (%v)", first.BM25Stats, err)
	}
	if _, err := readBM25Stats(dir, "../x"); err == nil {
		t.Fatal("a statistics name outside the folder was accepted")
	}
}

// TestVersionFollowsManifest: the version names the manifest state, changes with every
// change, and a fresh Open of the same state reports the same version.
func TestVersionFollowsManifest(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	dir := t.TempDir()
	ix := createOpen(t, dir, model, 2, docs[:50], vecs[:50*testDim], "")
	v1 := ix.Version()
	if _, err := ix.Delete([]string{docs[0].ID}); err != nil {
		t.Fatal(err)
	}
	v2 := ix.Version()
	again, err := Open(dir, "", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if len(v1) != 12 || v1 == v2 || again.Version() != v2 {
		t.Fatalf("versions: built %q, after a delete %q, reopened %q", v1, v2, again.Version())
	}
}
