package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/edge/e2e"
)

func init() {
	registerBench("e2e", "the whole system on loopback (Redis, 2 encoders, 2 edges): cache hit/miss latency, the ratio to no cache, --faults", benchE2E)
}

func benchE2E(args []string) error {
	fs := newFlagSet("bench e2e", "[--index DIR | --episodes N] [flags]",
		"Starts the whole system on 127.0.0.1: redis-server (when installed; else each edge has its\n"+
			"in-process cache only, and says so), 2 encoder services with the real model and 2 edges that\n"+
			"each own one shard of the index and fan out to the other. Then a vegeta load at a fixed\n"+
			"--rate for --duration sends a mix of new queries and repeats of earlier ones (--repeat) and\n"+
			"prints throughput and p50/p99 for cache hits and misses. A second run over a fresh system\n"+
			"without the query cache (every query encoded) gives the baseline and the ratio. With\n"+
			"--faults, the cached run kills an encoder, kills and restarts Redis, deletes 3 episodes\n"+
			"from the index (only one it built itself) and reloads every edge's shards while it runs,\n"+
			"then sends malformed requests; every request is counted.\n"+
			"--rate 0 sends as fast as --workers allow (a throughput comparison).")
	indexDir := fs.String("index", "", "index folder with at least 2 shards (podsearch index --shards 2); empty: build one from --episodes")
	corpus := fs.String("corpus", "", "corpus JSONL (podsearch ingest) for snippets with --index, or to index the first --episodes of (default: the bundled demo corpus)")
	episodes := fs.Int("episodes", 1000, "without --index: index the first N episodes of --corpus or the demo corpus (0: all)")
	queries := fs.String("queries", "testdata/handwritten_queries.jsonl,../shared/data/queries/trec_podcasts_topics.jsonl", "comma-separated query JSONL files (fields query and description)")
	rate := fs.Int("rate", 20, "requests per second (0: as fast as --workers allow)")
	workers := fs.Int("workers", 16, "concurrent requests with --rate 0 (at most, otherwise)")
	duration := fs.Duration("duration", 10*time.Second, "length of each run")
	repeat := fs.Float64("repeat", 0.5, "fraction of requests that repeat an earlier query (cache hits)")
	k := fs.Int("k", 10, "results per query")
	seed := fs.Uint64("seed", 1, "query sequence seed")
	encoders := fs.Int("encoders", 2, "encoder services")
	warmup := fs.Int("warmup", 20, "unmeasured requests (queries outside the load's) before each run")
	faults := fs.Bool("faults", false, "inject faults during the cached run and send malformed requests")
	noRedis := fs.Bool("no-redis", false, "do not start redis-server (in-process cache only)")
	baseline := fs.Bool("baseline", true, "also run without the query cache and print the ratio")
	tok := fs.String("tokenizer", "wasm", "edge tokenizer: wasm (as serve-edge) or native")
	scan := fs.String("scan", "wasm", "edges' dense scan kernel: wasm or native")
	verbose := fs.Bool("v", false, "show the components' info logs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate < 0 || *duration <= 0 || *repeat < 0 || *repeat >= 1 || *encoders < 2 && *faults {
		return fmt.Errorf("%w: --rate >= 0, --duration > 0, 0 <= --repeat < 1, and --faults needs --encoders >= 2", errUsage)
	}
	if *tok != "wasm" && *tok != "native" {
		return fmt.Errorf("%w: --tokenizer must be wasm or native", errUsage)
	}
	if *scan != "wasm" && *scan != "native" {
		return fmt.Errorf("%w: --scan must be wasm or native", errUsage)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	prev := slog.Default()
	slog.SetDefault(log) // the Redis client logs through the default logger
	defer slog.SetDefault(prev)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	texts, err := e2e.ReadQueries(splitList(*queries)...)
	if err != nil {
		return fmt.Errorf("--queries: %w", err)
	}
	tmp, err := os.MkdirTemp("", "podsearch-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The index and the ids every answer must come from.
	var eps []ingest.Episode
	if *corpus != "" {
		if eps, err = ingest.ReadCorpus(*corpus); err != nil {
			return fmt.Errorf("--corpus: %w", err)
		}
	}
	dir := *indexDir
	if dir == "" {
		if eps == nil {
			fmt.Fprintln(os.Stderr, "reading the bundled demo corpus...")
			if eps, err = ingest.DemoCorpus(); err != nil {
				return err
			}
		}
		if *episodes > 0 && *episodes < len(eps) {
			eps = eps[:*episodes]
		}
		if err := buildE2EIndex(ctx, filepath.Join(tmp, "index"), eps); err != nil {
			return err
		}
		dir = filepath.Join(tmp, "index")
	}
	var valid map[string]bool
	var desc map[string]string
	if eps != nil {
		valid = make(map[string]bool, len(eps))
		for _, e := range eps {
			valid[e.ID] = true
		}
		desc = e2e.Descriptions(eps)
	}

	var redis *e2e.Redis
	if !*noRedis {
		redis, err = e2e.StartRedis(filepath.Join(tmp))
		if errors.Is(err, e2e.ErrNoRedis) {
			fmt.Printf("NOTE: %v: the edges run with their in-process cache only (no shared tier, no Redis faults)\n", err)
		} else if err != nil {
			return err
		} else {
			defer redis.Kill()
		}
	}
	cacheDesc := "in-process cache only"
	if redis != nil {
		cacheDesc = "in-process + Redis " + redis.URL()
	}
	load := e2e.LoadOptions{Queries: texts, Rate: *rate, Workers: *workers, Duration: *duration, Repeat: *repeat,
		K: *k, Seed: *seed, ValidIDs: valid, Warmup: *warmup}
	opts := e2e.Options{IndexDir: dir, Descriptions: desc, Encoders: *encoders, WasmTokenizer: *tok == "wasm",
		WasmScan: *scan == "wasm", Logger: log}
	rateDesc := fmt.Sprintf("%d/s", *rate)
	if *rate == 0 {
		rateDesc = fmt.Sprintf("max, %d workers", *workers)
	}
	fmt.Printf("system: %d encoders (real model, 1 thread each), 2 edges (1 shard each, %s tokenizer, %s scan), %s\n", *encoders, *tok, *scan, cacheDesc)
	fmt.Printf("load: %s for %s, %.0f%% repeats, %d query texts, k=%d\n\n", rateDesc, *duration, 100**repeat, len(texts), *k)

	// The cached run (with the faults when asked).
	copts := opts
	cload := load
	if redis != nil {
		copts.RedisURL = redis.URL()
	}
	if *faults {
		cload.Faults = &e2e.Faults{Encoder: 1, Redis: redis}
		if *indexDir == "" {
			cload.Faults.Delete = 3 // the index is this run's own copy
		} else {
			fmt.Println("NOTE: --index is yours: the fault run reloads it without deleting episodes from it")
		}
		// Deadlines for a machine also running the load generator; failures are the point.
		copts.PeerTimeout, copts.RequestTimeout, cload.Timeout = time.Second, 4*time.Second, 10*time.Second
	}
	cached, bad, err := e2eRun(ctx, copts, cload, redis != nil, *faults)
	if err != nil {
		return err
	}
	fmt.Printf("with the query cache (%s)%s:\n%s\n", cacheDesc, map[bool]string{true: ", faults injected", false: ""}[*faults], cached)
	if *faults {
		fmt.Println("malformed requests (edge 0):")
		for _, b := range bad {
			fmt.Printf("  %-20s %d  %s\n", b.Name, b.Status, truncateLine(b.Answer, 90))
		}
		fmt.Println()
	}
	if !*baseline {
		return e2eVerdict(cached, bad)
	}
	bopts := opts
	bopts.NoCache = true
	base, _, err := e2eRun(ctx, bopts, load, false, false)
	if err != nil {
		return err
	}
	fmt.Printf("without the cache (every query encoded):\n%s\n", base)
	ratio := func(a, b time.Duration) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	fmt.Printf("ratio no-cache / cache: p50 all %.2fx, p99 all %.2fx; no-cache p50 / cache-hit p50 %.2fx; throughput cache / no-cache %.2fx\n",
		ratio(base.All.P50, cached.All.P50), ratio(base.All.P99, cached.All.P99), ratio(base.All.P50, cached.Hit.P50),
		cached.Throughput/max(base.Throughput, 1e-9))
	if err := e2eVerdict(cached, bad); err != nil {
		return err
	}
	return e2eVerdict(base, nil)
}

// e2eRun starts a fresh system, runs the load (and with bad, the malformed requests) and
// stops it.
func e2eRun(ctx context.Context, opts e2e.Options, load e2e.LoadOptions, shared, bad bool) (*e2e.Report, []e2e.BadInput, error) {
	c, err := e2e.Start(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	r, err := e2e.Run(ctx, c, shared, load)
	if err != nil {
		return nil, nil, err
	}
	var answers []e2e.BadInput
	if bad {
		answers = e2e.SendBadInputs(ctx, c.Edges[0])
	}
	return r, answers, nil
}

// e2eVerdict turns failed requests and malformed requests not answered 4xx into an error
// (the exit status), after the report has been printed.
func e2eVerdict(r *e2e.Report, bad []e2e.BadInput) error {
	n := 0
	for _, b := range bad {
		if b.Status < 400 || b.Status > 499 {
			n++
		}
	}
	if r.Failed() > 0 || n > 0 {
		return fmt.Errorf("%d of %d requests failed; %d malformed requests not answered with a 4xx", r.Failed(), r.Requests, n)
	}
	return nil
}

// buildE2EIndex embeds eps with the real model and writes a 2-shard index into dir.
func buildE2EIndex(ctx context.Context, dir string, eps []ingest.Episode) error {
	uni, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return fmt.Errorf("%w: %v", encoder.ErrNotSetUp, err)
	}
	sess, err := encoder.Open(encoder.Options{})
	if err != nil {
		return err
	}
	defer sess.Close()
	start := time.Now()
	fmt.Fprintf(os.Stderr, "indexing %d episodes (2 shards)...\n", len(eps))
	if _, err := e2e.BuildIndex(ctx, dir, eps, 2, uni, sess, os.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "index built in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func truncateLine(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
