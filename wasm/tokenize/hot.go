package wasmtok

import (
	"context"
	"errors"

	wasmhost "github.com/podsearch/podsearch/wasm/host"
)

// Hot is a Tokenizer whose guest module can be replaced while it serves: Swap installs a new
// Tokenizer (another module build or vocabulary), drains the old one and closes it; no Encode
// fails across a swap. It has the Encode(ctx, text) method the edge's tokenizer interface asks.
type Hot struct {
	s *wasmhost.Swappable[*Tokenizer]
}

// NewHot serves t until the first Swap.
func NewHot(t *Tokenizer) *Hot { return &Hot{s: wasmhost.NewSwappable(t)} }

// Encode tokenizes text with the current version.
func (h *Hot) Encode(ctx context.Context, text string) ([]int32, error) {
	l, ok := h.s.Acquire()
	if !ok {
		return nil, errors.New("wasmtok: tokenizer closed")
	}
	defer l.Release()
	return l.Value().Encode(ctx, text)
}

// Swap replaces the current version with t and closes the old one once drained.
func (h *Hot) Swap(ctx context.Context, t *Tokenizer) error { return h.s.Swap(ctx, t) }

// Close drains and closes the current version.
func (h *Hot) Close(ctx context.Context) error { return h.s.Close(ctx) }
