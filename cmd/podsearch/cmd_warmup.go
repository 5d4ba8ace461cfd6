package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/cache/querylog"
	"github.com/podsearch/podsearch/cache/warmup"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/gpu-encoder/pool"
)

func init() {
	register(&command{
		name:    "warmup",
		summary: "pre-fill the query-embedding cache (Redis) from a query log through the encoder pool",
		run:     runWarmup,
	})
}

func runWarmup(args []string) error {
	fs := newFlagSet("warmup", "--queries FILE --encoder URL[,URL...] [--redis URL] [flags]",
		"Reads a query log (plain lines, TSV query<TAB>count, or JSONL with a \"query\", \"q\" or\n"+
			"\"text\" field and an optional \"count\"), normalises and deduplicates the queries, asks\n"+
			"the cache which are there already, encodes the rest through the encoder pool in batches\n"+
			"under a rate limit and writes them to Redis with pipelining. Run it again after an\n"+
			"interruption: it finds what was stored and encodes only the rest. Prints a report\n"+
			"(queries, already_cached, encoded, seconds, hit ratios before/after); --json prints it\n"+
			"as one JSON object. Redis URL syntax: docs/cache.md.")
	queries := fs.String("queries", "", "query log file; required")
	format := fs.String("format", "auto", "query log format: auto, lines, tsv or jsonl")
	encoders := fs.String("encoder", "", "comma-separated encoder service endpoints (host:port or http://host:port); required")
	encoderToken := fs.String("encoder-token", "", "bearer token for the encoders (env PODSEARCH_ENCODER_TOKEN)")
	redisURL := fs.String("redis", "", "Redis URL of the shared cache tier (env REDIS_URL); empty warms nothing lasting (in-process only)")
	cacheSecret := fs.String("cache-secret", "", "the edges' cache secret, so that they accept the warmed values (env PODSEARCH_CACHE_SECRET)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	batch := fs.Int("batch", 64, "queries per encoder call")
	rateLimit := fs.Float64("rate", 0, "most queries per second sent to the encoders (0: no limit)")
	encoding := fs.String("encoding", "float16", "vector encoding in Redis: float16, int8 or float32")
	ttl := fs.Duration("ttl", 7*24*time.Hour, "lifetime of the cached vectors in Redis")
	jitter := fs.Float64("ttl-jitter", 0.1, "relative TTL spread, in [0, 1)")
	prefix := fs.String("prefix", cache.DefaultPrefix, "Redis key prefix (must match the edges')")
	vocab := fs.String("vocab", "", "tokenizer vocabulary (default: the one podsearch setup fetched)")
	progress := fs.Bool("progress", term.IsTerminal(int(os.Stderr.Fd())), "draw a progress bar on stderr")
	timeout := fs.Duration("encoder-timeout", 30*time.Second, "deadline of one encoder call")
	retries := fs.Int("retries", 4, "retries of a failed encoder call, after pauses doubling from 1s (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *encoderToken == "" {
		*encoderToken = os.Getenv("PODSEARCH_ENCODER_TOKEN")
	}
	if *redisURL == "" {
		*redisURL = os.Getenv("REDIS_URL")
	}
	if *cacheSecret == "" {
		*cacheSecret = os.Getenv("PODSEARCH_CACHE_SECRET")
	}
	eps := strings.FieldsFunc(*encoders, func(r rune) bool { return r == ',' || r == ' ' })
	switch {
	case *queries == "":
		return fmt.Errorf("%w: --queries is required", errUsage)
	case len(eps) == 0:
		return fmt.Errorf("%w: --encoder is required", errUsage)
	case *batch < 1:
		return fmt.Errorf("%w: --batch must be >= 1", errUsage)
	case *rateLimit < 0:
		return fmt.Errorf("%w: --rate must not be negative", errUsage)
	}
	enc, err := cache.ParseEncoding(*encoding)
	if err != nil {
		return fmt.Errorf("%w: --encoding: %v", errUsage, err)
	}
	if *vocab == "" {
		*vocab = assets.VocabPath()
	}
	qf, err := querylog.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("%w: --format: %v", errUsage, err)
	}
	entries, err := querylog.ReadFile(*queries, qf)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadFile(*vocab)
	if err != nil {
		return fmt.Errorf("tokenizer (run `podsearch setup`?): %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, err := pool.New(pctx, pool.Config{Endpoints: eps, Token: *encoderToken, DefaultTimeout: *timeout, AttemptTimeout: *timeout})
	cancel()
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Fingerprint() == "" {
		return fmt.Errorf("no encoder in %v answered its health check", eps)
	}
	cfg := cache.Config{Prefix: *prefix, Encoding: enc, TTL: *ttl, TTLJitter: *jitter}
	if *cacheSecret != "" {
		cfg.Secret = []byte(*cacheSecret)
	}
	if *redisURL != "" {
		rc, err := cache.OpenRedis(*redisURL)
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		defer rc.Close()
		cfg.Redis = rc
	} else {
		slog.Warn("warmup: no --redis: vectors go to this process's memory only and are lost when it ends")
	}
	c, err := cache.New(p, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	retryCount := *retries // Options.Retries: 0 means the default, negative means none
	if retryCount <= 0 {
		retryCount = -1
	}
	var bar io.Writer
	if *progress {
		bar = os.Stderr
	}
	rep, runErr := warmup.Run(ctx, entries, warmup.Options{
		Tokenizer: tok, Cache: c, Encoder: p, BatchSize: *batch, Rate: *rateLimit, Progress: bar,
		Retries: retryCount,
	})
	if *asJSON {
		if err := writeJSONLine(os.Stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Printf("queries %d (requests %d): already cached %d, encoded %d (%d encoder sequences), skipped %d\n"+
			"hit ratio %.3f -> %.3f (weighted by count %.3f -> %.3f); %.2f s (%.2f s encoding)\n",
			rep.Queries, rep.Requests, rep.AlreadyCached, rep.Encoded, rep.EncoderSequences, rep.Skipped,
			rep.HitRatioBefore, rep.HitRatioAfter, rep.WeightedHitRatioBefore, rep.WeightedHitRatioAfter,
			rep.Seconds, rep.EncodeSeconds)
	}
	if errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("interrupted after %d queries; run again to resume: %w", rep.Encoded, runErr)
	}
	return runErr
}
