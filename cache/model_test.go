package cache

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/querylog"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// counting wraps an Embedder and counts the sequences it is asked for.
type counting struct {
	encoder.Embedder
	seqs atomic.Int64
}

func (c *counting) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	c.seqs.Add(int64(len(ids)))
	return c.Embedder.Embed(ctx, ids)
}

// The real encoder behind the cache, on the TREC podcast queries: the first pass returns the
// session's own vectors, a second process is served from Redis (float16) with cosine >=
// 0.9999 to them and no encoder call.
func TestRealEncoderBehindCache(t *testing.T) {
	sess := testmodel.Session(t)
	tok := testmodel.Tokenizer(t)
	entries, err := querylog.ReadFile(testenv.Shared(t, "data/queries/trec_podcasts_topics.jsonl"), querylog.Auto)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())

	seqs := make([][]int32, len(entries))
	for i, e := range entries {
		seqs[i] = encoder.Clip(tok.Encode(e.Query))
	}
	direct, err := sess.Embed(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	ca := &counting{Embedder: sess}
	a, err := New(ca, Config{Redis: rc})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Fingerprint() == "" || a.Fingerprint() != sess.Fingerprint() {
		t.Fatalf("fingerprint %q, session %q", a.Fingerprint(), sess.Fingerprint())
	}
	first := embed(t, a, seqs)
	for i := range seqs {
		if c := cosine(first[i], direct[i]); c < 0.99999 {
			t.Fatalf("query %q: cosine %v between cached pass and the session", entries[i].Query, c)
		}
	}
	flush(t, a)
	cb := &counting{Embedder: sess}
	b, err := New(cb, Config{Redis: rc})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	second := embed(t, b, seqs)
	if cb.seqs.Load() != 0 {
		t.Fatalf("second process encoded %d sequences, want 0", cb.seqs.Load())
	}
	worst := 1.0
	for i := range seqs {
		worst = min(worst, cosine(second[i], direct[i]))
	}
	if worst < 0.9999 {
		t.Fatalf("float16 round trip: worst cosine %v < 0.9999", worst)
	}
	t.Logf("%d TREC queries (%d encoded once); worst cosine after the float16 round trip %.7f", len(seqs), ca.seqs.Load(), worst)
}
