package wasmscan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/podsearch/podsearch/cache/querylog"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/prometheus/client_golang/prometheus"
)

// corpus is a set of episodes with their vectors and the queries to search them with.
type corpus struct {
	docs    []index.Doc
	vecs    []float32
	d       int
	queries []float32
	texts   []string // keyword side of hybrid queries (may be empty)
	metric  index.Metric
}

// build writes an index of c's first nBase episodes with cfg into a new folder.
func build(t *testing.T, c *corpus, nBase int, cfg index.Config) string {
	t.Helper()
	dir := t.TempDir()
	model, err := index.Train(c.vecs[:nBase*c.d], c.d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Create(dir, model, 2, c.docs[:nBase], c.vecs[:nBase*c.d]); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openBoth opens the index in dir twice: with the native kernel and with the wasm Backend.
func openBoth(t *testing.T, dir string) (native, wasm *index.Index) {
	t.Helper()
	native, err := index.Open(dir, "", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err = index.Open(dir, "", index.OpenOptions{Backend: NewBackend(runtimeT(t), 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := errors.Join(wasm.Close(), native.Close()); err != nil {
			t.Error(err)
		}
	})
	return native, wasm
}

// mutate deletes every 9th of the base episodes and adds the rest of c as a delta segment.
func mutate(t *testing.T, c *corpus, nBase int, dir string) {
	t.Helper()
	ix, err := index.Open(dir, "", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var del []string
	for i := 0; i < nBase; i += 9 {
		del = append(del, c.docs[i].ID)
	}
	if _, err := ix.Delete(del); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(c.docs[nBase:], c.vecs[nBase*c.d:]); err != nil {
		t.Fatal(err)
	}
	if ix.Segments() <= 2 {
		t.Fatalf("%d segments after the update, want a delta", ix.Segments())
	}
}

// checkParity builds, compares, updates and compares again.
func checkParity(t *testing.T, c *corpus, nBase int, cfg index.Config) {
	dir := build(t, c, nBase, cfg)
	calls := scanCalls(t)
	native, wasm := openBoth(t, dir)
	n := compare(t, c, native, wasm)
	mutate(t, c, nBase, dir)
	native, wasm = openBoth(t, dir)
	n += compare(t, c, native, wasm)
	// Every wasm search made guest calls: the parity is not native against native.
	if got := scanCalls(t) - calls; got < float64(n) {
		t.Fatalf("%d scan guest calls for %d searches", int(got), n)
	}
	t.Logf("%d searches equal", n)
}

// compare searches both indexes with every query and several settings and fails on the first
// difference in ids, scores or shards.
func compare(t *testing.T, c *corpus, native, wasm *index.Index) int {
	t.Helper()
	ctx := context.Background()
	nq := len(c.queries) / c.d
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	settings := []index.SearchOptions{
		{K: 10, NProbe: 4, RerankFactor: 4},
		{K: 10, NProbe: 1, RerankFactor: 1},
		{K: 25, NProbe: 64, RerankFactor: 8},
		{K: 10, NProbe: 8, RerankFactor: 4, Filter: &index.Filter{Languages: []string{"en"}, From: from}},
	}
	checked := 0
	for qi := 0; qi < nq; qi++ {
		q := vec.Row(c.queries, c.d, qi)
		for si, o := range settings {
			want, err := native.Searcher().Search(ctx, q, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wasm.Searcher().Search(ctx, q, o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(hitKeys(got), hitKeys(want)) {
				t.Fatalf("query %d, setting %d: wasm %v, native %v", qi, si, hitKeys(got), hitKeys(want))
			}
			if o.Filter != nil {
				for _, h := range got {
					if h.Language != "en" || h.Date.Before(from) {
						t.Fatalf("query %d: hit %s (%s, %v) fails the filter", qi, h.ID, h.Language, h.Date)
					}
				}
			}
			checked++
		}
		if qi < len(c.texts) {
			ho := index.HybridOptions{Dense: settings[0]}
			want, err := native.Searcher().SearchHybrid(ctx, q, c.texts[qi], ho)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wasm.Searcher().SearchHybrid(ctx, q, c.texts[qi], ho)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(hitKeys(got), hitKeys(want)) {
				t.Fatalf("hybrid query %d: wasm %v, native %v", qi, hitKeys(got), hitKeys(want))
			}
			checked++
		}
	}
	return checked
}

func hitKeys(hs []index.Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = fmt.Sprintf("%s/%d/%08x", h.ID, h.Shard, h.Score)
	}
	return out
}

// demoCorpus embeds the first n real Taddy episodes and the first nq TREC podcast topics
// with the real encoder.
func demoCorpus(t *testing.T, n, nq int) *corpus {
	t.Helper()
	f, err := os.Open(testenv.Shared(t, "data/podcasts/taddy_sample/episodes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := ingest.ReadJSONL(f, "episodes", ingest.DefaultJSONLMapping)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ingest.Build([]*ingest.Batch{b}, ingest.Options{NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	eps := res.Episodes[:min(n, len(res.Episodes))]
	c := &corpus{d: encoder.Dim, metric: index.Cosine}
	texts := make([]string, len(eps))
	for i, e := range eps {
		d, _ := ingest.IndexDoc(e) // a bad date leaves the episode undated
		c.docs = append(c.docs, d)
		texts[i] = e.Text
	}
	topics := readTopics(t)
	topics = topics[:min(nq, len(topics))]
	sess, tok := testmodel.Session(t), testmodel.Tokenizer(t)
	vecs, err := encoder.EmbedTexts(context.Background(), tok, sess, append(texts, topics...), 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vecs[:len(eps)] {
		c.vecs = append(c.vecs, v...)
	}
	for _, v := range vecs[len(eps):] {
		c.queries = append(c.queries, v...)
	}
	c.texts = topics
	return c
}

// readTopics reads the TREC 2020 podcast topics (the query texts, in file order).
func readTopics(t *testing.T) []string {
	t.Helper()
	entries, err := querylog.ReadFile(testenv.Shared(t, "data/queries/trec_podcasts_topics.jsonl"), querylog.Auto)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Query
	}
	return out
}

// TestIndexKernelParityDemo: on real episodes embedded by the real encoder (cosine), the
// index searched through the wasm Backend returns exactly the native hits (ids, scores,
// shards), for 4-bit and 8-bit PQ, 8-bit, 4-bit, transform-quantized and no re-rank,
// filters, hybrid, and after deletes and a delta segment.
func TestIndexKernelParityDemo(t *testing.T) {
	c := demoCorpus(t, 500, 30)
	nBase := 450
	for _, cfg := range []index.Config{
		{NList: 12, Seed: 1},
		{NList: 12, Seed: 1, Rerank: index.RerankSQ4},
		{NList: 12, Seed: 1, Rerank: index.RerankNone},
		{NList: 12, Seed: 1, Rerank: index.RerankTQ, RerankBytes: 128},
		{NList: 4, Seed: 1, Bits: 8, M: 16, Iters: 2, TrainSize: 300},
	} {
		t.Run(cfg.String(), func(t *testing.T) {
			checkParity(t, c, nBase, cfg)
		})
	}
}

// TestIndexKernelParitySIFT: the same on SIFT10K's real descriptors with the L2 metric
// (stored norms), the attributes for filters made up per vector.
func TestIndexKernelParitySIFT(t *testing.T) {
	s := loadSIFT(t)
	n := 2200
	c := siftCorpus(s, n)
	c.metric, c.queries = index.L2, s.queries[:25*s.d]
	langs := []string{"en", "de", "en", "fr"}
	for i := range c.docs {
		c.docs[i].ShowID, c.docs[i].Language = fmt.Sprintf("show-%d", i%13), langs[i%len(langs)]
		c.docs[i].Date = time.Date(2018+i%6, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
	}
	for _, cfg := range []index.Config{
		{Metric: index.L2, NList: 24, Seed: 1},
		{Metric: index.L2, NList: 8, Seed: 1, Bits: 8, M: 16, Iters: 2, TrainSize: 1000},
	} {
		t.Run(fmt.Sprintf("bits%d", max(cfg.Bits, 4)), func(t *testing.T) {
			checkParity(t, c, 2000, cfg)
		})
	}
}

// siftCorpus is SIFT10K's first n base vectors as documents "sift-00000", ... (no metadata).
func siftCorpus(s *sift, n int) *corpus {
	c := &corpus{d: s.d, vecs: s.base[:n*s.d]}
	for i := range n {
		c.docs = append(c.docs, index.Doc{ID: fmt.Sprintf("sift-%05d", i)})
	}
	return c
}

// TestIndexKernelContext: a done context stops a search on either kernel with its error.
func TestIndexKernelContext(t *testing.T) {
	s := loadSIFT(t)
	n := 2000
	c := siftCorpus(s, n)
	native, wasm := openBoth(t, build(t, c, n, index.Config{Metric: index.L2, NList: 16, Seed: 1}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, ix := range []*index.Index{native, wasm} {
		if _, err := ix.Searcher().Search(ctx, s.query(0), index.SearchOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("search with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := ix.Searcher().Search(context.Background(), s.query(0), index.SearchOptions{}); err != nil {
			t.Fatalf("search after a cancelled one: %v", err)
		}
	}
}

// scanCalls is the number of scan guest calls made so far in this process.
func scanCalls(t *testing.T) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := wasmhost.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "podsearch_wasm_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "module" && l.GetValue() == "scan" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestIndexKernelFallsBackToNative: a segment the guest cannot hold (a runtime whose memory
// limit is below the shard's codes) is scanned natively instead: the index opens and
// answers as the native one.
func TestIndexKernelFallsBackToNative(t *testing.T) {
	s := loadSIFT(t)
	n := 2000
	c := siftCorpus(s, n)
	dir := build(t, c, n, index.Config{Metric: index.L2, NList: 16, Seed: 1})
	small, err := wasmhost.New(context.Background(), wasmhost.Config{MemoryLimitPages: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(context.Background())
	ix, err := index.Open(dir, "", index.OpenOptions{Backend: NewBackend(small, 1)})
	if err != nil {
		t.Fatalf("open with a backend that cannot hold the segments: %v", err)
	}
	defer ix.Close()
	native, err := index.Open(dir, "", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	for qi := 0; qi < 10; qi++ {
		got, err := ix.Search(context.Background(), s.query(qi), index.SearchOptions{K: 10})
		if err != nil {
			t.Fatal(err)
		}
		want, err := native.Search(context.Background(), s.query(qi), index.SearchOptions{K: 10})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hitKeys(got), hitKeys(want)) {
			t.Fatalf("query %d: %v, native %v", qi, hitKeys(got), hitKeys(want))
		}
	}
}

// TestKernelRangesInBoundedCalls: ranges longer than one call's bound, and more ranges than
// one call takes, give the sums and distances core/pq computes range by range.
func TestKernelRangesInBoundedCalls(t *testing.T) {
	s := loadSIFT(t)
	n := 4000
	c := siftCorpus(s, n)
	for _, bits := range []int{4, 8} {
		cfg := index.Config{Metric: index.L2, NList: 8, Seed: 1, Bits: bits, Rerank: index.RerankNone}
		if bits == 8 {
			cfg.M, cfg.Iters, cfg.TrainSize = 16, 2, 1000
		}
		dir := build(t, c, n, cfg)
		seg, err := index.OpenSegment(filepath.Join(dir, "shard-000-000001.seg"), "")
		if err != nil {
			t.Fatal(err)
		}
		defer seg.Close()
		k, err := NewBackend(runtimeT(t), 1).NewKernel(context.Background(), seg)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close(context.Background())
		m := seg.Model()
		lut := make([]float32, m.PQ.M*m.PQ.Ksub())
		m.PQ.InnerProductLUT(s.query(3), -2, lut)
		qt := &index.QueryTables{LUT: lut, L2: true}
		if bits == 4 {
			qt.LUT, qt.QLUT = nil, make([]uint8, m.PQ.M*16)
			pq.QuantizeLUT(lut, m.PQ.M, 16, qt.QLUT)
		}
		codes, _ := seg.ScanCodes()
		units := seg.Len()
		if bits == 4 {
			units = seg.Blocks()
		}
		// The whole segment 9 times (past the per-call bound), then 2,500 one-unit ranges
		// (past the per-call range count).
		var rs []index.Range
		for range 9 {
			rs = append(rs, index.Range{Start: 0, End: units})
		}
		for i := range 2500 {
			rs = append(rs, index.Range{Start: i % units, End: i%units + 1})
		}
		call, err := k.Begin(context.Background(), qt)
		if err != nil {
			t.Fatal(err)
		}
		M := m.PQ.M
		if bits == 4 {
			got, want := scanRangesBoth(t, rs, pq.BlockSize, call.FastScan4, func(r index.Range, part []uint16) error {
				return pq.ScanFastScan4(codes[r.Start*M*16:r.End*M*16], M, qt.QLUT, part)
			})
			if !slices.Equal(got, want) {
				t.Fatal("4-bit sums over many ranges differ from core/pq")
			}
			if err := call.FastScan4([]index.Range{{Start: 0, End: units + 1}}, got); err == nil {
				t.Fatal("a range past the segment was accepted")
			}
		} else {
			got, want := scanRangesBoth(t, rs, 1, call.Scan8, func(r index.Range, part []float32) error {
				return pq.Scan8(codes[r.Start*M:r.End*M], M, lut, part)
			})
			if !slices.Equal(got, want) {
				t.Fatal("8-bit distances over many ranges differ from core/pq")
			}
		}
		call.End()
	}
}

// scanRangesBoth returns what the kernel call writes for rs (per unit, per values out) and
// what core/pq computes range by range.
func scanRangesBoth[T any](t *testing.T, rs []index.Range, per int, kernel func([]index.Range, []T) error, native func(index.Range, []T) error) (got, want []T) {
	t.Helper()
	for _, r := range rs {
		part := make([]T, (r.End-r.Start)*per)
		if err := native(r, part); err != nil {
			t.Fatal(err)
		}
		want = append(want, part...)
	}
	got = make([]T, len(want))
	if err := kernel(rs, got); err != nil {
		t.Fatal(err)
	}
	return got, want
}
