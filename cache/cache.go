package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/podsearch/podsearch/core/encoder"
)

// Config configures a Cache. The zero value (after defaults) is an in-process cache only.
type Config struct {
	// Redis is the shared tier; nil serves from the in-process tier alone. The caller owns
	// and closes the client (see OpenRedis).
	Redis redis.UniversalClient
	// Prefix starts every Redis key (default DefaultPrefix).
	Prefix string
	// Encoding of vectors in Redis (default Float16).
	Encoding Encoding
	// Secret, when set (at least MinSecretBytes), authenticates every Redis value with
	// HMAC-SHA256 under it: a value written without it (by anyone who can write to Redis
	// but lacks the secret) is refused as a miss. Every process sharing the Redis (edges,
	// the warm-up job) needs the same secret. Without it values are still bound to their
	// key and model and checksummed, but not authenticated.
	Secret []byte
	// TTL of Redis entries (default 7 days); each entry gets TTL*(1±TTLJitter).
	TTL time.Duration
	// TTLJitter is the relative spread of TTLs, in [0, 1) (default 0.1).
	TTLJitter float64
	// MemoryBytes bounds the in-process tier (default 64 MiB, about 30k 512-d vectors).
	MemoryBytes uint64
	// MemoryTTL expires in-process entries after they are written (default 1 hour).
	MemoryTTL time.Duration
	// LookupTimeout bounds one Redis read on the request path (default 100ms).
	LookupTimeout time.Duration
	// WriteTimeout bounds one pipelined Redis write (default 1s).
	WriteTimeout time.Duration
	// BatchTimeout bounds one Redis read of a job's Lookup (default 5s).
	BatchTimeout time.Duration
	// BreakerFailures is how many consecutive Redis failures open the breaker (default 5).
	BreakerFailures uint32
	// BreakerCooldown is how long an open breaker skips Redis before one probe (default 5s).
	BreakerCooldown time.Duration
	// WriteQueue bounds the vectors waiting for the background writer (default 4096); when
	// full, new writes are dropped and counted.
	WriteQueue int
	// Registerer receives the cache's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives state changes (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Encoding == 0 {
		c.Encoding = Float16
	}
	if c.Encoding.bytesPerComponent() == 0 {
		return fmt.Errorf("cache: unknown encoding %d", c.Encoding)
	}
	if c.Secret != nil && len(c.Secret) < MinSecretBytes {
		return fmt.Errorf("cache: the secret is %d bytes; use at least %d (random) bytes", len(c.Secret), MinSecretBytes)
	}
	if c.TTL == 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.TTL < 0 {
		return errors.New("cache: TTL must be positive: cached vectors must expire")
	}
	if c.TTLJitter < 0 || c.TTLJitter >= 1 {
		return fmt.Errorf("cache: TTL jitter %v is outside [0, 1)", c.TTLJitter)
	}
	if c.TTLJitter == 0 {
		c.TTLJitter = 0.1
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = 64 << 20
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defDur(&c.MemoryTTL, time.Hour)
	defDur(&c.LookupTimeout, 100*time.Millisecond)
	defDur(&c.WriteTimeout, time.Second)
	defDur(&c.BatchTimeout, 5*time.Second)
	defDur(&c.BreakerCooldown, 5*time.Second)
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Cache is a two-tier query-embedding cache in front of a backing Embedder. It implements
// encoder.Embedder and is safe for concurrent use.
type Cache struct {
	backing encoder.Embedder
	prefix  string
	model   atomic.Pointer[model] // follows backing.Fingerprint()
	enc     Encoding
	seal    sealer
	mem     *otter.Cache[string, []float32]
	redis   *redisTier // nil without Redis
	m       *metrics
	log     *slog.Logger
	lookTO  time.Duration
	batchTO time.Duration
}

var _ encoder.Embedder = (*Cache)(nil)

// model is what keys and values depend on: the backing model's fingerprint.
type model struct {
	fp   string
	tag  fpTag
	keys keyer
}

// New returns a cache in front of backing. Keys and values carry the backing Embedder's
// model fingerprint, read at every call: while it reports none (a pool that has not reached
// a member yet), calls go straight to it, uncached.
func New(backing encoder.Embedder, cfg Config) (*Cache, error) {
	if backing == nil {
		return nil, errors.New("cache: no backing embedder")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cache: metrics: %w", err)
	}
	mem, err := otter.New(&otter.Options[string, []float32]{
		MaximumWeight: cfg.MemoryBytes,
		Weigher: func(k string, v []float32) uint32 {
			return uint32(len(k) + 4*len(v) + 64) // 64: entry and slice headers
		},
		ExpiryCalculator: otter.ExpiryWriting[string, []float32](cfg.MemoryTTL),
	})
	if err != nil {
		return nil, fmt.Errorf("cache: in-process tier: %w", err)
	}
	c := &Cache{
		backing: backing,
		prefix:  cfg.Prefix,
		enc:     cfg.Encoding,
		seal:    sealer{secret: bytes.Clone(cfg.Secret)},
		mem:     mem,
		m:       m,
		log:     cfg.Logger,
		lookTO:  cfg.LookupTimeout,
		batchTO: cfg.BatchTimeout,
	}
	if cfg.Redis != nil {
		c.redis = newRedisTier(cfg.Redis, &cfg, m, cfg.Logger)
	}
	return c, nil
}

// Fingerprint implements encoder.Embedder: the backing model's fingerprint.
func (c *Cache) Fingerprint() string { return c.backing.Fingerprint() }

// current returns the model state for the backing Embedder's fingerprint now, or nil when
// it reports none.
func (c *Cache) current() *model {
	fp := c.backing.Fingerprint()
	if fp == "" {
		return nil
	}
	if m := c.model.Load(); m != nil && m.fp == fp {
		return m
	}
	m := &model{fp: fp, tag: newFPTag(fp), keys: newKeyer(c.prefix, fp)}
	c.model.Store(m)
	return m
}

// Embed implements encoder.Embedder. Each sequence is answered by the in-process tier, else
// Redis, else the backing Embedder; concurrent misses of one sequence (within a call or
// across calls) cost one lookup and one encoder call. Only the backing Embedder's own
// failure (or ctx ending) fails the call; Redis trouble turns into misses.
func (c *Cache) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	md := c.current()
	if md == nil {
		c.m.encoded.Add(float64(len(tokenIDs)))
		return c.backing.Embed(ctx, tokenIDs)
	}
	out := make([][]float32, len(tokenIDs))
	keys := make([]string, len(tokenIDs))
	ids := make(map[string][]int32, len(tokenIDs))
	var missing []string
	for i, seq := range tokenIDs {
		k := md.keys.key(seq)
		keys[i] = k
		if v, ok := c.mem.GetIfPresent(k); ok {
			out[i] = v
			continue
		}
		if _, dup := ids[k]; !dup {
			missing = append(missing, k)
			ids[k] = seq
		}
	}
	c.m.lookups.WithLabelValues(tierMemory, resHit).Add(float64(len(tokenIDs) - len(missing)))
	if len(missing) > 0 {
		c.m.lookups.WithLabelValues(tierMemory, resMiss).Add(float64(len(missing)))
		got, err := c.mem.BulkGet(ctx, missing, otter.BulkLoaderFunc[string, []float32](
			func(ctx context.Context, keys []string) (map[string][]float32, error) {
				return c.load(ctx, md, keys, ids)
			}))
		if err != nil {
			return nil, err
		}
		for i, k := range keys {
			if out[i] == nil {
				out[i] = got[k]
			}
		}
	}
	for i, v := range out {
		if v == nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("cache: no vector for sequence %d", i)
		}
		out[i] = append([]float32(nil), v...) // callers may modify what they get
	}
	return out, nil
}

// load fills the in-process tier's misses: Redis first, the backing Embedder for the rest,
// whose vectors go to Redis in the background.
func (c *Cache) load(ctx context.Context, md *model, keys []string, ids map[string][]int32) (map[string][]float32, error) {
	found := make(map[string][]float32, len(keys))
	rest := keys
	if c.redis != nil {
		found, rest = c.fromRedis(ctx, md, keys, c.lookTO)
	}
	if len(rest) == 0 {
		return found, nil
	}
	seqs := make([][]int32, len(rest))
	for i, k := range rest {
		seqs[i] = ids[k]
	}
	c.m.encoded.Add(float64(len(seqs)))
	vecs, err := c.backing.Embed(ctx, seqs)
	if err != nil {
		return nil, fmt.Errorf("cache: backing encoder: %w", err)
	}
	if len(vecs) != len(seqs) {
		return nil, fmt.Errorf("cache: backing encoder returned %d vectors for %d sequences", len(vecs), len(seqs))
	}
	items := make([]kv, 0, len(rest))
	for i, k := range rest {
		found[k] = vecs[i]
		if c.redis != nil {
			if b, err := encodeValue(c.enc, md.tag, k, c.seal, vecs[i]); err == nil {
				items = append(items, kv{k, b})
			} else {
				c.log.Warn("query cache: not caching a vector", "err", err)
			}
		}
	}
	if len(items) > 0 {
		c.redis.enqueue(items)
	}
	return found, nil
}

// fromRedis looks keys up in Redis; it returns what it found and the keys still missing.
// Failures, open breaker, corrupted and foreign values all count as misses.
func (c *Cache) fromRedis(ctx context.Context, md *model, keys []string, timeout time.Duration) (map[string][]float32, []string) {
	found := make(map[string][]float32, len(keys))
	raw, err := c.redis.get(ctx, keys, timeout)
	if err != nil {
		res := resError
		if isBreakerReject(err) {
			res = resSkipped
		} else if ctx.Err() == nil {
			c.log.Debug("query cache: redis lookup failed", "keys", len(keys), "err", err)
		}
		c.m.lookups.WithLabelValues(tierRedis, res).Add(float64(len(keys)))
		return found, keys
	}
	var rest []string
	var hits, misses, invalid int
	for i, k := range keys {
		if raw[i] == nil {
			misses++
			rest = append(rest, k)
			continue
		}
		v, err := decodeValue(raw[i], md.tag, k, c.seal)
		if err != nil {
			invalid++
			rest = append(rest, k)
			c.m.refused.WithLabelValues(refusalReason(err)).Inc()
			c.log.Debug("query cache: ignoring stored value", "key", k, "err", err)
			continue
		}
		hits++
		found[k] = v
	}
	c.m.lookups.WithLabelValues(tierRedis, resHit).Add(float64(hits))
	c.m.lookups.WithLabelValues(tierRedis, resMiss).Add(float64(misses))
	c.m.lookups.WithLabelValues(tierRedis, resInvalid).Add(float64(invalid))
	return found, rest
}

// Lookup returns the cached vector of each sequence, or nil where no tier has it; it never
// calls the encoder. Jobs (warm-up) use it with large batches: Redis reads are pipelined
// MGETs under the batch timeout. A Redis failure reads as misses.
func (c *Cache) Lookup(ctx context.Context, tokenIDs [][]int32) [][]float32 {
	out := make([][]float32, len(tokenIDs))
	md := c.current()
	if md == nil {
		return out
	}
	var missing []string
	var pos []int
	for i, seq := range tokenIDs {
		k := md.keys.key(seq)
		if v, ok := c.mem.GetIfPresent(k); ok {
			out[i] = append([]float32(nil), v...)
			continue
		}
		missing = append(missing, k)
		pos = append(pos, i)
	}
	c.m.lookups.WithLabelValues(tierMemory, resHit).Add(float64(len(tokenIDs) - len(missing)))
	c.m.lookups.WithLabelValues(tierMemory, resMiss).Add(float64(len(missing)))
	if c.redis == nil || len(missing) == 0 {
		return out
	}
	found, _ := c.fromRedis(ctx, md, missing, c.batchTO)
	for j, k := range missing {
		if v, ok := found[k]; ok {
			out[pos[j]] = v
			c.mem.Set(k, v)
		}
	}
	return out
}

// Cached reports, for each sequence, whether the cache holds a valid vector for it: in Redis
// when one is configured (the shared, lasting tier; a Redis failure is returned, since a job
// needs to know), else in the in-process tier. It never calls the encoder.
func (c *Cache) Cached(ctx context.Context, tokenIDs [][]int32) ([]bool, error) {
	out := make([]bool, len(tokenIDs))
	md := c.current()
	if md == nil {
		return nil, errors.New("cache: the backing embedder reports no model fingerprint yet")
	}
	keys := make([]string, len(tokenIDs))
	for i, seq := range tokenIDs {
		keys[i] = md.keys.key(seq)
	}
	if c.redis == nil {
		for i, k := range keys {
			_, out[i] = c.mem.GetIfPresent(k)
		}
		return out, nil
	}
	raw, err := c.redis.get(ctx, keys, c.batchTO)
	if err != nil {
		return nil, fmt.Errorf("cache: redis lookup: %w", err)
	}
	for i := range raw {
		if raw[i] != nil {
			_, err := decodeValue(raw[i], md.tag, keys[i], c.seal)
			out[i] = err == nil
		}
	}
	return out, nil
}

// Store writes vectors (one per sequence) to both tiers; the Redis write is synchronous and
// pipelined, and its error is returned (jobs need to know; the request path never calls it).
func (c *Cache) Store(ctx context.Context, tokenIDs [][]int32, vecs [][]float32) error {
	if len(tokenIDs) != len(vecs) {
		return fmt.Errorf("cache: %d sequences but %d vectors", len(tokenIDs), len(vecs))
	}
	md := c.current()
	if md == nil {
		return errors.New("cache: the backing embedder reports no model fingerprint yet")
	}
	items := make([]kv, 0, len(vecs))
	for i, seq := range tokenIDs {
		k := md.keys.key(seq)
		b, err := encodeValue(c.enc, md.tag, k, c.seal, vecs[i])
		if err != nil {
			return fmt.Errorf("cache: sequence %d: %w", i, err)
		}
		c.mem.Set(k, append([]float32(nil), vecs[i]...))
		items = append(items, kv{k, b})
	}
	if c.redis == nil || len(items) == 0 {
		return nil
	}
	if err := c.redis.set(ctx, items); err != nil {
		return fmt.Errorf("cache: redis write: %w", err)
	}
	return nil
}

// HasRedis reports whether a shared tier is configured.
func (c *Cache) HasRedis() bool { return c.redis != nil }

// Flush waits until the background Redis writes queued so far have been attempted.
func (c *Cache) Flush(ctx context.Context) error {
	if c.redis == nil {
		return nil
	}
	return c.redis.flush(ctx)
}

// Close drains the background writer and stops the in-process tier's goroutines. It does
// not close the Redis client, which the caller owns. Embed keeps working after Close
// (without writing to Redis).
func (c *Cache) Close() error {
	if c.redis != nil {
		c.redis.close()
	}
	c.mem.StopAllGoroutines()
	return nil
}

// RedisClient returns the shared tier's client, or nil.
func (c *Cache) RedisClient() redis.UniversalClient {
	if c.redis == nil {
		return nil
	}
	return c.redis.client
}
