package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/edge"
	"github.com/podsearch/podsearch/edge/node"
)

func init() {
	register(&command{
		name:    "serve-edge",
		summary: "serve the search API and page (edge node) over an index, the encoder pool and the cache",
		run:     runServeEdge,
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runServeEdge(args []string) error {
	fs := newFlagSet("serve-edge", "-index DIR [flags]",
		"Serves GET/POST /v1/search, the search page at /, /healthz, /readyz, /metrics and\n"+
			"POST /admin/reload. Queries are tokenized locally, embedded through the query cache\n"+
			"(in-process, plus Redis with -redis) in front of the encoder pool, searched in the\n"+
			"local shards and fanned out to -peers. Without -encoder the node is keyword-only.\n"+
			"Tokens are best given by environment (PODSEARCH_ADMIN_TOKEN, PODSEARCH_PEER_TOKEN,\n"+
			"PODSEARCH_ENCODER_TOKEN) so they do not show in the process list. SIGTERM drains and\n"+
			"stops; SIGHUP reloads the shards.")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	indexDir := fs.String("index", "", "index folder (podsearch index -o DIR); required")
	shardList := fs.String("shards", "", "comma-separated shard numbers this node serves (default: all)")
	corpus := fs.String("corpus", "", "corpus JSONL (podsearch ingest output) to cut result snippets from (optional)")
	peers := fs.String("peers", "", "comma-separated base URLs (http://host:port) of edges serving the other shards")
	encoders := fs.String("encoder", "", "comma-separated encoder endpoints (host:port or a DNS name resolving to many); empty: keyword-only")
	encoderToken := fs.String("encoder-token", "", "bearer token for the encoders (env PODSEARCH_ENCODER_TOKEN)")
	float16 := fs.Bool("encoder-float16", false, "ask the encoders for float16 vectors (half the bytes)")
	redisURL := fs.String("redis", "", "Redis URL for the shared cache tier (redis://, rediss://, redis+cluster://, redis+sentinel://; env REDIS_URL); empty: in-process cache only")
	cacheMB := fs.Int("cache-mb", 64, "in-process cache size in MiB")
	cacheSecret := fs.String("cache-secret", "", "secret (at least 16 random bytes) that authenticates Redis cache values with HMAC-SHA256, the same on every edge and the warm-up job (env PODSEARCH_CACHE_SECRET); empty: values are checksummed and key-bound only")
	adminToken := fs.String("admin-token", "", "bearer token for POST /admin/reload (env PODSEARCH_ADMIN_TOKEN); empty disables it")
	peerToken := fs.String("peer-token", "", "bearer token between edges (env PODSEARCH_PEER_TOKEN); without it /v1/shard-search is closed")
	peerOpen := fs.Bool("peer-open", false, "open /v1/shard-search without a peer token (single-machine demos only: anyone reaching the port can search the shards)")
	rateLimit := fs.Float64("rate-limit", 20, "search requests per second per client, sustained (0: unlimited); over it a client gets 429 with Retry-After")
	rateBurst := fs.Int("rate-burst", 0, "token bucket size per client: requests a client may send at once (default 2 x rate-limit)")
	trustXFF := fs.Bool("trust-forwarded-for", false, "take the client address from X-Forwarded-For (behind a load balancer)")
	reqTimeout := fs.Duration("request-timeout", 2*time.Second, "deadline of one search request")
	peerTimeout := fs.Duration("peer-timeout", 300*time.Millisecond, "deadline of one fan-out call to a peer")
	drainDelay := fs.Duration("drain-delay", 0, "on SIGTERM, fail /readyz for this long before closing the listener (5s under Kubernetes)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish at shutdown")
	watch := fs.Duration("watch", 0, "poll the index manifest this often and reload when it changes (0: off)")
	tok := fs.String("tokenizer", "wasm", "tokenizer: wasm (sandboxed guest pool) or native")
	tokInstances := fs.Int("tokenizer-instances", 4, "warm wasm tokenizer instances")
	tokModule := fs.String("tokenizer-module", "", "wasm tokenizer module file (default: the one built into the binary); reread with the vocabulary on every reload, so a new module is hot-swapped")
	vocab := fs.String("vocab", "", "tokenizer vocabulary (default: the one `podsearch setup` fetched); reread on every reload")
	scan := fs.String("scan", "wasm", "dense scan kernel: wasm (the C-SIMD scan guest, one guest memory per segment) or native (Go); same results")
	scanInstances := fs.Int("scan-instances", runtime.GOMAXPROCS(0), "wasm scan instances per segment: how many queries scan a segment at once")
	nprobe := fs.Int("nprobe", 0, "inverted lists scanned per dense query (0: index default)")
	rerank := fs.Int("rerank", 0, "re-rank factor for PQ candidates (0: index default)")
	fusion := fs.String("fusion", "", "hybrid fusion: zscore, convex or rrf (default zscore)")
	denseWeight := fs.Float64("dense-weight", 0, "dense weight of hybrid fusion (0: the default, 0.5 for zscore and rrf, 0.3 for convex)")
	defaultMode := fs.String("mode", "", "default mode: dense, keyword or hybrid (default hybrid, keyword without -encoder)")
	maxK := fs.Int("max-k", 100, "largest k accepted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Secrets come from the environment when not given as flags (never shown by -h).
	for _, e := range []struct {
		v   *string
		env string
	}{{encoderToken, "PODSEARCH_ENCODER_TOKEN"}, {redisURL, "REDIS_URL"}, {adminToken, "PODSEARCH_ADMIN_TOKEN"}, {peerToken, "PODSEARCH_PEER_TOKEN"}, {cacheSecret, "PODSEARCH_CACHE_SECRET"}} {
		if *e.v == "" {
			*e.v = os.Getenv(e.env)
		}
	}
	if *indexDir == "" {
		return fmt.Errorf("%w: -index is required", errUsage)
	}
	if *tok != "wasm" && *tok != "native" {
		return fmt.Errorf("%w: -tokenizer must be wasm or native", errUsage)
	}
	backend, err := scanBackend(*scan, *scanInstances)
	if err != nil {
		return err
	}
	var shards []int
	for _, s := range splitList(*shardList) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: -shards: %q is not a shard number", errUsage, s)
		}
		shards = append(shards, n)
	}
	log := slog.Default()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := node.Options{
		Index: edge.IndexOptions{Dir: *indexDir, Shards: shards, NProbe: *nprobe, RerankFactor: *rerank,
			Fusion: *fusion, DenseWeight: *denseWeight, Backend: backend},
		Edge: edge.Config{
			Peers:             splitList(*peers),
			PeerToken:         *peerToken,
			PeerOpen:          *peerOpen,
			PeerTimeout:       *peerTimeout,
			AdminToken:        *adminToken,
			RateLimit:         *rateLimit,
			RateBurst:         *rateBurst,
			TrustForwardedFor: *trustXFF,
			RequestTimeout:    *reqTimeout,
			DrainDelay:        *drainDelay,
			MaxK:              *maxK,
			Fusion:            *fusion,
			DenseWeight:       *denseWeight,
			DefaultK:          min(10, *maxK),
			DefaultMode:       edge.Mode(*defaultMode),
			Logger:            log,
		},
		Encoders:           splitList(*encoders),
		EncoderToken:       *encoderToken,
		EncoderFloat16:     *float16,
		CacheBytes:         uint64(*cacheMB) << 20,
		CacheSecret:        []byte(*cacheSecret),
		RedisURL:           *redisURL,
		Tokenizer:          *tok,
		TokenizerInstances: *tokInstances,
		TokenizerModule:    *tokModule,
		VocabPath:          *vocab,
	}
	if len(opts.Encoders) == 0 {
		log.Warn("no -encoder: this node answers keyword queries only")
	}
	if *corpus != "" {
		eps, err := ingest.ReadCorpus(*corpus)
		if err != nil {
			return fmt.Errorf("-corpus: %w", err)
		}
		opts.Index.Descriptions = node.Descriptions(eps)
	}
	srv, err := node.New(ctx, opts)
	if err != nil {
		if errors.Is(err, index.ErrWrongModel) {
			return fmt.Errorf("%w (the index and the encoder pool must serve the same model)", err)
		}
		return err
	}
	if *watch > 0 {
		srv.Watch(ctx, filepath.Join(*indexDir, index.ManifestName), *watch)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
				_, _, _ = srv.Reload(rctx)
				cancel()
			}
		}
	}()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe(*addr) }()
	log.Info("edge listening", "url", "http://"+*addr+"/", "example", "curl 'http://"+*addr+"/v1/search?q=eat+better+during+xmas+holidays'")
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining", "drain_delay", *drainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), *drainDelay+*shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return <-served
}

// scanBackend returns the index scan Backend a -scan flag names: nil for native, the wasm
// scan guest with instances instances per segment for wasm.
func scanBackend(name string, instances int) (index.Backend, error) {
	b, err := node.ScanBackend(name, instances)
	if errors.Is(err, node.ErrUnknownScan) {
		return nil, fmt.Errorf("%w: -scan must be wasm or native, not %q", errUsage, name)
	}
	return b, err
}
