package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/vec"
)

// sampleQueries makes short text queries from the episodes (two words of each title, the
// way a listener types a few words), embedded like the episodes.
func sampleQueries(docs []Doc, every int) (texts []string, vecs []float32) {
	for i := 0; i < len(docs); i += every {
		words := bm25.Analyze(docs[i].Title)
		if len(words) < 2 {
			continue
		}
		q := strings.Join(words[len(words)-2:], " ")
		texts = append(texts, q)
		vecs = append(vecs, embedText(q)...)
	}
	return texts, vecs
}

// spilledIndex builds an index of the test episodes with query-guided and SOAR spilling.
func spilledIndex(t *testing.T, cfg Config, shards int) (dir string, docs []Doc, vecs []float32, m *Model, st SpillStats) {
	t.Helper()
	docs, vecs = loadEpisodes(t)
	cfg.Metric, cfg.NList, cfg.M, cfg.Bits, cfg.Iters, cfg.Seed, cfg.Fingerprint = Cosine, 8, 16, 4, 5, 3, "test-fingerprint"
	m, err := Train(vecs, testDim, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, qv := sampleQueries(docs, 2)
	extra, st, err := m.Spill(vecs, SpillOptions{MaxLists: 3, Queries: qv, SOAR: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Guided == 0 || st.SOAR == 0 {
		t.Fatalf("spilling assigned nothing: %+v", st)
	}
	dir = filepath.Join(t.TempDir(), "ix")
	if err := CreateSpill(dir, m, shards, docs, vecs, extra); err != nil {
		t.Fatal(err)
	}
	return dir, docs, vecs, m, st
}

func noDuplicates(t *testing.T, what string, hits []Hit) {
	t.Helper()
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.ID] {
			t.Fatalf("%s: episode %s appears twice in one answer: %v", what, h.ID, ids(hits))
		}
		seen[h.ID] = true
	}
}

// TestSpillFindsMoreAndNeverRepeats: spilled entries raise the share of the exact top 10
// found with few lists probed, an answer never holds an episode twice, and with every list
// probed and every candidate re-ranked exactly the answer is exact search's.
func TestSpillFindsMoreAndNeverRepeats(t *testing.T) {
	dir, docs, vecs, m, st := spilledIndex(t, Config{Rerank: RerankFlat}, 2)
	ix, err := Open(dir, "test-fingerprint", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	plainDir := filepath.Join(t.TempDir(), "plain")
	plain := createOpen(t, plainDir, m, 2, docs, vecs, "test-fingerprint")
	if got, want := ix.BytesPerVector(), m.BytesPerVector()+float64(st.Guided+st.SOAR)*(8+4)/float64(len(docs)); got-want > 1e-6 || want-got > 1e-6 {
		t.Fatalf("bytes per vector %.3f, want %.3f (model %.1f + spilled entries)", got, want, m.BytesPerVector())
	}
	texts, _ := sampleQueries(docs, 3)
	found := map[bool]int{}
	for i, text := range texts {
		q := embedText(text + " episode")
		truth := bruteForce(docs, vecs, slices.Clone(q), Cosine, 10)
		want := map[string]bool{}
		for _, s := range truth {
			want[s.id] = true
		}
		for _, spilled := range []bool{false, true} {
			x := plain
			if spilled {
				x = ix
			}
			hits, err := x.Search(context.Background(), q, SearchOptions{K: 10, NProbe: 2, RerankFactor: 8})
			if err != nil {
				t.Fatal(err)
			}
			noDuplicates(t, fmt.Sprintf("query %d", i), hits)
			for _, h := range hits {
				if want[h.ID] {
					found[spilled]++
				}
			}
		}
		all, err := ix.Search(context.Background(), q, SearchOptions{K: 10, NProbe: m.NList, RerankFactor: len(docs)})
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range all {
			if h.ID != truth[j].id || h.Score != truth[j].score {
				t.Fatalf("query %q, every list probed, hit %d: %s %v, exact search %s %v", text, j, h.ID, h.Score, truth[j].id, truth[j].score)
			}
		}
	}
	if found[true] <= found[false] {
		t.Fatalf("with 2 of 8 lists probed, spilled index found %d of the exact top 10s, plain %d: spilling should find more", found[true], found[false])
	}
	t.Logf("exact top-10 found at nprobe 2: plain %d, spilled %d (%.2f lists per episode)", found[false], found[true], st.ListsPerEpisode())
}

// TestSpillSurvivesUpdatesAndCompaction: deletes and adds on a spilled index never return a
// deleted episode or one twice, compaction keeps every live episode's spilled entries (same
// answers before and after), and the segment file round-trips them.
func TestSpillSurvivesUpdatesAndCompaction(t *testing.T) {
	dir, docs, vecs, _, _ := spilledIndex(t, Config{Rerank: RerankTQ, RerankBytes: 24}, 2)
	ix, err := Open(dir, "test-fingerprint", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var del []string
	for i := 0; i < len(docs); i += 5 {
		del = append(del, docs[i].ID)
	}
	if _, err := ix.Delete(del); err != nil {
		t.Fatal(err)
	}
	// Re-add a few deleted ones (new copies, not spilled) and replace a live one.
	if err := ix.Add([]Doc{docs[0], docs[1]}, append(slices.Clone(vec.Row(vecs, testDim, 0)), vec.Row(vecs, testDim, 1)...)); err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, id := range del {
		deleted[id] = true
	}
	delete(deleted, docs[0].ID)
	texts, _ := sampleQueries(docs, 4)
	run := func(what string) [][]Hit {
		var out [][]Hit
		for _, text := range texts {
			for _, np := range []int{1, 3, 8} {
				hits, err := ix.Search(context.Background(), embedText(text), SearchOptions{K: 15, NProbe: np, RerankFactor: 4})
				if err != nil {
					t.Fatal(err)
				}
				noDuplicates(t, what, hits)
				for _, h := range hits {
					if deleted[h.ID] {
						t.Fatalf("%s: deleted episode %s returned", what, h.ID)
					}
				}
				out = append(out, hits)
			}
		}
		return out
	}
	before := stripShard(run("after delete+add"))
	spilledLive := 0
	for _, v := range ix.Searcher().views {
		for l := 0; l < v.Seg.model.NList; l++ {
			own := int(v.Seg.listStart[l+1] - v.Seg.listStart[l])
			for j := own; j < v.Seg.listEntries(l); j++ {
				if v.Deleted == nil || !v.Deleted[v.Seg.entryDoc(l, j)] {
					spilledLive++
				}
			}
		}
	}
	if err := ix.Compact(); err != nil {
		t.Fatal(err)
	}
	after := 0
	for _, v := range ix.Searcher().views {
		after += v.Seg.SpillEntries()
	}
	if after != spilledLive || after == 0 {
		t.Fatalf("compaction kept %d spilled entries, the live episodes had %d", after, spilledLive)
	}
	equalResults(t, "compacted", stripShard(run("compacted")), before)
	ix.Close()
	if ix, err = Open(dir, "test-fingerprint", OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	equalResults(t, "reopened", stripShard(run("reopened")), before)
}

// TestSpillFormatCorruption: a spilled entry naming an episode out of range, or spill
// starts that do not cover the entries, are refused as corrupt.
func TestSpillFormatCorruption(t *testing.T) {
	dir, _, _, _, _ := spilledIndex(t, Config{Rerank: RerankSQ8}, 1)
	ix, err := Open(dir, "test-fingerprint", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seg := ix.Searcher().views[0].Seg
	defer ix.Close()
	data, err := MarshalSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalSegment(data, "test-fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	if back.SpillEntries() != seg.SpillEntries() || !slices.Equal(back.spillStart, seg.spillStart) {
		t.Fatalf("round trip: %d spilled entries, want %d", back.SpillEntries(), seg.SpillEntries())
	}
	for name, damage := range map[string]func(s *Segment){
		"episode out of range": func(s *Segment) { s.spillDoc[0] = uint32(s.n) },
		"starts past entries":  func(s *Segment) { s.spillStart[len(s.spillStart)-1]++ },
	} {
		c, err := UnmarshalSegment(slices.Clone(data), "test-fingerprint")
		if err != nil {
			t.Fatal(err)
		}
		c.spillStart, c.spillDoc = slices.Clone(c.spillStart), slices.Clone(c.spillDoc)
		damage(c)
		b, err := MarshalSegment(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalSegment(b, "test-fingerprint"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, _, err := seg.model.Spill(make([]float32, testDim), SpillOptions{Queries: []float32{float32(nan())}}); err == nil {
		t.Error("spilling with non-finite sample queries accepted")
	}
}

func nan() float64 { var z float64; return z / z }

// TestOperatingPointRecorded: the chosen operating point reaches its target on the queries
// it was chosen on, is recorded in the manifest, survives reopening and updates, and is what
// a search with zero NProbe and RerankFactor uses.
func TestOperatingPointRecorded(t *testing.T) {
	dir, docs, vecs, _, _ := spilledIndex(t, Config{Rerank: RerankTQ, RerankBytes: 24}, 2)
	ix, err := Open(dir, "test-fingerprint", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if op := ix.Searcher().OperatingPoint(); op.NProbe != defaultNProbe || op.RerankFactor != defaultRerankFactor {
		t.Fatalf("operating point before choosing: %+v", op)
	}
	_, qv := sampleQueries(docs, 3)
	all := make([]string, len(docs))
	for i, d := range docs {
		all[i] = d.ID
	}
	op, err := ChooseOperatingPoint(ix.Searcher(), qv, vecs, all, 0.7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if op.Recall < 0.7 || op.NProbe < 1 || op.NProbe > 8 || op.Queries != len(qv)/testDim {
		t.Fatalf("operating point %+v", op)
	}
	hard, err := ChooseOperatingPoint(ix.Searcher(), qv, vecs, all, 0.7, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if hard.Queries != int(0.3*float64(len(qv)/testDim)) {
		t.Fatalf("hardest 0.3 kept %d of %d queries", hard.Queries, len(qv)/testDim)
	}
	if _, err := ChooseOperatingPoint(ix.Searcher(), qv, vecs, all, 1.5, 0); err == nil {
		t.Fatal("target recall 1.5 accepted")
	}
	if err := ix.SetOperatingPoint(op); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Delete([]string{docs[3].ID}); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, err = Open(dir, "test-fingerprint", OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := ix.Searcher().OperatingPoint(); got != op {
		t.Fatalf("reopened operating point %+v, want %+v", got, op)
	}
	q := embedText(docs[10].Title)
	implicit, err := ix.Search(context.Background(), q, SearchOptions{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := ix.Search(context.Background(), q, SearchOptions{K: 10, NProbe: op.NProbe, RerankFactor: op.RerankFactor})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(implicit, explicit) {
		t.Fatalf("default search %v, at the operating point %v", ids(implicit), ids(explicit))
	}
}

// TestFiltersFillK sweeps filter selectivity from one matching episode to all of them, for
// language, show and date filters, dense and hybrid, with one list probed: whenever at least
// K live episodes match, K come back, all matching; otherwise every match does.
func TestFiltersFillK(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	// Languages by bucket: 1, 3, 9, 27, 81 episodes, the rest "rest"; dates: episode i on day i.
	sizes := []int{1, 3, 9, 27, 81}
	day0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for b, n := range sizes {
		for j := 0; j < n && i < len(docs); j++ {
			docs[i].Language = fmt.Sprintf("x%d", b)
			docs[i].ShowID = fmt.Sprintf("show%d", b)
			i++
		}
	}
	for ; i < len(docs); i++ {
		docs[i].Language, docs[i].ShowID = "rest", "show-rest"
	}
	for i := range docs {
		docs[i].Date = day0.AddDate(0, 0, i)
	}
	m := trainTestModel(t, vecs)
	dir := filepath.Join(t.TempDir(), "ix")
	ix := createOpen(t, dir, m, 2, docs, vecs, "test-fingerprint")
	const k = 10
	q := embedText("news politics history")
	check := func(what string, flt *Filter, matches int, match func(Doc) bool) {
		t.Helper()
		dense, err := ix.Search(context.Background(), q, SearchOptions{K: k, NProbe: 1, Filter: flt})
		if err != nil {
			t.Fatal(err)
		}
		hybrid, err := ix.SearchHybrid(context.Background(), q, "news", HybridOptions{Dense: SearchOptions{K: k, NProbe: 1, Filter: flt}})
		if err != nil {
			t.Fatal(err)
		}
		for side, hits := range map[string][]Hit{"dense": dense, "hybrid": hybrid} {
			if want := min(k, matches); len(hits) != want {
				t.Errorf("%s, %s: %d hits for %d matching episodes, want %d", what, side, len(hits), matches, want)
			}
			for _, h := range hits {
				if !match(h.Doc) {
					t.Errorf("%s, %s: hit %s does not match", what, side, h.ID)
				}
			}
			noDuplicates(t, what, hits)
		}
	}
	for b, n := range sizes {
		lang, show := fmt.Sprintf("x%d", b), fmt.Sprintf("show%d", b)
		check("lang "+lang, &Filter{Languages: []string{lang}}, n, func(d Doc) bool { return d.Language == lang })
		check("show "+show, &Filter{ShowIDs: []string{show}}, n, func(d Doc) bool { return d.ShowID == show })
	}
	check("lang rest", &Filter{Languages: []string{"rest"}}, len(docs)-121, func(d Doc) bool { return d.Language == "rest" })
	check("no such language", &Filter{Languages: []string{"zz"}}, 0, func(Doc) bool { return false })
	for _, days := range []int{0, 4, 30, len(docs)} {
		from, to := day0.AddDate(0, 0, 100), day0.AddDate(0, 0, 100+days)
		n := min(days+1, len(docs)-100)
		check(fmt.Sprintf("%d days", days+1), &Filter{From: from, To: to}, n, func(d Doc) bool { return !d.Date.Before(from) && !d.Date.After(to) })
	}
}
