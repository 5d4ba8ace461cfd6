package standin

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
)

// Encoder is a test stand-in for the encoder: component j of a sequence's vector is
// sin(a*(j+1) + 0.5) with a frequency a drawn from an FNV hash of the ids, then
// L2-normalised. Same ids, same vector.
type Encoder struct {
	// Dim is the vector width (default 512 when zero).
	Dim int
	// FP is the model fingerprint it reports.
	FP string
	// Gate, when set, is waited on at the start of each Embed (to hold calls in flight).
	Gate chan struct{}
	// Entered, when set, receives a value when an Embed call starts (non-blocking).
	Entered chan struct{}

	calls     atomic.Int64
	sequences atomic.Int64
	mu        sync.Mutex
	fail      error
}

// Embed implements encoder.Embedder.
func (e *Encoder) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	e.calls.Add(1)
	e.sequences.Add(int64(len(tokenIDs)))
	if e.Entered != nil {
		select {
		case e.Entered <- struct{}{}:
		default:
		}
	}
	if e.Gate != nil {
		select {
		case <-e.Gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	fail := e.fail
	e.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	out := make([][]float32, len(tokenIDs))
	for i, ids := range tokenIDs {
		out[i] = Vector(ids, e.dim())
	}
	return out, nil
}

// Fingerprint implements encoder.Embedder.
func (e *Encoder) Fingerprint() string { return e.FP }

// Calls is how many Embed calls were made.
func (e *Encoder) Calls() int64 { return e.calls.Load() }

// Sequences is how many sequences were asked for in all calls.
func (e *Encoder) Sequences() int64 { return e.sequences.Load() }

// FailWith makes later calls fail with err (nil restores success).
func (e *Encoder) FailWith(err error) {
	e.mu.Lock()
	e.fail = err
	e.mu.Unlock()
}

func (e *Encoder) dim() int {
	if e.Dim == 0 {
		return 512
	}
	return e.Dim
}

// Vector is the stand-in's deterministic unit vector for ids.
func Vector(ids []int32, dim int) []float32 {
	h := fnv.New64a()
	for _, id := range ids {
		_, _ = h.Write([]byte{byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)})
	}
	a := float64(h.Sum64()>>11) / (1 << 53) * 1000 // a frequency in [0, 1000)
	v := make([]float32, dim)
	var s float64
	for j := range v {
		x := math.Sin(a*float64(j+1) + 0.5)
		v[j] = float32(x)
		s += x * x
	}
	inv := 1 / math.Sqrt(s)
	for j := range v {
		v[j] = float32(float64(v[j]) * inv)
	}
	return v
}

// Tokenizer is a test stand-in for the SentencePiece tokenizer: one id per
// whitespace-separated word (an FNV hash folded into 6..8001, the real vocabulary's range).
type Tokenizer struct{}

// Encode implements tokenizer.Tokenizer.
func (Tokenizer) Encode(text string) []int32 {
	var ids []int32
	for _, w := range strings.Fields(text) {
		h := fnv.New32a()
		_, _ = h.Write([]byte(w))
		ids = append(ids, int32(6+h.Sum32()%7996))
	}
	return ids
}

// VocabSize implements tokenizer.Tokenizer: the real vocabulary's size.
func (Tokenizer) VocabSize() int { return 8002 }

// ErrDown is a ready-made failure for FailWith.
var ErrDown = errors.New("stand-in encoder: down")
