package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/podsearch/podsearch/cache/internal/standin"
)

const fpA = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
const fpB = "b1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

// newCache builds a cache in front of a fresh stand-in encoder with its own registry.
func newCache(t *testing.T, cfg Config, fp string) (*Cache, *standin.Encoder) {
	t.Helper()
	enc := &standin.Encoder{FP: fp}
	c, err := New(enc, quietConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, enc
}

// quietConfig gives cfg its own metrics registry and a silent logger.
func quietConfig(cfg Config) Config {
	cfg.Registerer = prometheus.NewRegistry()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func lookups(c *Cache, tier, res string) int {
	return int(testutil.ToFloat64(c.m.lookups.WithLabelValues(tier, res)))
}

// queries returns n distinct token sequences.
func queries(n, salt int) [][]int32 {
	out := make([][]int32, n)
	for i := range out {
		out[i] = []int32{int32(100 + salt), int32(i), int32(i * 3 % 7)}
	}
	return out
}

// checkVectors asserts vecs are the stand-in's vectors of seqs (cosine >= minCos).
func checkVectors(t *testing.T, seqs [][]int32, vecs [][]float32, minCos float64) {
	t.Helper()
	if len(vecs) != len(seqs) {
		t.Fatalf("%d vectors for %d sequences", len(vecs), len(seqs))
	}
	for i, s := range seqs {
		if c := cosine(standin.Vector(s, len(vecs[i])), vecs[i]); c < minCos {
			t.Fatalf("sequence %d: cosine %v to the encoder's vector, want >= %v", i, c, minCos)
		}
	}
}

func TestMemoryTierOnly(t *testing.T) {
	c, enc := newCache(t, Config{}, fpA)
	ctx := context.Background()
	seqs := queries(20, 0)
	v1, err := c.Embed(ctx, seqs)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, seqs, v1, 1-1e-9)
	if enc.Calls() != 1 || enc.Sequences() != 20 {
		t.Fatalf("first pass: %d calls, %d sequences; want 1, 20", enc.Calls(), enc.Sequences())
	}
	v1[0][0] = 42 // callers own what they get
	v2, err := c.Embed(ctx, seqs)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, seqs, v2, 1-1e-9)
	if enc.Calls() != 1 {
		t.Fatalf("second pass called the encoder (%d calls)", enc.Calls())
	}
	if h := lookups(c, tierMemory, resHit); h != 20 {
		t.Fatalf("memory hits %d, want 20", h)
	}
	if c.Fingerprint() != fpA || c.HasRedis() {
		t.Fatal("fingerprint or tiers wrong")
	}
}

func TestDuplicatesInOneBatchEncodeOnce(t *testing.T) {
	c, enc := newCache(t, Config{}, fpA)
	seqs := [][]int32{{1, 2}, {3}, {1, 2}, {3}, {1, 2}}
	v, err := c.Embed(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, seqs, v, 1-1e-9)
	if enc.Sequences() != 2 {
		t.Fatalf("encoder saw %d sequences, want 2", enc.Sequences())
	}
}

// Concurrent misses of one query cost one encoder call: a caller either joins the load in
// flight or finds its result in the in-process tier, whatever the interleaving.
func TestConcurrentMissesCostOneEncoderCall(t *testing.T) {
	c, enc := newCache(t, Config{}, fpA)
	enc.Gate = make(chan struct{})
	enc.Entered = make(chan struct{}, 1)
	const callers = 32
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Embed(context.Background(), [][]int32{{7, 7, 7}})
			if err == nil && cosine(v[0], standin.Vector([]int32{7, 7, 7}, 512)) < 1-1e-9 {
				err = errors.New("wrong vector")
			}
			errs <- err
		}()
	}
	<-enc.Entered // the load is in flight; the other callers pile up behind it
	close(enc.Gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if enc.Calls() != 1 {
		t.Fatalf("%d encoder calls for one query, want 1", enc.Calls())
	}
}

func TestEncoderFailureIsReturnedAndNotCached(t *testing.T) {
	c, enc := newCache(t, Config{}, fpA)
	enc.FailWith(standin.ErrDown)
	if _, err := c.Embed(context.Background(), [][]int32{{1}}); !errors.Is(err, standin.ErrDown) {
		t.Fatalf("err = %v, want the encoder's error", err)
	}
	enc.FailWith(nil)
	v, err := c.Embed(context.Background(), [][]int32{{1}})
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, [][]int32{{1}}, v, 1-1e-9)
}

func TestCancelledContext(t *testing.T) {
	c, _ := newCache(t, Config{}, fpA)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Embed(ctx, [][]int32{{1}}); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

// A backing Embedder without a fingerprint yet (a pool before any member answered) is
// passed through uncached, and cached as soon as it reports one.
func TestNoFingerprintPassesThrough(t *testing.T) {
	c, enc := newCache(t, Config{}, "")
	seqs := queries(3, 1)
	for i := 0; i < 2; i++ {
		v, err := c.Embed(context.Background(), seqs)
		if err != nil {
			t.Fatal(err)
		}
		checkVectors(t, seqs, v, 1-1e-9)
	}
	if enc.Calls() != 2 {
		t.Fatalf("%d calls, want 2 (no caching without a fingerprint)", enc.Calls())
	}
	if err := c.Store(context.Background(), seqs, make([][]float32, 3)); err == nil {
		t.Fatal("Store without a fingerprint: no error")
	}
	if got := c.Lookup(context.Background(), seqs); got[0] != nil {
		t.Fatal("Lookup without a fingerprint found something")
	}
	enc.FP = fpA
	for i := 0; i < 2; i++ {
		if _, err := c.Embed(context.Background(), seqs); err != nil {
			t.Fatal(err)
		}
	}
	if enc.Calls() != 3 {
		t.Fatalf("%d calls, want 3 (cached once the fingerprint is known)", enc.Calls())
	}
}

func TestConfigErrors(t *testing.T) {
	enc := &standin.Encoder{FP: fpA}
	for name, cfg := range map[string]Config{
		"negative ttl": {TTL: -1},
		"jitter":       {TTLJitter: 1.5},
		"encoding":     {Encoding: 7},
	} {
		if _, err := New(enc, cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("nil backing: no error")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(enc, Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(enc, Config{Registerer: reg}); err == nil {
		t.Error("registering the metrics twice: no error")
	}
}

func TestStoreAndLookupMemoryOnly(t *testing.T) {
	c, enc := newCache(t, Config{}, fpA)
	seqs := queries(5, 2)
	vecs := make([][]float32, len(seqs))
	for i, s := range seqs {
		vecs[i] = standin.Vector(s, 512)
	}
	if err := c.Store(context.Background(), seqs[:3], vecs[:3]); err != nil {
		t.Fatal(err)
	}
	got := c.Lookup(context.Background(), seqs)
	for i := range seqs {
		if (got[i] != nil) != (i < 3) {
			t.Fatalf("sequence %d: found=%v", i, got[i] != nil)
		}
	}
	if err := c.Store(context.Background(), seqs, vecs[:1]); err == nil {
		t.Fatal("mismatched Store: no error")
	}
	if enc.Calls() != 0 {
		t.Fatal("Lookup/Store called the encoder")
	}
}

func testutilToFloat(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// The metrics an operator dashboards on are registered under their documented names.
func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(&standin.Encoder{FP: fpA}, Config{Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seqs := queries(3, 16)
	for i := 0; i < 2; i++ {
		if _, err := c.Embed(context.Background(), seqs); err != nil {
			t.Fatal(err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "podsearch_query_cache_lookups_total", "podsearch_query_cache_encoded_total",
		"podsearch_query_cache_redis_breaker_state")
	if err != nil || n == 0 {
		t.Fatalf("metrics not gathered: %d, %v", n, err)
	}
	if got := testutil.ToFloat64(c.m.encoded); got != 3 {
		t.Fatalf("encoded_total %v, want 3", got)
	}
	if hits := lookups(c, tierMemory, resHit); hits != 3 {
		t.Fatalf("memory hits %d, want 3", hits)
	}
}
