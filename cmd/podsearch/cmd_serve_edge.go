package main

import (
	"context"
	"errors"
	"flag"
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
	c := addEdgeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveEdge(ctx, c)
}

// edgeConfig is the settings of an edge node as serve-edge's flags give them (see
// addEdgeFlags); nodeOptions turns them into node.Options.
type edgeConfig struct {
	addr               string
	index              string
	shards             string
	corpus             string
	peers              string
	encoders           string
	encoderToken       string
	encoderFloat16     bool
	redisURL           string
	cacheMB            int
	cacheSecret        string
	adminToken         string
	peerToken          string
	peerOpen           bool
	rateLimit          float64
	rateBurst          int
	trustForwardedFor  bool
	requestTimeout     time.Duration
	peerTimeout        time.Duration
	drainDelay         time.Duration
	shutdownTimeout    time.Duration
	watch              time.Duration
	tokenizer          string
	tokenizerInstances int
	tokenizerModule    string
	vocab              string
	scan               string
	scanInstances      int
	nprobe             int
	rerank             int
	fusion             string
	denseWeight        float64
	mode               string
	maxK               int
}

// addEdgeFlags defines serve-edge's flags on fs.
func addEdgeFlags(fs *flag.FlagSet) *edgeConfig {
	c := &edgeConfig{}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.index, "index", "", "index folder (podsearch index -o DIR); required")
	fs.StringVar(&c.shards, "shards", "", "comma-separated shard numbers this node serves (default: all)")
	fs.StringVar(&c.corpus, "corpus", "", "corpus JSONL (podsearch ingest output) to cut result snippets from (optional)")
	fs.StringVar(&c.peers, "peers", "", "comma-separated base URLs (http://host:port) of edges serving the other shards")
	fs.StringVar(&c.encoders, "encoder", "", "comma-separated encoder endpoints (host:port or a DNS name resolving to many); empty: keyword-only")
	fs.StringVar(&c.encoderToken, "encoder-token", "", "bearer token for the encoders (env PODSEARCH_ENCODER_TOKEN)")
	fs.BoolVar(&c.encoderFloat16, "encoder-float16", false, "ask the encoders for float16 vectors (half the bytes)")
	fs.StringVar(&c.redisURL, "redis", "", "Redis URL for the shared cache tier (redis://, rediss://, redis+cluster://, redis+sentinel://; env REDIS_URL); empty: in-process cache only")
	fs.IntVar(&c.cacheMB, "cache-mb", 64, "in-process cache size in MiB")
	fs.StringVar(&c.cacheSecret, "cache-secret", "", "secret (at least 16 random bytes) that authenticates Redis cache values with HMAC-SHA256, the same on every edge and the warm-up job (env PODSEARCH_CACHE_SECRET); empty: values are checksummed and key-bound only")
	fs.StringVar(&c.adminToken, "admin-token", "", "bearer token for POST /admin/reload (env PODSEARCH_ADMIN_TOKEN); empty disables it")
	fs.StringVar(&c.peerToken, "peer-token", "", "bearer token between edges (env PODSEARCH_PEER_TOKEN); without it /v1/shard-search is closed")
	fs.BoolVar(&c.peerOpen, "peer-open", false, "open /v1/shard-search without a peer token (single-machine demos only: anyone reaching the port can search the shards)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 20, "search requests per second per client, sustained (0: unlimited); over it a client gets 429 with Retry-After")
	fs.IntVar(&c.rateBurst, "rate-burst", 0, "token bucket size per client: requests a client may send at once (default 2 x rate-limit)")
	fs.BoolVar(&c.trustForwardedFor, "trust-forwarded-for", false, "take the client address from X-Forwarded-For (behind a load balancer)")
	fs.DurationVar(&c.requestTimeout, "request-timeout", 2*time.Second, "deadline of one search request")
	fs.DurationVar(&c.peerTimeout, "peer-timeout", 300*time.Millisecond, "deadline of one fan-out call to a peer")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "on SIGTERM, fail /readyz for this long before closing the listener (5s under Kubernetes)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish at shutdown")
	fs.DurationVar(&c.watch, "watch", 0, "poll the index manifest this often and reload when it changes (0: off)")
	fs.StringVar(&c.tokenizer, "tokenizer", "wasm", "tokenizer: wasm (sandboxed guest pool) or native")
	fs.IntVar(&c.tokenizerInstances, "tokenizer-instances", 4, "warm wasm tokenizer instances")
	fs.StringVar(&c.tokenizerModule, "tokenizer-module", "", "wasm tokenizer module file (default: the one built into the binary); reread with the vocabulary on every reload, so a new module is hot-swapped")
	fs.StringVar(&c.vocab, "vocab", "", "tokenizer vocabulary (default: the one `podsearch setup` fetched); reread on every reload")
	fs.StringVar(&c.scan, "scan", "wasm", "dense scan kernel: wasm (the C-SIMD scan guest, one guest memory per segment) or native (Go); same results")
	fs.IntVar(&c.scanInstances, "scan-instances", runtime.GOMAXPROCS(0), "wasm scan instances per segment: how many queries scan a segment at once")
	fs.IntVar(&c.nprobe, "nprobe", 0, "inverted lists scanned per dense query (0: index default)")
	fs.IntVar(&c.rerank, "rerank", 0, "re-rank factor for PQ candidates (0: index default)")
	fs.StringVar(&c.fusion, "fusion", "", "hybrid fusion: zscore, convex or rrf (default: the one the index records, else zscore)")
	fs.Float64Var(&c.denseWeight, "dense-weight", 0, fmt.Sprintf("dense weight of hybrid fusion (0: the one the index records, chosen by podsearch index --calibrate; else %g for zscore, 0.5 for rrf, 0.3 for convex)", index.DefaultDenseWeight))
	fs.StringVar(&c.mode, "mode", "", "default mode: dense, keyword or hybrid (default hybrid, keyword without -encoder)")
	fs.IntVar(&c.maxK, "max-k", 100, "largest k accepted")
	return c
}

// defaultEdgeConfig returns the defaults of serve-edge (what the demo's edge runs with).
func defaultEdgeConfig() *edgeConfig {
	return addEdgeFlags(flag.NewFlagSet("serve-edge", flag.ContinueOnError))
}

// nodeOptions turns c into the options of node.New: secrets not given come from the
// environment (PODSEARCH_ENCODER_TOKEN, REDIS_URL, PODSEARCH_ADMIN_TOKEN,
// PODSEARCH_PEER_TOKEN, PODSEARCH_CACHE_SECRET), the corpus, when given, supplies the
// result snippets, and log is the node's logger.
func (c *edgeConfig) nodeOptions(log *slog.Logger) (node.Options, error) {
	// Secrets come from the environment when not given as flags (never shown by -h).
	encoderToken, redisURL, adminToken, peerToken, cacheSecret := c.encoderToken, c.redisURL, c.adminToken, c.peerToken, c.cacheSecret
	for _, e := range []struct {
		v   *string
		env string
	}{{&encoderToken, "PODSEARCH_ENCODER_TOKEN"}, {&redisURL, "REDIS_URL"}, {&adminToken, "PODSEARCH_ADMIN_TOKEN"}, {&peerToken, "PODSEARCH_PEER_TOKEN"}, {&cacheSecret, "PODSEARCH_CACHE_SECRET"}} {
		if *e.v == "" {
			*e.v = os.Getenv(e.env)
		}
	}
	if c.index == "" {
		return node.Options{}, fmt.Errorf("%w: -index is required", errUsage)
	}
	if c.tokenizer != "wasm" && c.tokenizer != "native" {
		return node.Options{}, fmt.Errorf("%w: -tokenizer must be wasm or native", errUsage)
	}
	backend, err := scanBackend(c.scan, c.scanInstances)
	if err != nil {
		return node.Options{}, err
	}
	var shards []int
	for _, s := range splitList(c.shards) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return node.Options{}, fmt.Errorf("%w: -shards: %q is not a shard number", errUsage, s)
		}
		shards = append(shards, n)
	}
	opts := node.Options{
		Index: edge.IndexOptions{Dir: c.index, Shards: shards, NProbe: c.nprobe, RerankFactor: c.rerank,
			Fusion: c.fusion, DenseWeight: c.denseWeight, Backend: backend},
		Edge: edge.Config{
			Peers:             splitList(c.peers),
			PeerToken:         peerToken,
			PeerOpen:          c.peerOpen,
			PeerTimeout:       c.peerTimeout,
			AdminToken:        adminToken,
			RateLimit:         c.rateLimit,
			RateBurst:         c.rateBurst,
			TrustForwardedFor: c.trustForwardedFor,
			RequestTimeout:    c.requestTimeout,
			DrainDelay:        c.drainDelay,
			MaxK:              c.maxK,
			Fusion:            c.fusion,
			DenseWeight:       c.denseWeight,
			DefaultK:          min(10, c.maxK),
			DefaultMode:       edge.Mode(c.mode),
			Logger:            log,
		},
		Encoders:           splitList(c.encoders),
		EncoderToken:       encoderToken,
		EncoderFloat16:     c.encoderFloat16,
		CacheBytes:         uint64(c.cacheMB) << 20,
		CacheSecret:        []byte(cacheSecret),
		RedisURL:           redisURL,
		Tokenizer:          c.tokenizer,
		TokenizerInstances: c.tokenizerInstances,
		TokenizerModule:    c.tokenizerModule,
		VocabPath:          c.vocab,
	}
	if len(opts.Encoders) == 0 {
		log.Warn("no -encoder: this node answers keyword queries only")
	}
	if c.corpus != "" {
		eps, err := ingest.ReadCorpus(c.corpus)
		if err != nil {
			return node.Options{}, fmt.Errorf("-corpus: %w", err)
		}
		opts.Index.Descriptions = node.Descriptions(eps)
	}
	return opts, nil
}

// serveEdge builds the edge node c describes (node.New) and serves it on c.addr until ctx
// ends (SIGHUP reloads the shards, and with c.watch a changed manifest does), then drains
// it: /readyz fails for c.drainDelay, and in-flight requests get c.shutdownTimeout to finish.
func serveEdge(ctx context.Context, c *edgeConfig) error {
	log := slog.Default()
	opts, err := c.nodeOptions(log)
	if err != nil {
		return err
	}
	srv, err := node.New(ctx, opts)
	if err != nil {
		if errors.Is(err, index.ErrWrongModel) {
			return fmt.Errorf("%w (the index and the encoder pool must serve the same model)", err)
		}
		return err
	}
	if c.watch > 0 {
		srv.Watch(ctx, filepath.Join(c.index, index.ManifestName), c.watch)
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
	go func() { served <- srv.ListenAndServe(c.addr) }()
	log.Info("edge listening", "url", "http://"+c.addr+"/", "example", "curl 'http://"+c.addr+"/v1/search?q=eat+better+during+xmas+holidays'")
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining", "drain_delay", c.drainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), c.drainDelay+c.shutdownTimeout)
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
