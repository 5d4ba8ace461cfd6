package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/edge"
	"github.com/podsearch/podsearch/gpu-encoder/pool"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/modules"
	wasmscan "github.com/podsearch/podsearch/wasm/scan"
	wasmtok "github.com/podsearch/podsearch/wasm/tokenize"
)

// The tokenizers a node can run (Options.Tokenizer).
const (
	// TokenizerWasm runs the tokenizer in a pool of sandboxed wasm guests (serve-edge's
	// default).
	TokenizerWasm = "wasm"
	// TokenizerNative runs core/tokenizer in the process.
	TokenizerNative = "native"
)

// The scan backends ScanBackend knows.
const (
	// ScanWasm scans the shards in the C-SIMD wasm scan guest, one guest memory per
	// segment (serve-edge's default).
	ScanWasm = "wasm"
	// ScanNative scans them in Go.
	ScanNative = "native"
)

// ErrUnknownScan is returned by ScanBackend for a name other than ScanWasm or ScanNative.
var ErrUnknownScan = errors.New("node: the scan backend must be wasm or native")

// Options configures a node. Index.Dir is required; without Encoders the node is
// keyword-only.
type Options struct {
	// Index says which shards the node serves and how it searches them (Dir, Shards,
	// NProbe, RerankFactor, Fusion, DenseWeight, Backend, Descriptions). New sets its
	// Fingerprint to the embedder's.
	Index edge.IndexOptions
	// Edge holds the node's HTTP settings: peers and their token, admin token, rate
	// limits, deadlines, k and mode defaults, Logger (default slog.Default()) and Registry
	// (default: a new one with the Go and process collectors). New sets Open, Tokenizer or
	// OpenTokenizer, and Embedder.
	Edge edge.Config

	// Encoders are the encoder endpoints (host:port, or a DNS name resolving to many);
	// empty makes the node keyword-only.
	Encoders []string
	// EncoderToken is the bearer token the encoders require.
	EncoderToken string
	// EncoderFloat16 asks the encoders for float16 vectors (half the bytes).
	EncoderFloat16 bool
	// EncoderHealthInterval is how often the pool checks every encoder (pool default when 0).
	EncoderHealthInterval time.Duration

	// NoCache embeds every query through the encoder pool, without the query cache (the
	// end-to-end benchmark's baseline).
	NoCache bool
	// CacheBytes is the size of the in-process cache tier (cache default when 0).
	CacheBytes uint64
	// CacheSecret, when not empty, authenticates the Redis tier's values with HMAC-SHA256
	// (the same on every edge and the warm-up job).
	CacheSecret []byte
	// CacheBreakerCooldown is how long the Redis tier is bypassed after it failed (cache
	// default when 0).
	CacheBreakerCooldown time.Duration
	// RedisURL is the shared cache tier (redis://, rediss://, redis+cluster://,
	// redis+sentinel://); empty runs the in-process tier only.
	RedisURL string

	// Tokenizer is TokenizerWasm or TokenizerNative (default native).
	Tokenizer string
	// TokenizerInstances is the number of warm wasm tokenizer instances (default 4).
	TokenizerInstances int
	// TokenizerModule is a wasm tokenizer module file; empty uses the one built into the
	// binary. It is reread with the vocabulary on every reload (a new module is hot-swapped).
	TokenizerModule string
	// VocabPath is the tokenizer vocabulary (default: the one `podsearch setup` fetched).
	VocabPath string
	// StaticTokenizer loads the tokenizer once, in New, instead of again with the shards on
	// every reload.
	StaticTokenizer bool
}

// Node is a wired edge node: the edge Server (Serve, ListenAndServe, Reload, Watch) and
// what it runs on. Stop it with Shutdown.
type Node struct {
	*edge.Server
	// Registry is what the node's /metrics serves.
	Registry *prometheus.Registry

	log     *slog.Logger
	release []func(ctx context.Context) // run last first by Shutdown
}

// New wires the node described by opts and loads its shards (edge.New). ctx bounds the
// start (connecting to the encoders, loading a static tokenizer). On error, what was
// started is released.
func New(ctx context.Context, opts Options) (n *Node, err error) {
	cfg := opts.Edge
	if opts.Index.Dir == "" {
		return nil, errors.New("node: Options.Index.Dir is required")
	}
	if opts.Tokenizer == "" {
		opts.Tokenizer = TokenizerNative
	}
	if opts.Tokenizer != TokenizerWasm && opts.Tokenizer != TokenizerNative {
		return nil, fmt.Errorf("node: Options.Tokenizer must be wasm or native, not %q", opts.Tokenizer)
	}
	if opts.TokenizerInstances <= 0 {
		opts.TokenizerInstances = 4
	}
	if opts.VocabPath == "" {
		opts.VocabPath = assets.VocabPath()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n = &Node{Registry: cfg.Registry, log: cfg.Logger}
	defer func() {
		if err != nil {
			n.releaseAll(context.Background())
			n = nil
		}
	}()
	// The wasm guests' metrics (tokenizer and scan pools) on the edge's /metrics.
	if err := wasmhost.RegisterMetrics(cfg.Registry); err != nil {
		return n, err
	}
	iopts := opts.Index
	if len(opts.Encoders) > 0 {
		emb, err := n.embedder(ctx, opts, cfg.Registry)
		if err != nil {
			return n, err
		}
		cfg.Embedder = emb
		iopts.Fingerprint = emb.Fingerprint
		open := func(ctx context.Context) (edge.Tokenizer, error) { return loadTokenizer(ctx, opts) }
		if opts.StaticTokenizer {
			tok, err := open(ctx)
			if err != nil {
				return n, err
			}
			if c, ok := tok.(interface{ Close(context.Context) error }); ok {
				n.onShutdown(func(ctx context.Context) { _ = c.Close(ctx) })
			}
			cfg.Tokenizer = tok
		} else {
			// The tokenizer is (re)loaded with the shards: start and every reload.
			cfg.OpenTokenizer = open
		}
	}
	cfg.Open = edge.IndexOpener(iopts)
	if n.Server, err = edge.New(cfg); err != nil {
		return n, err
	}
	return n, nil
}

// embedder connects the encoder pool and puts the query cache tiers in front of it.
func (n *Node) embedder(ctx context.Context, opts Options, reg *prometheus.Registry) (encoder.Embedder, error) {
	fp, err := edge.IndexFingerprint(opts.Index.Dir)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, err := pool.New(pctx, pool.Config{Endpoints: opts.Encoders, Token: opts.EncoderToken, Fingerprint: fp,
		Float16: opts.EncoderFloat16, HealthInterval: opts.EncoderHealthInterval, Logger: n.log})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("encoder pool: %w", err)
	}
	n.onShutdown(func(context.Context) { p.Close() })
	if opts.NoCache {
		return p, nil
	}
	ccfg := cache.Config{MemoryBytes: opts.CacheBytes, BreakerCooldown: opts.CacheBreakerCooldown, Registerer: reg, Logger: n.log}
	if len(opts.CacheSecret) > 0 {
		ccfg.Secret = opts.CacheSecret
	}
	if opts.RedisURL != "" {
		rc, err := cache.OpenRedis(opts.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		n.onShutdown(func(context.Context) { _ = rc.Close() })
		ccfg.Redis = rc
		n.log.Info("query cache: in-process + Redis", "redis", cache.RedactURL(opts.RedisURL), "authenticated", len(opts.CacheSecret) > 0)
	} else {
		n.log.Info("query cache: in-process only (no Redis)")
	}
	c, err := cache.New(p, ccfg)
	if err != nil {
		return nil, err
	}
	n.onShutdown(func(context.Context) { _ = c.Close() })
	return c, nil
}

// loadTokenizer reads the vocabulary (and the wasm module) and starts the tokenizer.
func loadTokenizer(ctx context.Context, opts Options) (edge.Tokenizer, error) {
	uni, err := tokenizer.LoadFile(opts.VocabPath)
	if err != nil {
		return nil, err
	}
	if opts.Tokenizer == TokenizerNative {
		return edge.NativeTokenizer(uni), nil
	}
	rt, err := wasmhost.Shared()
	if err != nil {
		return nil, fmt.Errorf("wasm runtime: %w", err)
	}
	bin := modules.Tokenizer
	if opts.TokenizerModule != "" {
		if bin, err = os.ReadFile(opts.TokenizerModule); err != nil {
			return nil, err
		}
	}
	wt, err := wasmtok.NewFromModule(ctx, rt, bin, uni, opts.TokenizerInstances)
	if err != nil {
		return nil, fmt.Errorf("wasm tokenizer: %w", err)
	}
	return wt, nil
}

// ScanBackend returns the index scan backend name names: nil for ScanNative, the wasm
// scan guest with instances instances per segment for ScanWasm, and
// ErrUnknownScan otherwise.
func ScanBackend(name string, instances int) (index.Backend, error) {
	switch name {
	case ScanNative:
		return nil, nil
	case ScanWasm:
		rt, err := wasmhost.Shared()
		if err != nil {
			return nil, fmt.Errorf("wasm runtime: %w", err)
		}
		return wasmscan.NewBackend(rt, instances), nil
	}
	return nil, fmt.Errorf("%w, not %q", ErrUnknownScan, name)
}

// Descriptions maps episode ids to their descriptions (cut to 2,000 bytes, valid UTF-8),
// for result snippets (Options.Index.Descriptions).
func Descriptions(eps []ingest.Episode) map[string]string {
	m := make(map[string]string, len(eps))
	for _, e := range eps {
		d := e.Description
		if len(d) > 2000 {
			d = d[:2000]
		}
		m[e.ID] = strings.ToValidUTF8(d, "")
	}
	return m
}

// Shutdown stops the edge server (edge.Server.Shutdown: drain, then close), then releases
// the tokenizer, the cache tiers and the encoder pool.
func (n *Node) Shutdown(ctx context.Context) error {
	err := n.Server.Shutdown(ctx)
	n.releaseAll(ctx)
	return err
}

func (n *Node) onShutdown(f func(context.Context)) { n.release = append(n.release, f) }

func (n *Node) releaseAll(ctx context.Context) {
	for i := len(n.release) - 1; i >= 0; i-- {
		n.release[i](ctx)
	}
	n.release = nil
}
