package warmup

import (
	"context"
	"log/slog"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/core/encoder"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/pool"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// The whole stack as `podsearch warmup` runs it: the real tokenizer and USE-lite session
// behind the encoder service on loopback, the pool client, the cache on a real Redis, the
// TREC podcast queries. Then an edge-like cache in front of the same pool serves every query
// from Redis.
func TestWarmupThroughEncoderService(t *testing.T) {
	sess := testmodel.Session(t)
	tok := testmodel.Tokenizer(t)
	entries := trecTopics(t)
	rds := redistest.Start(t)
	quiet := slog.New(slog.DiscardHandler)

	model := &countingModel{Embedder: sess}
	srv, err := gpuencoder.New(gpuencoder.Config{Backends: []encoder.Embedder{model}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pool.New(ctx, pool.Config{Endpoints: []string{ln.Addr().String()}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Fingerprint() != sess.Fingerprint() {
		t.Fatalf("pool fingerprint %q, session %q", p.Fingerprint(), sess.Fingerprint())
	}
	rc, err := cache.OpenRedis(rds.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := cache.New(p, cache.Config{Redis: rc, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := Run(ctx, entries, Options{Tokenizer: tok, Cache: c, Encoder: p, BatchSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Queries != len(entries) || rep.Encoded+rep.AlreadyCached+rep.Skipped != rep.Queries || rep.HitRatioAfter != 1 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("warm-up of %d TREC queries through the encoder service: %+v", len(entries), rep)

	edge, err := cache.New(p, cache.Config{Redis: rc, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	ids := make([][]int32, len(entries))
	for i, e := range entries {
		ids[i] = encoder.Clip(tok.Encode(e.Query))
	}
	before := model.seqs.Load()
	vecs, err := edge.Embed(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := sess.Embed(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vecs {
		if c := cos(vecs[i], direct[i]); c < 0.9999 {
			t.Fatalf("query %q: cached vector cosine %v to the model's", entries[i].Query, c)
		}
	}
	if model.seqs.Load() != before {
		t.Fatalf("the edge cache sent %d sequences to the encoder service after the warm-up", model.seqs.Load()-before)
	}
	if int(before) != rep.EncoderSequences {
		t.Fatalf("the model saw %d sequences, the report says %d", before, rep.EncoderSequences)
	}
}

// countingModel wraps the real session and counts the sequences that reach the model.
type countingModel struct {
	encoder.Embedder
	seqs atomic.Int64
}

func (m *countingModel) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	m.seqs.Add(int64(len(ids)))
	return m.Embedder.Embed(ctx, ids)
}

func cos(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
