package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/scanbench"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	wasmscan "github.com/podsearch/podsearch/wasm/scan"
	"github.com/podsearch/podsearch/wasm/scanref"
	wasmtok "github.com/podsearch/podsearch/wasm/tokenize"
)

func init() {
	registerBench("wasm", "tokenizer and PQ scan: native Go vs Go-in-wasm vs C-SIMD-in-wasm (wazero), with parity checks", benchWasm)
}

// wasmBenchRow is one measured engine and workload, printed as JSON with --json.
type wasmBenchRow struct {
	Workload   string  `json:"workload"`
	Engine     string  `json:"engine"`
	PerSecond  float64 `json:"per_second"`
	Unit       string  `json:"unit"`
	USPerQuery float64 `json:"us_per_query,omitempty"`
	RecallAt10 float64 `json:"recall@10,omitempty"`
	Vs         float64 `json:"vs_native"`
}

func benchWasm(args []string) error {
	fs := newFlagSet("bench wasm", "[flags]",
		"Runs the edge's two WebAssembly workloads three ways in one process, one call at a time on\n"+
			"one goroutine: natively in Go, as Go compiled to wasip1, and (for the scan) as the C + SIMD\n"+
			"kernel, the guests in wazero. Every engine's output is first checked equal to native Go\n"+
			"(token ids; top-k ids and distances), then timed in CPU time of the benchmark's thread\n"+
			"(so a busy machine slows every engine alike). The scan runs on SIFT10K, or on any .fvecs\n"+
			"(--fvecs, e.g. the demo index's vectors.fvecs). "+
			"Reports tokenizer sentences/s, scan million codes/s\n"+
			"and, for the full fast-scan + int8 re-rank search, microseconds per query and recall@10\n"+
			"against the data set's exact ground truth.")
	texts := fs.String("texts", filepath.Join("..", "shared", "golden", "use-lite", "use-lite-golden.jsonl"),
		"JSONL file whose lines have a \"text\" field (the tokenizer workload)")
	vocab := fs.String("vocab", assets.VocabPath(), "tokenizer vocabulary (vocab.json or binary)")
	sift := fs.String("sift", filepath.Join("..", "shared", "data", "ann", "sift10k"),
		"folder with siftsmall_base.fvecs, siftsmall_query.fvecs, siftsmall_groundtruth.ivecs")
	fvecs := fs.String("fvecs", "", "instead of --sift: base vectors (.fvecs, e.g. an index folder's vectors.fvecs,\n"+
		"the demo corpus's embeddings); the first --holdout rows become the queries, ranked by\n"+
		"inner product with exact ground truth")
	holdout := fs.Int("holdout", 200, "with --fvecs: rows held out as queries")
	tile := fs.Int("tile", 10, "the scan-throughput shard repeats the base vectors this many times")
	k := fs.Int("k", 10, "results per query")
	cands := fs.Int("cands", 100, "fast-scan candidates re-ranked with int8 codes per query")
	minSec := fs.Float64("min-seconds", 1, "repeat each workload at least this long")
	asJSON := fs.Bool("json", false, "print one JSON object per row instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tile < 1 || *k < 1 || *k > 100 || *cands < *k || *cands > wasmscan.MaxK || *minSec <= 0 {
		return fmt.Errorf("%w: need --tile >= 1, --k in 1..100, --cands in k..%d, --min-seconds > 0", errUsage, wasmscan.MaxK)
	}
	ctx := context.Background()
	rt, err := wasmhost.Shared()
	if err != nil {
		return err
	}
	dur := time.Duration(*minSec * float64(time.Second))
	var rows []wasmBenchRow
	tokRows, err := benchWasmTokenizer(ctx, rt, *texts, *vocab, dur)
	if err != nil {
		return err
	}
	rows = append(rows, tokRows...)
	var ds *wasmBenchData
	if *fvecs != "" {
		ds, err = loadWasmBenchFvecs(*fvecs, *holdout, *k)
	} else {
		ds, err = loadWasmBenchSIFT(*sift)
	}
	if err != nil {
		return err
	}
	scanRows, err := benchWasmScan(ctx, rt, ds, *tile, *k, *cands, dur)
	if err != nil {
		return err
	}
	rows = append(rows, scanRows...)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Printf("| workload | engine | throughput | us/query | recall@10 | vs native Go |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		us, rec := "", ""
		if r.USPerQuery > 0 {
			us = fmt.Sprintf("%.1f", r.USPerQuery)
		}
		if r.RecallAt10 > 0 {
			rec = fmt.Sprintf("%.3f", r.RecallAt10)
		}
		fmt.Printf("| %s | %s | %.2f %s | %s | %s | %.2fx |\n", r.Workload, r.Engine, r.PerSecond, r.Unit, us, rec, r.Vs)
	}
	return nil
}

// timeLoop calls fn (one pass over a workload of units items) until at least dur of the
// thread's CPU time passed and returns items per CPU second (wall seconds off Linux). The
// guests run on the calling thread, so CPU time charges each engine its own work only.
func timeLoop(units int, dur time.Duration, fn func() error) (float64, error) {
	now, release := threadCPUClock()
	defer release()
	start := now()
	done := 0
	for now()-start < dur || done == 0 {
		if err := fn(); err != nil {
			return 0, err
		}
		done += units
	}
	return float64(done) / (now() - start).Seconds(), nil
}

func benchWasmTokenizer(ctx context.Context, rt *wasmhost.Runtime, textsPath, vocabPath string, dur time.Duration) ([]wasmBenchRow, error) {
	texts, err := readJSONLTexts(textsPath)
	if err != nil {
		return nil, err
	}
	u, err := tokenizer.LoadFile(vocabPath)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	w, err := wasmtok.New(ctx, rt, u, 1)
	if err != nil {
		return nil, err
	}
	defer w.Close(ctx)
	fmt.Fprintf(os.Stderr, "tokenizer guest ready in %v (compile or cache load, instantiate, vocabulary)\n", time.Since(start).Round(time.Millisecond))
	for i, t := range texts {
		got, err := w.Encode(ctx, t)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(got, u.Encode(t)) {
			return nil, fmt.Errorf("bench wasm: the wasm tokenizer differs from native on text %d", i)
		}
	}
	native, err := timeLoop(len(texts), dur, func() error {
		for _, t := range texts {
			u.Encode(t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	guest, err := timeLoop(len(texts), dur, func() error {
		for _, t := range texts {
			if _, err := w.Encode(ctx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	wl := fmt.Sprintf("tokenize (%d texts)", len(texts))
	return []wasmBenchRow{
		{Workload: wl, Engine: "native Go", PerSecond: native, Unit: "sentences/s", Vs: 1},
		{Workload: wl, Engine: "Go in wasm", PerSecond: guest, Unit: "sentences/s", Vs: guest / native},
	}, nil
}

func readJSONLTexts(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench wasm: %w (give --texts)", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("bench wasm: %s line %d: %w", path, line, err)
		}
		out = append(out, rec.Text)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench wasm: no texts in %s", path)
	}
	return out, nil
}

// scanEngine runs one search pipeline; the three engines implement it.
type scanEngine struct {
	name   string
	search func(t *scanbench.Tables, query []float32, k, cands int) ([]wasmscan.Result, error)
	close  func() error
}

func scanEngines(ctx context.Context, rt *wasmhost.Runtime, data *wasmscan.Data, metric scanbench.Metric) ([]scanEngine, error) {
	var sc scanref.Scanner
	shard, err := wasmscan.New(ctx, rt, *data, 1)
	if err != nil {
		return nil, err
	}
	goGuest, err := scanbench.NewGoGuest(ctx, rt, *data)
	if err != nil {
		_ = shard.Close(ctx)
		return nil, err
	}
	return []scanEngine{
		{name: "native Go", search: func(t *scanbench.Tables, _ []float32, k, cands int) ([]wasmscan.Result, error) {
			return scanbench.NativeSearch(&sc, data, t, k, cands)
		}, close: func() error { return nil }},
		{name: "Go in wasm", search: func(t *scanbench.Tables, q []float32, k, cands int) ([]wasmscan.Result, error) {
			return goGuest.Search(ctx, t, q, metric, k, cands)
		}, close: func() error { return goGuest.Close(ctx) }},
		{name: "C SIMD in wasm", search: func(t *scanbench.Tables, _ []float32, k, cands int) ([]wasmscan.Result, error) {
			return scanbench.Search(ctx, shard, data, t, k, cands)
		}, close: func() error { return shard.Close(ctx) }},
	}, nil
}

// runEngines checks every engine against the first (native) on all queries, then times each.
func runEngines(engines []scanEngine, tabs []*scanbench.Tables, queries [][]float32, k, cands int, dur time.Duration) ([]float64, [][][]wasmscan.Result, error) {
	results := make([][][]wasmscan.Result, len(engines))
	for e, eng := range engines {
		for qi, t := range tabs {
			r, err := eng.search(t, queries[qi], k, cands)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", eng.name, err)
			}
			if e > 0 && !slices.Equal(r, results[0][qi]) {
				return nil, nil, fmt.Errorf("bench wasm: %s differs from native Go on query %d", eng.name, qi)
			}
			results[e] = append(results[e], r)
		}
	}
	rates := make([]float64, len(engines))
	for e, eng := range engines {
		rate, err := timeLoop(len(tabs), dur, func() error {
			for qi, t := range tabs {
				if _, err := eng.search(t, queries[qi], k, cands); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		rates[e] = rate
	}
	return rates, results, nil
}

// wasmBenchData is the scan workload: base vectors, queries, exact neighbours, the metric.
type wasmBenchData struct {
	name          string
	base, queries []float32
	d             int
	gt            [][]int32
	metric        scanbench.Metric
}

func loadWasmBenchSIFT(dir string) (*wasmBenchData, error) {
	ds := &wasmBenchData{name: "SIFT10K", metric: scanbench.L2}
	var err error
	if ds.base, ds.d, err = vec.ReadFvecs(filepath.Join(dir, "siftsmall_base.fvecs")); err != nil {
		return nil, fmt.Errorf("bench wasm: %w (give --sift or --fvecs)", err)
	}
	if ds.queries, _, err = vec.ReadFvecs(filepath.Join(dir, "siftsmall_query.fvecs")); err != nil {
		return nil, err
	}
	if ds.gt, err = vec.ReadIvecs(filepath.Join(dir, "siftsmall_groundtruth.ivecs")); err != nil {
		return nil, err
	}
	return ds, nil
}

// loadWasmBenchFvecs holds the first holdout rows out as queries and finds their exact
// inner-product neighbours among the rest.
func loadWasmBenchFvecs(path string, holdout, k int) (*wasmBenchData, error) {
	all, d, err := vec.ReadFvecs(path)
	if err != nil {
		return nil, fmt.Errorf("bench wasm: %w", err)
	}
	n := len(all) / d
	if holdout < 1 || n-holdout < 1000 {
		return nil, fmt.Errorf("%w: --holdout %d leaves %d of %d vectors (want >= 1000)", errUsage, holdout, n-holdout, n)
	}
	ds := &wasmBenchData{name: filepath.Base(path), queries: all[:holdout*d], base: all[holdout*d:], d: d, metric: scanbench.InnerProduct}
	nb := n - holdout
	for qi := 0; qi < holdout; qi++ {
		q := vec.Row(ds.queries, d, qi)
		var top scanref.TopK
		top.Reset(k)
		for i := 0; i < nb; i++ {
			top.Push(scanref.Result{ID: uint32(i), Dist: -vec.Dot(q, vec.Row(ds.base, d, i))})
		}
		var ids []int32
		for _, r := range top.Sorted(nil) {
			ids = append(ids, int32(r.ID))
		}
		ds.gt = append(ds.gt, ids)
	}
	return ds, nil
}

// pqShapes picks the sub-quantizer counts: 8-bit with 8 dimensions per code byte, 4-bit with
// 2 dimensions per code (at most 256, the fast-scan limit), or d when d is small or odd.
func pqShapes(d int) (m8, m4 int) {
	m8, m4 = d, d
	if d%8 == 0 {
		m8 = d / 8
	}
	if d%2 == 0 {
		m4 = d / 2
	}
	return m8, min(m4, pq.MaxFastScanM)
}

func benchWasmScan(ctx context.Context, rt *wasmhost.Runtime, ds *wasmBenchData, tile, k, cands int, dur time.Duration) ([]wasmBenchRow, error) {
	base, qs, d, gt, metric := ds.base, ds.queries, ds.d, ds.gt, ds.metric
	n := len(base) / d
	nq := len(qs) / d
	queries := make([][]float32, nq)
	for i := range queries {
		queries[i] = vec.Row(qs, d, i)
	}
	m8, m4 := pqShapes(d)
	start := time.Now()
	opts := kmeans.Options{Iters: 10, Seed: 1}
	pq8, err := pq.Train(base, d, m8, 8, opts)
	if err != nil {
		return nil, err
	}
	pq4, err := pq.Train(base, d, m4, 4, opts)
	if err != nil {
		return nil, err
	}
	sqq, err := sq.Train(base, d, 8)
	if err != nil {
		return nil, err
	}
	codes8, codes4 := pq8.EncodeAll(base), pq4.EncodeAll(base)
	sqCodes := sqq.EncodeAll(base)
	fmt.Fprintf(os.Stderr, "%s: %d x %d, %d queries; quantizers trained in %v\n", ds.name, n, d, nq, time.Since(start).Round(time.Millisecond))

	var rows []wasmBenchRow
	// Scan throughput: the base tiled, top-cands by PQ distance, no re-rank.
	for _, bits := range []int{8, 4} {
		q, m, codes := pq8, m8, codes8
		if bits == 4 {
			q, m, codes = pq4, m4, codes4
		}
		tiled := slices.Repeat(codes, tile)
		nt := n * tile
		if bits == 4 {
			if tiled, err = pq.PackFastScan4(tiled, nt, m); err != nil {
				return nil, err
			}
		}
		data := &wasmscan.Data{N: nt, M: m, Bits: bits, Codes: tiled}
		tabs := make([]*scanbench.Tables, nq)
		for i := range tabs {
			tabs[i] = scanbench.Prepare(q, nil, metric, queries[i])
		}
		engines, err := scanEngines(ctx, rt, data, metric)
		if err != nil {
			return nil, err
		}
		rates, _, err := runEngines(engines, tabs, queries, cands, cands, dur)
		for _, e := range engines {
			_ = e.close()
		}
		if err != nil {
			return nil, err
		}
		wl := fmt.Sprintf("scan %d-bit PQ, m=%d, n=%d, top-%d", bits, m, nt, cands)
		if bits == 4 {
			wl = fmt.Sprintf("fast-scan 4-bit PQ, m=%d, n=%d, top-%d", m, nt, cands)
		}
		for e, eng := range engines {
			rows = append(rows, wasmBenchRow{Workload: wl, Engine: eng.name, PerSecond: rates[e] * float64(nt) / 1e6,
				Unit: "M codes/s", USPerQuery: 1e6 / rates[e], Vs: rates[e] / rates[0]})
		}
	}
	// The full search: 4-bit fast-scan candidates re-ranked with int8 codes, on the real
	// 10k vectors, scored against the exact ground truth.
	packed, err := pq.PackFastScan4(codes4, n, m4)
	if err != nil {
		return nil, err
	}
	data := &wasmscan.Data{N: n, M: m4, Bits: 4, Codes: packed, SQ: sqq, SQCodes: sqCodes}
	tabs := make([]*scanbench.Tables, nq)
	for i := range tabs {
		tabs[i] = scanbench.Prepare(pq4, sqq, metric, queries[i])
	}
	engines, err := scanEngines(ctx, rt, data, metric)
	if err != nil {
		return nil, err
	}
	rates, results, err := runEngines(engines, tabs, queries, k, cands, dur)
	for _, e := range engines {
		_ = e.close()
	}
	if err != nil {
		return nil, err
	}
	hits := 0
	for qi, res := range results[0] {
		for _, r := range res {
			if slices.Contains(gt[qi][:min(k, len(gt[qi]))], int32(r.ID)) {
				hits++
			}
		}
	}
	recall := float64(hits) / float64(k*nq)
	wl := fmt.Sprintf("search: fast-scan m=%d top-%d + int8 re-rank, n=%d, k=%d", m4, cands, n, k)
	for e, eng := range engines {
		rows = append(rows, wasmBenchRow{Workload: wl, Engine: eng.name, PerSecond: rates[e], Unit: "queries/s",
			USPerQuery: 1e6 / rates[e], RecallAt10: recall, Vs: rates[e] / rates[0]})
	}
	return rows, nil
}
