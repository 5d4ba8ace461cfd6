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
	// Doc (episode) vectors pass through it only when the adapter is BothSides (a
	// BothSides tower embeds them).
	Doc
)

// Embedder serves tuned vectors: the base encoder's vectors mapped by the adapter. It
// implements encoder.Embedder, so it can stand wherever the base encoder does.
type Embedder struct {
	base    encoder.Embedder
	adapter *Adapter
	side    Side
	tower   *encoder.Session // a Tower adapter's query encoder
}

// Wrap puts a in front of base for the given side; it refuses an adapter trained on another
// model. For a Tower adapter, queries are embedded by the tuned tower (an ONNX Runtime
// session on a.Tower.Path, on base's execution provider when base is a Session) and episodes
// by base unchanged, or by the tower too when it is BothSides; Close releases the tower's
// session.
func Wrap(base encoder.Embedder, a *Adapter, side Side) (*Embedder, error) {
	if fp := base.Fingerprint(); fp != a.BaseFingerprint {
		return nil, fmt.Errorf("%w: adapter trained on %s, encoder is %s", ErrFingerprint, short(a.BaseFingerprint), short(fp))
	}
	e := &Embedder{base: base, adapter: a, side: side}
	if a.Kind == Tower && (side == Query || a.BothSides) {
		if a.Tower == nil || a.Tower.Path == "" {
			return nil, fmt.Errorf("adapter: the query tower must be loaded from a file to serve it")
		}
		opts := encoder.Options{ModelPath: a.Tower.Path}
		if s, ok := base.(*encoder.Session); ok {
			opts.Provider = s.Provider()
		}
		sess, err := encoder.Open(opts)
		if err != nil {
			return nil, fmt.Errorf("adapter: opening the query tower %s: %w", a.Tower.Path, err)
		}
		e.tower = sess
	}
	return e, nil
}

// Embed implements encoder.Embedder.
func (e *Embedder) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	if e.adapter.Kind == Tower {
		if e.tower != nil {
			return e.tower.Embed(ctx, tokenIDs)
		}
		return e.base.Embed(ctx, tokenIDs) // episodes of a query-only tower: the base encoder's vectors
	}
	vs, err := e.base.Embed(ctx, tokenIDs)
	if err != nil {
		return nil, err
	}
	return e.adapter.ApplyAll(vs, e.side == Doc)
}

// Close releases the query tower's session, if any (the base encoder is the caller's).
func (e *Embedder) Close() error {
	if e.tower != nil {
		return e.tower.Close()
	}
	return nil
}

// Fingerprint implements encoder.Embedder: the tuned fingerprint for queries (and for
// episodes when the adapter is BothSides), else the base one.
func (e *Embedder) Fingerprint() string {
	if e.side == Doc {
		return e.adapter.DocFingerprint()
	}
	return e.adapter.Fingerprint()
}
