// Package standin provides Embedder, a deterministic stand-in for the USE-lite model. It is
// for tests and benchmarks about batching, queueing, overload and faults, where what matters
// is how many sequences reach the model, in which batches and how long a batch takes, not
// what the vectors mean: its vectors are a hash of the token ids, normalised, and carry no
// meaning. Tests about vector values use the real encoder.Session.
package standin

import (
	"context"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
)

// Fingerprint is the fingerprint every stand-in reports; it can never equal a real model's.
const Fingerprint = "standin-not-a-model"

// Embedder is the deterministic stand-in model. Its zero value answers instantly; set
// PerBatch and PerToken to make a batch cost PerBatch + PerToken x padded tokens. It is safe
// for concurrent use and records every sequence it was given.
type Embedder struct {
	// PerBatch is the fixed cost of one call.
	PerBatch time.Duration
	// PerToken is the cost of each padded token (sequences x longest) of one call.
	PerToken time.Duration

	mu      sync.Mutex
	batches []int
	seen    map[int32]int
}

// Embed implements encoder.Embedder: after the simulated cost, one unit vector per sequence
// derived only from that sequence's ids.
func (e *Embedder) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	longest := 0
	for _, s := range tokenIDs {
		longest = max(longest, len(s))
	}
	e.mu.Lock()
	e.batches = append(e.batches, len(tokenIDs))
	if e.seen == nil {
		e.seen = map[int32]int{}
	}
	for _, s := range tokenIDs {
		for _, id := range s {
			e.seen[id]++
		}
	}
	e.mu.Unlock()
	if d := e.PerBatch + e.PerToken*time.Duration(len(tokenIDs)*longest); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	out := make([][]float32, len(tokenIDs))
	for i, s := range tokenIDs {
		out[i] = Vector(s)
	}
	return out, nil
}

// Fingerprint implements encoder.Embedder.
func (e *Embedder) Fingerprint() string { return Fingerprint }

// Batches returns the size of every batch run so far, in order.
func (e *Embedder) Batches() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.batches...)
}

// Seen returns how many times token id reached the model.
func (e *Embedder) Seen(id int32) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[id]
}

// Vector is the stand-in's vector for one sequence: encoder.Dim values from an FNV-seeded
// xorshift generator, L2-normalised.
func Vector(ids []int32) []float32 {
	h := fnv.New64a()
	for _, id := range ids {
		h.Write([]byte{byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)})
	}
	x := h.Sum64() | 1
	v := make([]float32, encoder.Dim)
	var norm float64
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f := float64(int64(x>>11))/float64(1<<52) - 1
		v[i] = float32(f)
		norm += f * f
	}
	inv := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}
