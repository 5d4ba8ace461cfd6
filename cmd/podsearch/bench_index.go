package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/index/faissbench"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/vec"
)

func init() {
	registerBench("index", "IVF-PQ index vs exact search and FAISS: recall@1/10, us per query, bytes per vector", benchIndex)
}

// benchRow is one configuration's result, printed as one JSON object per line with --json.
type benchRow struct {
	Engine         string  `json:"engine"`
	Config         string  `json:"config"`
	Setting        string  `json:"setting"`
	RecallAt1      float64 `json:"recall@1"`
	RecallAt10     float64 `json:"recall@10"`
	USPerQuery     float64 `json:"us_per_query"`
	WallUSPerQuery float64 `json:"wall_us_per_query"`
	BytesPerVector float64 `json:"bytes_per_vector"`
	BuildS         float64 `json:"build_s"`
	// Queries names the query set: text query files encoded by the index's model, or
	// "holdout" (episode vectors held out of the base), or the --queries file.
	Queries string `json:"queries"`
	// Default is true on the row that equals what `podsearch index` builds and the edge
	// serves by default (its configuration at the operating point chosen at build time).
	Default bool `json:"default"`
	// PeakRSSMB is the peak resident memory of the process that built and searched the
	// configuration (--scale runs; 0 elsewhere).
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	N         int     `json:"n"`
	D         int     `json:"d"`
	NQ        int     `json:"nq"`
}

func benchIndex(args []string) error { return benchIndexTo(os.Stdout, args) }

// benchIndexTo runs `podsearch bench index` printing its rows to w.
func benchIndexTo(w io.Writer, args []string) error {
	fs := newFlagSet("bench index", "(--fvecs BASE --queries QUERY --gt GROUNDTRUTH | --index DIR --corpus FILE) [flags]",
		"Builds podsearch's index in several configurations over the same vectors, and FAISS beside it\n"+
			"(Debian's python3-faiss, skipped with a note when absent), then searches one query at a time\n"+
			"on one thread and reports recall@1, recall@10 against exact search, microseconds per query\n"+
			"(us_per_query: the best pass's thread CPU time, so a busy machine does not inflate it;\n"+
			"wall_us_per_query: the best pass's wall time), bytes per vector (codes only) and build time.\n\n"+
			"With --index DIR the queries are text queries encoded by the index's model (the TREC podcast topics\n"+
			"and testdata/handwritten_queries.jsonl unless --query-texts says otherwise), as listeners send them.\n"+
			"The default configuration (the row with \"default\": true) is what `podsearch index` builds: it needs\n"+
			"the query sample, --corpus FILE (its synthetic training queries) or --query-sample FILE.\n"+
			"--scale N,... measures the default build at other sizes (child processes, peak memory).")
	base := fs.String("fvecs", "", "base vectors (.fvecs, e.g. SIFT's *_base.fvecs)")
	queries := fs.String("queries", "", "query vectors (.fvecs)")
	queryTexts := fs.String("query-texts", "", "comma-separated text query files (JSON Lines with a query field, or one query per line), encoded with the index's model; with --index and no query flag: the TREC podcast topics (when ../shared is present) and testdata/handwritten_queries.jsonl")
	querySample := fs.String("query-sample", "", "text queries (e.g. a pairs train.jsonl) that guide spilling in spillN configurations")
	sampleCorpus := fs.String("corpus", "", "without --query-sample: the corpus (JSON Lines) whose own synthetic training queries are the sample, as `podsearch index` makes it")
	sampleLimit := fs.Int("sample-limit", 12000, "use at most this many --query-sample queries (an even sample)")
	adapterPath := fs.String("adapter", "", "query adapter FILE the text queries pass through (an index built for the tuned model)")
	gt := fs.String("gt", "", "ground-truth neighbour ids (.ivecs); computed exactly when absent")
	dir := fs.String("index", "", "index folder written by `podsearch index` (uses its vectors.fvecs)")
	limit := fs.Int("limit", 0, "use only the first N base vectors (ground truth is then computed exactly); 0 uses all")
	holdout := fs.Int("holdout", 0, "with --index: hold out this many index vectors as queries instead of text queries (episode vectors as queries overstate what text queries get)")
	metricName := fs.String("metric", "", "l2, ip or cosine (default l2 for --fvecs, cosine for --index)")
	k := fs.Int("k", 10, "neighbours per query")
	nlist := fs.Int("nlist", 0, "inverted lists (default 4*sqrt(n), at most n/39)")
	nprobes := fs.String("nprobe", "1,2,4,8,16,32", "nprobe settings to sweep")
	rerank := fs.Int("rerank", 4, "re-rank factor (k*factor PQ candidates) for ours and FAISS's k_factor")
	minSec := fs.Float64("min-seconds", 0.5, "repeat the query set until at least this long per setting")
	withFaiss := fs.Bool("faiss", true, "run FAISS beside ours")
	python := fs.String("python", "/usr/bin/python3", "Python with numpy and faiss")
	asJSON := fs.Bool("json", false, "print one JSON object per configuration and setting")
	seed := fs.Uint64("seed", 1, "training seed")
	scans := fs.String("scan", "native", "scan kernels to run our configurations with: native, wasm or native,wasm (the wasm rows are checked to return the native hits)")
	configNames := fs.String("configs", "default,pq4+sq8,pq4+tq256,pq4",
		"our configurations: default (what `podsearch index` builds, at the operating point it chooses on a held-out fifth of --query-sample; its row has default true), "+
			"a factory string as the rows name them and `podsearch index --config` takes (e.g. IVF,PQ128x4fs,TQ224: components IVF[n], PQ[m][x4fs|x8], SQ8|SQ4|TQ[bytes]|RFlat|none; an item starting with IVF starts the next configuration), "+
			"or pqB[xM][+sqR|+tqN|+flat][+spillN][+budgetX][+probeP][+soar], B = PQ bits (4 fast-scan, 8), M = sub-quantizers (default d/4 for 4-bit, d/8 for 8-bit), R = scalar re-rank bits, N = transform-quantized re-rank bytes, flat = exact float32 re-rank, spillN = query-guided spilling (needs --query-sample) to at most N lists per episode, budgetX = at most X spilled entries per episode, probeP = lists a sample query counts as probed, hardX = guide with the hardest X of the sample, soar = SOAR secondary lists (the +parts may follow a factory string too)")
	scale := fs.String("scale", "", "comma-separated sizes (e.g. 10000,100000,1000000): run the benchmark at each size, in a child process, over --index DIR's real vectors plus synthetic ones drawn from their distribution (--scale-model), searched with the text queries; rows gain peak_rss_mb")
	scaleSize := fs.Int("scale-size", 0, "one size of --scale (set by --scale for its child processes)")
	scaleModel := fs.String("scale-model", scaleMix, "how --scale draws synthetic vectors: mix (a point on the segment between a real vector and one of its 10 nearest real vectors) or iso (a real vector plus isotropic Gaussian noise sized to the real nearest-neighbour cosine)")
	scaleNoise := fs.Float64("scale-noise", defaultScaleNoise, "with --scale-model mix: add isotropic Gaussian noise of this many times the iso model's size to each mixture (the default reproduced the real corpus's recall best when grown from a tenth of it: docs/bench/index.md)")
	scaleSources := fs.Int("scale-sources", 0, "with --scale: draw from only this many real vectors (an even stride of them) instead of all, e.g. to check a scale model by growing a sample of the corpus back to the corpus's size; 0 uses all")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to FILE (read it with go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *scale != "" {
		sizes, err := parseInts(*scale)
		if err != nil || *dir == "" {
			return fmt.Errorf("%w: --scale needs sizes and --index DIR", errUsage)
		}
		return runScale(w, args, sizes, *asJSON)
	}
	if (*base == "") == (*dir == "") {
		return fmt.Errorf("%w: give --fvecs BASE --queries QUERY (--gt GROUNDTRUTH) or --index DIR", errUsage)
	}
	if *k <= 0 || *k > 100 {
		return fmt.Errorf("%w: --k %d outside 1..100", errUsage, *k)
	}
	probes, err := parseInts(*nprobes)
	if err != nil {
		return fmt.Errorf("%w: --nprobe: %v", errUsage, err)
	}
	var texts *queryTextSet
	textFiles := splitList(*queryTexts)
	if len(textFiles) == 0 && *dir != "" && *queries == "" && *holdout == 0 {
		textFiles = defaultQueryTextFiles()
	}
	ctx := context.Background()
	if len(textFiles) > 0 {
		fp := ""
		if *dir != "" {
			if fp, err = index.ManifestFingerprint(*dir); err != nil {
				return err
			}
		}
		if texts, err = encodeQueryTexts(ctx, textFiles, 0, *adapterPath, fp); err != nil {
			return err
		}
	}
	ds, err := loadBenchData(*base, *queries, *gt, *dir, *holdout, *limit, *metricName, *k, texts, scaling{*scaleSize, *scaleSources, *scaleModel, *scaleNoise}, *seed)
	if err != nil {
		return err
	}
	var sample []float32
	if *querySample != "" || *sampleCorpus != "" {
		var st *queryTextSet
		if *querySample != "" {
			st, err = encodeQueryTexts(ctx, splitList(*querySample), *sampleLimit, *adapterPath, "")
		} else {
			var texts []string
			if texts, _, err = indexbuild.QuerySampleTexts("", *sampleCorpus); err == nil {
				st, err = encodeQueries(ctx, indexbuild.EvenSample(texts, *sampleLimit), *adapterPath, "")
			}
		}
		if err != nil {
			return err
		}
		if st.d != ds.d {
			return fmt.Errorf("--query-sample vectors are %d-d, the base %d-d", st.d, ds.d)
		}
		sample = st.vectors
	}
	out := newRowPrinter(w, *asJSON)
	out.n, out.d, out.nq, out.queries = ds.n, ds.d, ds.nq, ds.label
	slog.Info("bench index", "n", ds.n, "d", ds.d, "queries", ds.nq, "metric", ds.metric)

	// Exact search in Go, for reference.
	t0 := time.Now()
	exact := timeQueries(ds, *minSec, func(q []float32) []int32 { return exactKNN(ds.base, ds.d, ds.metric, q, *k) })
	out.row(benchRow{Engine: "podsearch", Config: "Flat", Setting: "exact", RecallAt1: exact.r1, RecallAt10: exact.r10,
		USPerQuery: exact.us, WallUSPerQuery: exact.wallUS, BytesPerVector: float64(4 * ds.d), BuildS: time.Since(t0).Seconds() - exact.total})

	configs, err := parseConfigs(*configNames)
	if err != nil {
		return fmt.Errorf("%w: --configs: %v", errUsage, err)
	}
	scanNames := splitList(*scans)
	backends := make([]index.Backend, len(scanNames))
	for i, name := range scanNames {
		if backends[i], err = scanBackend(name, 1); err != nil {
			return err
		}
	}
	if len(backends) == 0 {
		return fmt.Errorf("%w: --scan names no kernel", errUsage)
	}
	usedNList := 0
	for _, cfg := range configs {
		if cfg.Metric != 0 && cfg.Metric != ds.metric {
			return fmt.Errorf("%w: --configs %s: metric %s, the benchmark's is %s (--metric)", errUsage, cfg.Config, cfg.Metric, ds.metric)
		}
		cfg.Metric, cfg.Seed = ds.metric, *seed
		if cfg.NList == 0 {
			cfg.NList = *nlist
		}
		start := time.Now()
		model, err := index.Train(ds.base, ds.d, cfg.Config)
		if err != nil {
			return err
		}
		docs := make([]index.Doc, ds.n)
		for i := range docs {
			docs[i].ID = strconv.Itoa(i)
		}
		var extra [][]int32
		var heldOut []float32
		if cfg.Spill.MaxLists > 1 {
			if cfg.Guided {
				if sample == nil {
					return fmt.Errorf("%w: spillN and default configurations need --query-sample or --corpus", errUsage)
				}
				cfg.Spill.Queries = sample
				if cfg.Default {
					cfg.Spill.Queries, heldOut = indexbuild.SplitSample(sample, ds.d)
				}
			}
			var st index.SpillStats
			if extra, st, err = model.Spill(ds.base, cfg.Spill); err != nil {
				return err
			}
			slog.Info("spilled", "config", model.String(), "lists_per_episode", st.ListsPerEpisode(), "guided", st.Guided, "soar", st.SOAR)
		}
		var seg *index.Segment
		var chosen index.OperatingPoint
		if cfg.Default {
			// As `podsearch index` builds: the cheapest operating point that reaches the
			// target on the held-out sample, with finer re-rank codes when none does.
			ids := make([]string, ds.n)
			for i := range ids {
				ids[i] = strconv.Itoa(i)
			}
			// The held-out queries' exact top 10, computed once for every model tried.
			truth, err := index.NewOperatingSample(model.Metric, ds.d, heldOut, ds.base, ids, indexbuild.DefaultHardest)
			if err != nil {
				return err
			}
			choose := func(m *index.Model) (index.OperatingPoint, error) {
				if seg, err = index.BuildSegmentSpill(m, docs, ds.base, extra); err != nil {
					return index.OperatingPoint{}, err
				}
				s, err := index.NewSearcher([]index.View{{Seg: seg}})
				if err != nil {
					return index.OperatingPoint{}, err
				}
				return truth.Choose(s, indexbuild.DefaultTargetRecall)
			}
			model, chosen, err = indexbuild.ReachTarget(model, ds.base, cfg.Seed, true, choose)
			if err != nil && !errors.Is(err, index.ErrBelowTarget) {
				return err
			}
			if err != nil {
				slog.Warn("default configuration below its target on held-out sample queries", "err", err)
			}
		} else if seg, err = index.BuildSegmentSpill(model, docs, ds.base, extra); err != nil {
			return err
		}
		build := time.Since(start).Seconds()
		name := model.String()
		type setting struct {
			nprobe, rerank int
			def            bool
		}
		var settings []setting
		for _, np := range probes {
			settings = append(settings, setting{np, *rerank, false})
		}
		if cfg.Default {
			// The chosen setting (the default row), then the --nprobe sweep at --rerank when
			// the flags ask for one.
			def := setting{chosen.NProbe, chosen.RerankFactor, true}
			sweep := settings
			settings = []setting{def}
			if flagSet(fs, "nprobe") || flagSet(fs, "rerank") {
				for _, st := range sweep {
					if st.nprobe != def.nprobe || st.rerank != def.rerank {
						settings = append(settings, st)
					}
				}
			}
			slog.Info("default operating point", "nprobe", chosen.NProbe, "rerank", chosen.RerankFactor, "held_out_recall", chosen.Recall)
		}
		if cfg.Spill.MaxLists > 1 {
			name += fmt.Sprintf(",spill%d", cfg.Spill.MaxLists)
			if cfg.Guided {
				name += "q"
			}
			if cfg.Spill.SOAR > 0 {
				name += "+soar"
			}
		}
		usedNList = model.NList
		var searchers []*index.Searcher
		for bi, backend := range backends {
			views := []index.View{{Seg: seg}}
			defer index.AttachKernels(views, backend)()
			s, err := index.NewSearcher(views)
			if err != nil {
				return err
			}
			searchers = append(searchers, s)
			for _, st := range settings {
				np := st.nprobe
				if np > model.NList {
					continue
				}
				opts := index.SearchOptions{K: *k, NProbe: np, RerankFactor: st.rerank}
				if bi > 0 {
					if err := sameHits(ds, searchers[0], s, opts); err != nil {
						return fmt.Errorf("%s: --scan %s differs from %s: %w", name, scanNames[bi], scanNames[0], err)
					}
				}
				var searchErr error
				res := timeQueries(ds, *minSec, func(q []float32) []int32 {
					hits, err := s.Search(context.Background(), q, opts)
					if err != nil {
						searchErr = err
					}
					ids := make([]int32, len(hits))
					for i, h := range hits {
						v, _ := strconv.Atoi(h.ID)
						ids[i] = int32(v)
					}
					return ids
				})
				if searchErr != nil {
					return searchErr
				}
				setting := fmt.Sprintf("nprobe=%d", np)
				if model.RerankBits() > 0 {
					setting += fmt.Sprintf(",rerank=%d", opts.RerankFactor)
				}
				if len(backends) > 1 || backend != nil {
					setting = "scan=" + scanNames[bi] + "," + setting
				}
				out.row(benchRow{Engine: "podsearch", Config: name, Setting: setting, RecallAt1: res.r1,
					RecallAt10: res.r10, USPerQuery: res.us, WallUSPerQuery: res.wallUS, BytesPerVector: seg.BytesPerVector(), BuildS: build,
					Default: st.def})
			}
		}
	}
	if !*withFaiss {
		return out.flush()
	}
	rows, err := runFaiss(ds, *python, *k, usedNList, probes, *rerank, *minSec)
	if errors.Is(err, faissbench.ErrUnavailable) {
		slog.Warn("FAISS skipped", "reason", err)
		fmt.Fprintf(os.Stderr, "note: FAISS skipped: %v\n", err)
		return out.flush()
	}
	if err != nil {
		return err
	}
	for _, r := range rows {
		out.faiss(r)
	}
	return out.flush()
}

type benchData struct {
	base, queries []float32
	gt            [][]int32
	d, n, nq      int
	metric        index.Metric
	files         struct{ base, queries, gt string }
	label         string // the query set, for benchRow.Queries
}

// scaling says how a --scale child grows the real vectors (size 0: it does not).
type scaling struct {
	size    int     // episodes after growing
	sources int     // real vectors drawn from (an even stride); 0 for all
	model   string  // scaleMix or scaleIsotropic
	noise   float64 // scaleMix: isotropic noise, in units of scaleIsotropic's
}

func loadBenchData(base, queries, gt, dir string, holdout, limit int, metricName string, k int, texts *queryTextSet, sc scaling, seed uint64) (*benchData, error) {
	ds := &benchData{}
	var err error
	if metricName == "" {
		metricName = "l2"
		if dir != "" {
			metricName = "cosine"
		}
	}
	if ds.metric, err = index.ParseMetric(metricName); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if dir != "" {
		base = filepath.Join(dir, index.VectorsFile)
	}
	if ds.base, ds.d, err = vec.ReadFvecs(base); err != nil {
		return nil, err
	}
	ds.files.base, ds.files.queries, ds.files.gt = base, queries, gt
	if limit < 0 {
		return nil, fmt.Errorf("%w: --limit %d", errUsage, limit)
	}
	if limit > 0 && limit < len(ds.base)/ds.d {
		ds.base = ds.base[:limit*ds.d]
		ds.files.base, gt = "", ""
	}
	ds.label = queries
	switch {
	case texts != nil:
		if texts.d != ds.d {
			return nil, fmt.Errorf("text queries are %d-d, base vectors %d-d", texts.d, ds.d)
		}
		ds.queries, ds.label = texts.vectors, texts.label
		ds.files.gt = ""
	case queries != "":
		var qd int
		if ds.queries, qd, err = vec.ReadFvecs(queries); err != nil {
			return nil, err
		}
		if qd != ds.d {
			return nil, fmt.Errorf("queries are %d-d, base vectors %d-d", qd, ds.d)
		}
	case dir != "":
		n := len(ds.base) / ds.d
		if holdout <= 0 || holdout >= n/2 {
			return nil, fmt.Errorf("%w: --holdout %d for %d vectors", errUsage, holdout, n)
		}
		ds.queries = ds.base[(n-holdout)*ds.d:]
		ds.base = ds.base[:(n-holdout)*ds.d]
		ds.files.base, ds.files.queries = "", ""
		ds.label = "holdout"
	default:
		return nil, fmt.Errorf("%w: --fvecs needs --queries or --query-texts", errUsage)
	}
	if ds.metric == index.Cosine { // compare by inner product of unit vectors everywhere
		ds.base = append([]float32(nil), ds.base...)
		ds.queries = append([]float32(nil), ds.queries...)
		for _, m := range [][]float32{ds.base, ds.queries} {
			for i := 0; i < len(m)/ds.d; i++ {
				vec.Normalize(vec.Row(m, ds.d, i))
			}
		}
		ds.files.base, ds.files.queries = "", ""
	}
	if sc.size > 0 {
		if ds.metric != index.Cosine {
			return nil, fmt.Errorf("%w: --scale-size needs the cosine metric", errUsage)
		}
		ds.base = strideRows(ds.base, ds.d, sc.sources)
		real := len(ds.base) / ds.d
		var c float64
		if ds.base, c, err = augmentVectors(ds.base, ds.d, sc.size, sc.model, sc.noise, seed); err != nil {
			return nil, err
		}
		slog.Info("scaled", "episodes", sc.size, "real", real, "model", sc.model, "noise", sc.noise, "median_nn_cosine", c)
		ds.files.base, ds.files.gt, gt = "", "", ""
	}
	ds.n, ds.nq = len(ds.base)/ds.d, len(ds.queries)/ds.d
	if gt != "" && ds.files.base != "" {
		if ds.gt, err = vec.ReadIvecs(gt); err != nil {
			return nil, err
		}
		if len(ds.gt) != ds.nq || len(ds.gt[0]) < k {
			return nil, fmt.Errorf("ground truth has %d rows of %d ids, want %d rows of at least %d", len(ds.gt), len(ds.gt[0]), ds.nq, k)
		}
	} else {
		ds.gt = make([][]int32, ds.nq)
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for qi := range next {
					ds.gt[qi] = exactKNN(ds.base, ds.d, ds.metric, vec.Row(ds.queries, ds.d, qi), max(k, 100))
				}
			}()
		}
		for qi := 0; qi < ds.nq; qi++ {
			next <- qi
		}
		close(next)
		wg.Wait()
		ds.files.gt = ""
	}
	return ds, nil
}

// exactKNN returns the ids of the k nearest base rows to q by brute force.
func exactKNN(base []float32, d int, metric index.Metric, q []float32, k int) []int32 {
	type cand struct {
		dist float32
		id   int32
	}
	n := len(base) / d
	best := make([]cand, 0, k+1)
	for i := 0; i < n; i++ {
		var dist float32
		if metric == index.L2 {
			dist = vec.L2Sq(q, vec.Row(base, d, i))
		} else {
			dist = -vec.Dot(q, vec.Row(base, d, i))
		}
		if len(best) == k && dist >= best[k-1].dist {
			continue
		}
		j := sort.Search(len(best), func(j int) bool { return best[j].dist > dist })
		best = append(best, cand{})
		copy(best[j+1:], best[j:])
		best[j] = cand{dist, int32(i)}
		if len(best) > k {
			best = best[:k]
		}
	}
	ids := make([]int32, len(best))
	for i, c := range best {
		ids[i] = c.id
	}
	return ids
}

type timing struct {
	r1, r10, us, wallUS, total float64
}

// timeQueries runs every query once to measure recall, then repeats the set (one query at a
// time, on this goroutine locked to its OS thread) for at least minSec and three passes. It
// reports the best pass's thread CPU time per query (the cost of a query, unaffected by
// waiting for a core on a busy machine; wall time where thread CPU time is unavailable) and
// the best pass's wall time.
func timeQueries(ds *benchData, minSec float64, search func(q []float32) []int32) timing {
	var t timing
	k := 10
	for qi := 0; qi < ds.nq; qi++ {
		ids := search(vec.Row(ds.queries, ds.d, qi))
		gt := ds.gt[qi]
		if len(ids) > 0 && ids[0] == gt[0] {
			t.r1++
		}
		want := map[int32]bool{}
		for _, g := range gt[:min(k, len(gt))] {
			want[g] = true
		}
		hit := 0
		for _, id := range ids[:min(k, len(ids))] {
			if want[id] {
				hit++
			}
		}
		t.r10 += float64(hit) / float64(k)
	}
	t.r1 /= float64(ds.nq)
	t.r10 /= float64(ds.nq)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	passes := 0
	start := time.Now()
	bestCPU, bestWall := math.Inf(1), math.Inf(1)
	for {
		c0, cpuOK := threadCPUTime()
		p0 := time.Now()
		for qi := 0; qi < ds.nq; qi++ {
			search(vec.Row(ds.queries, ds.d, qi))
		}
		wall := time.Since(p0).Seconds()
		c1, _ := threadCPUTime()
		bestWall = min(bestWall, wall)
		if cpuOK {
			bestCPU = min(bestCPU, (c1 - c0).Seconds())
		} else {
			bestCPU = bestWall
		}
		passes++
		if time.Since(start).Seconds() >= minSec && passes >= 3 {
			break
		}
	}
	t.total = time.Since(start).Seconds()
	t.us = bestCPU / float64(ds.nq) * 1e6
	t.wallUS = bestWall / float64(ds.nq) * 1e6
	return t
}

func runFaiss(ds *benchData, python string, k, nlist int, probes []int, rerank int, minSec float64) ([]faissbench.Row, error) {
	tmp, err := os.MkdirTemp("", "podsearch-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	write := func(name string, f func(io.Writer) error) (string, error) {
		p := filepath.Join(tmp, name)
		fh, err := os.Create(p)
		if err != nil {
			return "", err
		}
		if err := f(fh); err != nil {
			fh.Close()
			return "", err
		}
		return p, fh.Close()
	}
	files := ds.files
	if files.base == "" {
		if files.base, err = write("base.fvecs", func(w io.Writer) error { return vec.WriteFvecs(w, ds.base, ds.d) }); err != nil {
			return nil, err
		}
	}
	if files.queries == "" {
		if files.queries, err = write("queries.fvecs", func(w io.Writer) error { return vec.WriteFvecs(w, ds.queries, ds.d) }); err != nil {
			return nil, err
		}
	}
	if files.gt == "" {
		if files.gt, err = write("gt.ivecs", func(w io.Writer) error { return vec.WriteIvecs(w, ds.gt) }); err != nil {
			return nil, err
		}
	}
	metric := "l2"
	if ds.metric != index.L2 {
		metric = "ip"
	}
	m4 := ds.d / 4
	m8 := ds.d / 8
	return faissbench.Run(context.Background(), faissbench.Options{Python: python, Base: files.base, Queries: files.queries,
		Truth: files.gt, Metric: metric, K: k, NList: nlist, M: m8, M4: m4, NProbes: probes, Refine: rerank,
		HNSWEf: []int{16, 32, 64}, MinSeconds: minSec})
}

// benchConfig is one configuration of ours: the index model and its spilling.
type benchConfig struct {
	index.Config
	// Spill is the secondary-list assignment (MaxLists <= 1: none); Guided asks for
	// query-guided spilling with the benchmark's query sample.
	Spill  index.SpillOptions
	Guided bool
	// Default marks the configuration `podsearch index` builds by default: four fifths of
	// the query sample guide spilling, the rest chooses the operating point its row reports.
	Default bool
}

// parseConfigs reads --configs into configurations: comma-separated items, each
//
//   - "default": what `podsearch index` builds (indexbuild.DefaultConfig, spilling as it does);
//   - a factory string (index.ParseConfig), e.g. IVF270,PQ128x4fs,TQ224: its components are
//     consecutive items, and an item starting with IVF starts the next one;
//   - the short form pqB[xM][+sqR|+tqN|+flat] (B PQ bits, M sub-quantizers, then the re-rank:
//     R scalar bits, N transform-quantized bytes, flat exact float32; none without it),
//     which stands for the factory string PQ<M>x<B>,SQ<R>|TQ<N>|RFlat|noRerank;
//
// and any of them may end in benchmark-only parts: +spillN (query-guided spilling to at most
// N lists per episode), +budgetX (at most X spilled entries per episode on average), +probeP
// (lists a sample query counts as probed), +hardX (guide with the hardest X of the sample)
// and +soar (SOAR secondary lists, λ 1, to the same bound; 2 lists when spillN is absent).
func parseConfigs(s string) ([]benchConfig, error) {
	type group struct {
		factory, bench []string
		short          bool
	}
	var groups []*group
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		parts := strings.Split(item, "+")
		head := parts[0]
		short := head == "default" || strings.HasPrefix(head, "pq")
		if short || strings.HasPrefix(head, "IVF") || len(groups) == 0 || groups[len(groups)-1].short {
			groups = append(groups, &group{short: short})
		}
		g := groups[len(groups)-1]
		g.factory = append(g.factory, head)
		g.bench = append(g.bench, parts[1:]...)
	}
	out := make([]benchConfig, 0, len(groups))
	for _, g := range groups {
		name := strings.Join(g.factory, ",")
		var cfg benchConfig
		factory, bench := name, g.bench
		if g.short {
			var err error
			if factory, bench, err = shortConfig(name, g.bench); err != nil {
				return nil, err
			}
		}
		if name == "default" {
			cfg.Guided, cfg.Default = true, true
			cfg.Spill = index.SpillOptions{MaxLists: indexbuild.DefaultSpillLists, Budget: indexbuild.DefaultSpillBudget}
		}
		var err error
		if cfg.Config, err = index.ParseConfig(factory); err != nil {
			return nil, fmt.Errorf("%q: %v", name, err)
		}
		if err := cfg.benchParts(bench); err != nil {
			return nil, fmt.Errorf("%q: %v", name, err)
		}
		out = append(out, cfg)
	}
	return out, nil
}

// shortConfig turns the short form pqB[xM][+re-rank] (and "default") into its factory
// string, and returns the benchmark-only parts after the re-rank one.
func shortConfig(head string, rest []string) (string, []string, error) {
	if head == "default" {
		return indexbuild.DefaultConfig, rest, nil
	}
	bits, m, _ := strings.Cut(head[2:], "x")
	if _, err := strconv.Atoi(bits); err != nil {
		return "", nil, fmt.Errorf("%q: bad PQ bits", head)
	}
	factory := "PQ" + m + "x" + bits
	rerank := "noRerank"
	if len(rest) > 0 && !isBenchPart(rest[0]) {
		switch r := rest[0]; {
		case r == "flat":
			rerank = "RFlat"
		case strings.HasPrefix(r, "tq"), strings.HasPrefix(r, "sq"):
			rerank = strings.ToUpper(r[:2]) + r[2:]
		default:
			return "", nil, fmt.Errorf("%q: re-rank part must be sqR, tqN or flat", head+"+"+r)
		}
		rest = rest[1:]
	}
	return factory + "," + rerank, rest, nil
}

// benchParts are the names of the benchmark-only parts of a configuration.
var benchPartNames = []string{"soar", "probe", "hard", "budget", "spill"}

func isBenchPart(p string) bool {
	for _, b := range benchPartNames {
		if strings.HasPrefix(p, b) {
			return true
		}
	}
	return false
}

// benchParts applies the benchmark-only parts of a configuration (spilling).
func (cfg *benchConfig) benchParts(parts []string) error {
	var err error
	for _, part := range parts {
		switch {
		case part == "soar":
			cfg.Spill.SOAR = 1
			cfg.Spill.MaxLists = max(cfg.Spill.MaxLists, 2)
		case strings.HasPrefix(part, "probe"):
			if cfg.Spill.QueryProbe, err = strconv.Atoi(part[5:]); err != nil || cfg.Spill.QueryProbe <= 0 {
				return errors.New("probeP needs P >= 1 lists")
			}
		case strings.HasPrefix(part, "hard"):
			if cfg.Spill.Hardest, err = strconv.ParseFloat(part[4:], 64); err != nil || cfg.Spill.Hardest <= 0 || cfg.Spill.Hardest > 1 {
				return errors.New("hardX needs 0 < X <= 1")
			}
		case strings.HasPrefix(part, "budget"):
			if cfg.Spill.Budget, err = strconv.ParseFloat(part[6:], 64); err != nil || cfg.Spill.Budget <= 0 {
				return errors.New("budgetX needs X > 0 spilled entries per episode")
			}
		case strings.HasPrefix(part, "spill"):
			if cfg.Spill.MaxLists, err = strconv.Atoi(part[5:]); err != nil || cfg.Spill.MaxLists < 2 {
				return errors.New("spillN needs N >= 2 lists")
			}
			cfg.Guided = true
		default:
			return fmt.Errorf("%q: after the re-rank part only spillN, budgetX, probeP, hardX and soar", part)
		}
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad value %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// rowPrinter prints rows as JSON lines or as a table.
type rowPrinter struct {
	w        io.Writer
	json     bool
	err      error
	n, d, nq int
	queries  string
}

func newRowPrinter(w io.Writer, asJSON bool) *rowPrinter {
	p := &rowPrinter{w: w, json: asJSON}
	if !asJSON {
		fmt.Fprintf(w, "%-10s %-32s %-22s %8s %9s %12s %12s %9s %8s\n", "engine", "config", "setting", "R@1", "R@10", "cpu us/q", "wall us/q", "B/vector", "build s")
	}
	return p
}

func (p *rowPrinter) row(r benchRow) {
	if p.err != nil {
		return
	}
	if r.N == 0 {
		r.N, r.D, r.NQ = p.n, p.d, p.nq
	}
	if r.Queries == "" {
		r.Queries = p.queries
	}
	round := func(v float64, digits int) float64 { s := math.Pow(10, float64(digits)); return math.Round(v*s) / s }
	r.RecallAt1, r.RecallAt10 = round(r.RecallAt1, 4), round(r.RecallAt10, 4)
	r.WallUSPerQuery = round(r.WallUSPerQuery, 1)
	r.USPerQuery, r.BuildS, r.BytesPerVector = round(r.USPerQuery, 1), round(r.BuildS, 3), round(r.BytesPerVector, 1)
	if p.json {
		p.err = writeJSONLine(p.w, r)
		return
	}
	_, p.err = fmt.Fprintf(p.w, "%-10s %-32s %-22s %8.3f %9.3f %12.1f %12.1f %9.1f %8.2f\n", r.Engine, r.Config, r.Setting,
		r.RecallAt1, r.RecallAt10, r.USPerQuery, r.WallUSPerQuery, r.BytesPerVector, r.BuildS)
}

func (p *rowPrinter) faiss(r faissbench.Row) {
	num := func(key string) float64 { v, _ := r[key].(float64); return v }
	str := func(key string) string { v, _ := r[key].(string); return v }
	p.row(benchRow{Engine: "faiss", Config: str("config"), Setting: str("setting"), RecallAt1: num("recall@1"),
		RecallAt10: num("recall@10"), USPerQuery: num("us_per_query"), WallUSPerQuery: num("wall_us_per_query"), BytesPerVector: num("bytes_per_vector"),
		BuildS: num("build_s"), N: int(num("n")), D: int(num("d")), NQ: int(num("nq"))})
}

func (p *rowPrinter) flush() error { return p.err }

// sameHits checks that b returns a's hits (ids and scores) for every query.
func sameHits(ds *benchData, a, b *index.Searcher, opts index.SearchOptions) error {
	for i := 0; i < ds.nq; i++ {
		q := vec.Row(ds.queries, ds.d, i)
		ha, err := a.Search(context.Background(), q, opts)
		if err != nil {
			return err
		}
		hb, err := b.Search(context.Background(), q, opts)
		if err != nil {
			return err
		}
		if len(ha) != len(hb) {
			return fmt.Errorf("query %d: %d vs %d hits", i, len(ha), len(hb))
		}
		for j := range ha {
			if ha[j].ID != hb[j].ID || ha[j].Score != hb[j].Score {
				return fmt.Errorf("query %d, hit %d: %s %v vs %s %v", i, j, ha[j].ID, ha[j].Score, hb[j].ID, hb[j].Score)
			}
		}
	}
	return nil
}
