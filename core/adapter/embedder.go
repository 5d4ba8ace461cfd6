package adapter

import (
	"context"
	"fmt"

	"github.com/podsearch/podsearch/core/encoder"
)

// Side says which vectors an Embedder produces.
type Side int

const (
	// Query vectors always pass through the adapter.
	Query Side = iota
	// Doc (episode) vectors pass through it only when the adapter is BothSides.
	Doc
)

// Embedder serves tuned vectors: the base encoder's vectors mapped by the adapter. It
// implements encoder.Embedder, so it can stand wherever the base encoder does.
type Embedder struct {
	base    encoder.Embedder
	adapter *Adapter
	side    Side
}

// Wrap puts a in front of base for the given side; it refuses an adapter trained on another
// model.
func Wrap(base encoder.Embedder, a *Adapter, side Side) (*Embedder, error) {
	if fp := base.Fingerprint(); fp != a.BaseFingerprint {
		return nil, fmt.Errorf("%w: adapter trained on %s, encoder is %s", ErrFingerprint, short(a.BaseFingerprint), short(fp))
	}
	return &Embedder{base: base, adapter: a, side: side}, nil
}

// Embed implements encoder.Embedder.
func (e *Embedder) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	vs, err := e.base.Embed(ctx, tokenIDs)
	if err != nil {
		return nil, err
	}
	return e.adapter.ApplyAll(vs, e.side == Doc)
}

// Fingerprint implements encoder.Embedder: the tuned fingerprint for queries (and for
// episodes when the adapter is BothSides), else the base one.
func (e *Embedder) Fingerprint() string {
	if e.side == Doc {
		return e.adapter.DocFingerprint()
	}
	return e.adapter.Fingerprint()
}
