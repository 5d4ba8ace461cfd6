package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/ingest/demo"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/edge/e2e"
	"github.com/podsearch/podsearch/internal/loadgen"
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
			"--faults, the cached run kills an encoder, kills and restarts Redis, truncates a segment\n"+
			"file of edge 0 in place and writes it back, deletes 3 episodes from the index and reloads\n"+
			"every edge's shards while it runs (the file and index faults only on an index it built\n"+
			"itself), then copies one query's Redis value over another's key (the edge must refuse it\n"+
			"and re-encode) and sends malformed and unauthorised requests to the edges and to the\n"+
			"encoders left alive (4xx that leak nothing; a lowercase \"bearer\" is accepted);\n"+
			"every request is counted and both edges must stay alive. --json prints one JSON object\n"+
			"(failed: the failed requests, among its fields) instead of the text report.\n"+
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
	asJSON := fs.Bool("json", false, "print one JSON object (requests, failed, status codes, faults, bad inputs, ...) instead of the text report")
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
			if eps, err = demo.Corpus(); err != nil {
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
	out := os.Stdout
	if *asJSON {
		out = os.Stderr // the JSON object alone on stdout
	}
	fmt.Fprintf(out, "system: %d encoders (real model, 1 thread each), 2 edges (1 shard each, %s tokenizer, %s scan), %s\n", *encoders, *tok, *scan, cacheDesc)
	fmt.Fprintf(out, "load: %s for %s, %.0f%% repeats, %d query texts, k=%d\n\n", rateDesc, *duration, 100**repeat, len(texts), *k)

	// The cached run (with the faults when asked).
	copts := opts
	cload := load
	if redis != nil {
		copts.RedisURL = redis.URL()
	}
	if *faults {
		cload.Faults = &e2e.Faults{Encoder: 1, Redis: redis}
		if *indexDir == "" {
			// The index is this run's own copy.
			cload.Faults.Delete, cload.Faults.Truncate = 3, true
		} else {
			fmt.Fprintln(out, "NOTE: --index is yours: the fault run reloads it without deleting episodes from it or truncating its files")
		}
		// Deadlines for a machine also running the load generator; failures are the point.
		copts.PeerTimeout, copts.RequestTimeout, cload.Timeout = time.Second, 4*time.Second, 10*time.Second
	}
	redisURL := ""
	if redis != nil {
		redisURL = redis.URL()
	}
	cres, err := e2eRun(ctx, copts, cload, redisURL, *faults)
	if err != nil {
		return err
	}
	cached := cres.report
	fmt.Fprintf(out, "with the query cache (%s)%s:\n%s\n", cacheDesc, map[bool]string{true: ", faults injected", false: ""}[*faults], cached)
	if *faults {
		fmt.Fprintln(out, cres.faultSummary())
	}
	var base *e2e.Report
	if *baseline {
		bopts := opts
		bopts.NoCache = true
		bres, err := e2eRun(ctx, bopts, load, "", false)
		if err != nil {
			return err
		}
		base = bres.report
		fmt.Fprintf(out, "without the cache (every query encoded):\n%s\n", base)
	}
	if *asJSON {
		if err := printE2EJSON(cres, base); err != nil {
			return err
		}
	}
	if !*baseline {
		return cres.verdict()
	}
	ratio := func(a, b time.Duration) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	fmt.Fprintf(out, "ratio no-cache / cache: p50 all %.2fx, p99 all %.2fx; no-cache p50 / cache-hit p50 %.2fx; throughput cache / no-cache %.2fx\n",
		ratio(base.All.P50, cached.All.P50), ratio(base.All.P99, cached.All.P99), ratio(base.All.P50, cached.Hit.P50),
		cached.Throughput/max(base.Throughput, 1e-9))
	if err := cres.verdict(); err != nil {
		return err
	}
	return (&e2eResult{report: base}).verdict()
}

// e2eResult is one run of the system: the load's report and, with faults, what the
// checks after it found.
type e2eResult struct {
	report *e2e.Report
	faults bool
	// alive is empty when both edges answered /healthz after the load and after the bad
	// inputs, else what failed.
	alive  string
	poison *e2e.Poison
	bad    []e2e.BadInput
	// encBad: the encoders' bad inputs, to the encoders still alive.
	encBad []e2e.BadInput
}

// e2eRun starts a fresh system, runs the load (and with faults, the cache-poisoning
// attempt when redisURL is set, the malformed requests to both edges and the encoders' to
// the encoders still alive) and stops it.
func e2eRun(ctx context.Context, opts e2e.Options, load e2e.LoadOptions, redisURL string, faults bool) (*e2eResult, error) {
	c, err := e2e.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := e2e.Run(ctx, c, redisURL != "", load)
	if err != nil {
		return nil, err
	}
	res := &e2eResult{report: r, faults: faults}
	if !faults {
		return res, nil
	}
	if err := c.Alive(ctx); err != nil {
		res.alive = "after the load: " + err.Error()
	}
	if redisURL != "" {
		if res.poison, err = c.PoisonCache(ctx, redisURL, "medieval beekeeping monks", "nba playoffs trade rumours"); err != nil {
			res.poison = &e2e.Poison{Detail: err.Error()}
		}
	}
	for i := range c.Edges {
		res.bad = append(res.bad, c.SendBadInputs(ctx, i)...)
	}
	for i := range c.Encoders {
		res.encBad = append(res.encBad, c.SendEncoderBadInputs(ctx, i)...)
	}
	if err := c.Alive(ctx); err != nil && res.alive == "" {
		res.alive = "after the bad inputs: " + err.Error()
	}
	return res, nil
}

// badNotOK counts the bad inputs (to the edges and the encoders) not answered as they must.
func (r *e2eResult) badNotOK() int {
	n := 0
	for _, b := range append(r.bad[:len(r.bad):len(r.bad)], r.encBad...) {
		if !b.OK() {
			n++
		}
	}
	return n
}

// faultSummary is the text report of the checks after a fault run.
func (r *e2eResult) faultSummary() string {
	var b strings.Builder
	alive := "yes"
	if r.alive != "" {
		alive = "NO: " + r.alive
	}
	fmt.Fprintf(&b, "both edges alive throughout: %s\n", alive)
	if p := r.poison; p != nil {
		fmt.Fprintf(&b, "cache poisoning (COPY of one query's Redis value over another's key): refused %v, re-encoded %v %s\n", p.Refused, p.Reencoded, p.Detail)
	} else {
		b.WriteString("cache poisoning: not tried (no Redis)\n")
	}
	fmt.Fprintf(&b, "malformed and unauthorised requests (%d, to both edges; %d not refused cleanly):\n", len(r.bad), r.badNotOK())
	for i, x := range r.bad {
		if i >= len(r.bad)/2 && x.OK() {
			continue // edge 1's answers only when they are wrong
		}
		fmt.Fprintf(&b, "  %-30s %d  %s%s\n", x.Name, x.Status, truncateLine(x.Answer, 80), map[bool]string{true: "", false: "  <-- " + x.Leak}[x.OK()])
	}
	fmt.Fprintf(&b, "the encoders' bad inputs (%d, to the encoders left alive; the lowercase bearer one is valid):\n", len(r.encBad))
	for _, x := range r.encBad {
		fmt.Fprintf(&b, "  %-45s %d  %s%s\n", x.Name, x.Status, truncateLine(x.Answer, 70), map[bool]string{true: "", false: "  <-- not as it must " + x.Leak}[x.OK()])
	}
	return b.String()
}

// verdict turns failed requests, a dead edge, a poisoned answer and bad inputs not refused
// cleanly into an error (the exit status), after the report has been printed.
func (r *e2eResult) verdict() error {
	var probs []string
	if f := r.report.Failed(); f > 0 {
		probs = append(probs, fmt.Sprintf("%d of %d requests failed", f, r.report.Requests))
	}
	if r.alive != "" {
		probs = append(probs, "an edge died ("+r.alive+")")
	}
	if p := r.poison; p != nil && (!p.Refused || !p.Reencoded) {
		probs = append(probs, "the poisoned cache value was not refused and re-encoded: "+p.Detail)
	}
	if n := r.badNotOK(); n > 0 {
		probs = append(probs, fmt.Sprintf("%d malformed requests not refused with a clean 4xx (or the status they must get)", n))
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

// printE2EJSON prints the runs as one JSON object on stdout.
func printE2EJSON(c *e2eResult, base *e2e.Report) error {
	type run struct {
		Requests   int            `json:"requests"`
		Sent       int            `json:"sent"`
		Failed     int            `json:"failed"`
		Codes      map[string]int `json:"codes"`
		Partial    int            `json:"partial"`
		Degraded   int            `json:"degraded"`
		BadAnswers int            `json:"bad_answers"`
		Throughput float64        `json:"throughput_per_s"`
		P50HitMS   float64        `json:"p50_hit_ms"`
		P50MissMS  float64        `json:"p50_miss_ms"`
		P50MS      float64        `json:"p50_ms"`
		P99MS      float64        `json:"p99_ms"`
		Events     []e2e.Event    `json:"faults,omitempty"`
	}
	conv := func(r *e2e.Report) *run {
		if r == nil {
			return nil
		}
		codes := map[string]int{}
		for c, n := range r.Codes {
			codes[strconv.Itoa(c)] = n
		}
		msf := loadgen.Millis
		return &run{Requests: r.Requests, Sent: r.Sent, Failed: r.Failed(), Codes: codes, Partial: r.Partial,
			Degraded: r.Degraded, BadAnswers: r.BadAnswers, Throughput: r.Throughput, P50HitMS: msf(r.Hit.P50),
			P50MissMS: msf(r.Miss.P50), P50MS: msf(r.All.P50), P99MS: msf(r.All.P99), Events: r.Events}
	}
	out := struct {
		*run
		EdgesAlive    bool           `json:"edges_alive"`
		Poison        *e2e.Poison    `json:"cache_poisoning,omitempty"`
		BadInputs     []e2e.BadInput `json:"bad_inputs,omitempty"`
		EncBadInputs  []e2e.BadInput `json:"encoder_bad_inputs,omitempty"`
		BadNotRefused int            `json:"bad_inputs_not_refused"`
		Baseline      *run           `json:"baseline,omitempty"`
		Error         string         `json:"error,omitempty"`
	}{run: conv(c.report), EdgesAlive: c.alive == "", Poison: c.poison, BadInputs: c.bad, EncBadInputs: c.encBad, BadNotRefused: c.badNotOK(), Baseline: conv(base)}
	if err := c.verdict(); err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
