package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
)

// Config configures an edge node. Zero values take the defaults documented per field.
type Config struct {
	// Open loads the node's shards at start and on every POST /admin/reload. Required.
	Open Opener
	// Tokenizer turns queries into token ids; nil makes the node keyword-only.
	Tokenizer Tokenizer
	// OpenTokenizer, when set, replaces Tokenizer: it loads the tokenizer (a wasm module and
	// its vocabulary) at start and again on every reload, so a new module is hot-swapped with
	// the shards. A returned tokenizer with a Close(context.Context) error method is closed
	// when the last request using it ends.
	OpenTokenizer func(ctx context.Context) (Tokenizer, error)
	// Embedder embeds token ids (normally the query cache in front of the encoder pool
	// client); nil makes the node keyword-only.
	Embedder encoder.Embedder

	// Peers are the base URLs (http://host:port) of edges that own the other shards. Each
	// query fans out to all of them and the results are merged.
	Peers []string
	// PeerTimeout bounds each fan-out call (default 300ms; never past the request deadline).
	PeerTimeout time.Duration
	// PeerToken, when set, is sent to peers and required on the /v1/shard-search endpoint.
	// Without it the endpoint is closed (403) unless PeerOpen is set.
	PeerToken string
	// PeerOpen opens /v1/shard-search without a token: for single-machine demos and tests
	// only, since anyone who reaches the port can then search the shards with any vector.
	// A node with Peers needs PeerToken or PeerOpen.
	PeerOpen bool
	// Fusion ("zscore", "convex" or "rrf") and DenseWeight fuse the dense and keyword rankings
	// of a hybrid query gathered from this node and its peers (with peers only; alone, the
	// node's Searcher fuses). Zero values take the fusion the local index records (its
	// calibrated one, else index.DefaultFusion at index.DefaultDenseWeight), and naming that
	// fusion keeps its recorded weight; another fusion takes its own default weight (0.3 for
	// convex).
	Fusion      string
	DenseWeight float64

	// HealInterval is how soon the node first tries to reload shards it found unreadable
	// (ErrShardsUnreadable); the wait doubles after each failure, up to 15 s (default 1 s).
	HealInterval time.Duration

	// AdminToken authenticates POST /admin/reload (bearer token); empty disables the endpoint.
	AdminToken string

	// RateLimit is the sustained requests per second allowed per client (0 = unlimited);
	// RateBurst the bucket size (default 2 x RateLimit, at least 1).
	RateLimit float64
	RateBurst int
	// MaxClients bounds the rate limiter's table of clients (default 100,000).
	MaxClients int
	// TrustForwardedFor takes the client address from X-Forwarded-For (behind a proxy or
	// load balancer that sets it); otherwise the TCP peer address is the client.
	TrustForwardedFor bool

	// RequestTimeout bounds the work of one search request (default 2s).
	RequestTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout are the connection timeouts (defaults 10s,
	// 10s, 60s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// DrainDelay is how long Shutdown keeps serving with /readyz failing before it stops
	// accepting, so load balancers notice (default 0; a few seconds under Kubernetes).
	DrainDelay time.Duration

	// DefaultK is the number of results when k is absent (default 10); MaxK the largest k
	// accepted (default 100).
	DefaultK, MaxK int
	// DefaultMode is the mode when none is asked for (default hybrid, or keyword when the
	// node has no encoder).
	DefaultMode Mode
	// MaxQueryBytes bounds one query's text (default 1,024 bytes); MaxQueries the queries
	// of one POST (default 32); MaxBodyBytes a POST body (default 64 KiB).
	MaxQueryBytes, MaxQueries, MaxBodyBytes int
	// SnippetChars is the length of a result snippet in characters (default 200).
	SnippetChars int

	// Registry receives the node's metrics and is what /metrics serves. Nil makes a new one
	// with the Go and process collectors; pass one to serve other components' metrics (the
	// query cache, the encoder pool) on the same endpoint.
	Registry *prometheus.Registry

	// Logger receives the access log and events (default slog.Default()).
	Logger *slog.Logger
}

// hybrid is the fusion of hybrid rankings gathered from peers: the configured one, or,
// where the configuration leaves it zero, the one local's index records (fusionRecorder).
func (c *Config) hybrid(local Searcher) index.HybridOptions {
	o := index.HybridOptions{Fusion: index.Fusion(c.Fusion), DenseWeight: c.DenseWeight}
	if r, ok := local.(fusionRecorder); ok {
		return r.Fusion().Apply(o)
	}
	return o
}

// fusionRecorder is a Searcher over an index that records its hybrid fusion
// (index.Searcher.Fusion).
type fusionRecorder interface {
	Fusion() index.FusionSetting
}

func (c *Config) setDefaults() error {
	if c.Open == nil {
		return errors.New("edge: Config.Open is required")
	}
	if c.Tokenizer != nil && c.OpenTokenizer != nil {
		return errors.New("edge: set Config.Tokenizer or Config.OpenTokenizer, not both")
	}
	if (c.Tokenizer == nil && c.OpenTokenizer == nil) != (c.Embedder == nil) {
		return errors.New("edge: a tokenizer and Config.Embedder go together (both or neither)")
	}
	if len(c.Peers) > 0 && c.PeerToken == "" && !c.PeerOpen {
		return errors.New("edge: Config.Peers needs Config.PeerToken (the peers' /v1/shard-search is closed without one) or Config.PeerOpen")
	}
	if c.RateLimit < 0 {
		return errors.New("edge: Config.RateLimit must not be negative")
	}
	if _, err := index.Fuse[string](nil, nil, 1, c.hybrid(nil)); err != nil {
		return fmt.Errorf("edge: Config.Fusion/DenseWeight: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PeerTimeout, 300*time.Millisecond)
	def(&c.HealInterval, defaultHealInterval)
	def(&c.RequestTimeout, 2*time.Second)
	def(&c.ReadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	defInt(&c.DefaultK, 10)
	defInt(&c.MaxK, 100)
	defInt(&c.MaxQueryBytes, 1024)
	defInt(&c.MaxQueries, 32)
	defInt(&c.MaxBodyBytes, 64<<10)
	defInt(&c.SnippetChars, 200)
	defInt(&c.MaxClients, 100_000)
	if c.RateBurst <= 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	if c.DefaultK > c.MaxK {
		return errors.New("edge: Config.DefaultK is larger than Config.MaxK")
	}
	if c.DefaultMode == "" {
		c.DefaultMode = ModeHybrid
		if c.Embedder == nil {
			c.DefaultMode = ModeKeyword
		}
	}
	if _, err := ParseMode(string(c.DefaultMode), ModeHybrid); err != nil {
		return errors.New("edge: Config.DefaultMode: " + err.Error())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
