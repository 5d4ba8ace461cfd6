package warmup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/internal/standin"
	"github.com/podsearch/podsearch/cache/querylog"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
)

const fp = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"

func trecTopics(t *testing.T) []querylog.Entry {
	t.Helper()
	e, err := querylog.ReadFile(testenv.Shared(t, "data/queries/trec_podcasts_topics.jsonl"), querylog.Auto)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newCache is a cache in front of a stand-in encoder (the one Run does not use) on redisURL
// ("" for in-process only).
func newCache(t *testing.T, redisURL string) *cache.Cache {
	t.Helper()
	cfg := cache.Config{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}
	if redisURL != "" {
		rc, err := cache.OpenRedis(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rc.Close() })
		cfg.Redis = rc
	}
	c, err := cache.New(&standin.Encoder{FP: fp}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// failingAfter is a test stand-in encoder that fails from its n+1-th call on.
type failingAfter struct {
	*standin.Encoder
	n     int64
	calls atomic.Int64
}

func (f *failingAfter) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	if f.calls.Add(1) > f.n {
		return nil, standin.ErrDown
	}
	return f.Encoder.Embed(ctx, ids)
}

func TestWarmupTRECTopicsTwice(t *testing.T) {
	srv := redistest.Start(t)
	entries := trecTopics(t)
	enc := &standin.Encoder{FP: fp}
	var progress bytes.Buffer
	opts := Options{Tokenizer: standin.Tokenizer{}, Cache: newCache(t, srv.URL()), Encoder: enc,
		BatchSize: 16, Rate: 1e6, Progress: &progress}
	rep, err := Run(context.Background(), entries, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := len(entries)
	if rep.Queries != n || rep.AlreadyCached != 0 || rep.Encoded != n || rep.Skipped != 0 || !rep.SharedTier ||
		rep.HitRatioBefore != 0 || rep.HitRatioAfter != 1 || rep.WeightedHitRatioAfter != 1 || rep.Requests != 108 {
		t.Fatalf("first run: %+v", rep)
	}
	if int(enc.Sequences()) != rep.EncoderSequences || rep.EncoderSequences > n {
		t.Fatalf("encoder saw %d sequences, report says %d", enc.Sequences(), rep.EncoderSequences)
	}
	if progress.Len() == 0 {
		t.Fatal("no progress bar drawn")
	}
	if d, _ := srv.Do("DBSIZE"); d == "0" {
		t.Fatal("nothing in Redis")
	}
	// A second run (a fresh process) finds everything cached and encodes nothing.
	enc2 := &standin.Encoder{FP: fp}
	opts.Cache, opts.Encoder, opts.Progress = newCache(t, srv.URL()), enc2, nil
	rep, err = Run(context.Background(), entries, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AlreadyCached != n || rep.Encoded != 0 || rep.HitRatioBefore != 1 || enc2.Calls() != 0 {
		t.Fatalf("second run: %+v (encoder calls %d)", rep, enc2.Calls())
	}
	// The edge's cache, in front of the same model, now serves these queries from Redis.
	edgeEnc := &standin.Encoder{FP: fp}
	edge, err := cache.New(edgeEnc, cache.Config{Redis: opts.Cache.RedisClient(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	ids := make([][]int32, len(entries))
	for i, e := range entries {
		ids[i] = standin.Tokenizer{}.Encode(e.Query)
	}
	if _, err := edge.Embed(context.Background(), ids); err != nil || edgeEnc.Calls() != 0 {
		t.Fatalf("edge after warm-up: err %v, encoder calls %d", err, edgeEnc.Calls())
	}
}

// Interrupting a run (SIGINT cancels its context) keeps every batch already encoded.
func TestWarmupCancelKeepsEncodedBatches(t *testing.T) {
	srv := redistest.Start(t)
	entries := trecTopics(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enc := &cancelAfter{Encoder: &standin.Encoder{FP: fp}, n: 2, cancel: cancel}
	rep, err := Run(ctx, entries, Options{Tokenizer: standin.Tokenizer{}, Cache: newCache(t, srv.URL()), Encoder: enc, BatchSize: 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rep.EncoderSequences != 20 || enc.calls.Load() != 2 {
		t.Fatalf("cancelled run stored %d sequences after %d encoder calls, want 20 after 2", rep.EncoderSequences, enc.calls.Load())
	}
	if want := float64(rep.Encoded) / float64(len(entries)); rep.HitRatioAfter != want {
		t.Fatalf("hit ratio after %v, want %v (what landed in Redis)", rep.HitRatioAfter, want)
	}
}

// cancelAfter is a test stand-in encoder that cancels the run during its n-th call (and
// still answers it, like an encoder that finished just as the user pressed Ctrl-C).
type cancelAfter struct {
	*standin.Encoder
	n      int64
	cancel context.CancelFunc
	calls  atomic.Int64
}

func (c *cancelAfter) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return c.Encoder.Embed(context.WithoutCancel(ctx), ids)
}

// A pool that fails for a moment (all members restarting) costs a retry, not the run.
func TestWarmupRetriesEncoderFailures(t *testing.T) {
	flaky := &flakyOnce{Encoder: &standin.Encoder{FP: fp}}
	rep, err := Run(context.Background(), []querylog.Entry{{Query: "a", Count: 1}, {Query: "b", Count: 1}},
		Options{Tokenizer: standin.Tokenizer{}, Cache: newCache(t, ""), Encoder: flaky, RetryBackoff: time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
	if err != nil || rep.Encoded != 2 || flaky.calls.Load() != 2 {
		t.Fatalf("report %+v, err %v, calls %d", rep, err, flaky.calls.Load())
	}
}

// flakyOnce is a test stand-in encoder whose first call fails.
type flakyOnce struct {
	*standin.Encoder
	calls atomic.Int64
}

func (f *flakyOnce) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	if f.calls.Add(1) == 1 {
		return nil, standin.ErrDown
	}
	return f.Encoder.Embed(ctx, ids)
}

// A run that dies part-way keeps the batches it finished; the next run encodes only the rest.
func TestWarmupResumes(t *testing.T) {
	srv := redistest.Start(t)
	entries := trecTopics(t)
	broken := &failingAfter{Encoder: &standin.Encoder{FP: fp}, n: 2}
	opts := Options{Tokenizer: standin.Tokenizer{}, Cache: newCache(t, srv.URL()), Encoder: broken, BatchSize: 10,
		Retries: 2, RetryBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	rep, err := Run(context.Background(), entries, opts)
	if !errors.Is(err, standin.ErrDown) {
		t.Fatalf("err = %v, want the encoder's failure", err)
	}
	if rep.EncoderSequences != 20 || broken.calls.Load() != 2+1+2 {
		t.Fatalf("interrupted run: stored %d sequences (want the 2 finished batches, 20), %d encoder calls (want 2 + 1 + 2 retries)",
			rep.EncoderSequences, broken.calls.Load())
	}
	if want := float64(rep.Encoded) / float64(len(entries)); rep.HitRatioAfter != want {
		t.Fatalf("interrupted run: hit ratio after %v, want %v", rep.HitRatioAfter, want)
	}
	enc := &standin.Encoder{FP: fp}
	opts.Cache, opts.Encoder = newCache(t, srv.URL()), enc
	rep2, err := Run(context.Background(), entries, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.AlreadyCached != rep.Encoded || rep2.Encoded != len(entries)-rep.Encoded || rep2.HitRatioAfter != 1 {
		t.Fatalf("resumed run: %+v after %+v", rep2, rep)
	}
}

func TestWarmupMemoryOnlyAndErrors(t *testing.T) {
	entries := []querylog.Entry{{Query: "a b", Count: 3}, {Query: "c", Count: 1}}
	c := newCache(t, "")
	rep, err := Run(context.Background(), entries, Options{Tokenizer: standin.Tokenizer{}, Cache: c, Encoder: &standin.Encoder{FP: fp}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SharedTier || rep.Encoded != 2 || rep.HitRatioAfter != 1 || rep.WeightedHitRatioAfter != 1 {
		t.Fatalf("memory-only: %+v", rep)
	}
	if _, err := Run(context.Background(), entries, Options{Tokenizer: standin.Tokenizer{}, Cache: c, Encoder: &standin.Encoder{FP: "other"}}); err == nil {
		t.Fatal("encoder of another model: no error")
	}
	if _, err := Run(context.Background(), entries, Options{Cache: c}); err == nil {
		t.Fatal("missing tokenizer and encoder: no error")
	}
	if _, err := Run(context.Background(), entries, Options{Tokenizer: standin.Tokenizer{}, Cache: c, Encoder: &standin.Encoder{FP: fp}, Rate: -1}); err == nil {
		t.Fatal("negative rate: no error")
	}
	// Redis down: the job says so instead of silently encoding into nothing.
	srv := redistest.Start(t)
	down := newCache(t, srv.URL())
	srv.Kill()
	if _, err := Run(context.Background(), entries, Options{Tokenizer: standin.Tokenizer{}, Cache: down, Encoder: &standin.Encoder{FP: fp}}); err == nil {
		t.Fatal("Redis down: no error")
	}
}

var _ tokenizer.Tokenizer = standin.Tokenizer{}
