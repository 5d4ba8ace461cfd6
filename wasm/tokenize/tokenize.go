package wasmtok

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/podsearch/podsearch/core/tokenizer"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/modules"
)

// MaxInputBytes bounds the text of one call, and so the work of one guest call (the
// tokenizer is linear in its input); callers cut longer documents first.
const MaxInputBytes = 1 << 20

// Tokenizer is a pool of tokenizer guests. It is safe for concurrent use: each call takes
// an instance for itself.
type Tokenizer struct {
	pool *wasmhost.Pool
}

// New starts instances warm tokenizer guests of the embedded module with vocab.
func New(ctx context.Context, rt *wasmhost.Runtime, vocab *tokenizer.Unigram, instances int) (*Tokenizer, error) {
	return NewFromModule(ctx, rt, modules.Tokenizer, vocab, instances)
}

// NewFromModule is New with another build of the guest (a hot-swapped module version).
func NewFromModule(ctx context.Context, rt *wasmhost.Runtime, bin []byte, vocab *tokenizer.Unigram, instances int) (*Tokenizer, error) {
	vb, err := vocab.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m, err := rt.Compile(ctx, "tokenizer", bin)
	if err != nil {
		return nil, err
	}
	pool, err := rt.NewPool(ctx, m, wasmhost.PoolConfig{
		Size:           instances,
		StartFunctions: []string{"_initialize"},
		Setup: func(ctx context.Context, in *wasmhost.Instance) error {
			ptr, err := in.Call(ctx, "buffer", uint64(len(vb)))
			if err != nil {
				return err
			}
			if !in.Memory().Write(uint32(ptr), vb) {
				return errors.New("wasmtok: guest buffer out of range")
			}
			status, err := in.Call(ctx, "load_vocab", uint64(len(vb)))
			if err != nil {
				return err
			}
			if int32(status) != 0 {
				return fmt.Errorf("wasmtok: guest rejected the vocabulary: %s", guestError(ctx, in))
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &Tokenizer{pool: pool}, nil
}

// Encode returns the token ids of text, as tokenizer.Unigram.Encode does.
func (t *Tokenizer) Encode(ctx context.Context, text string) ([]int32, error) {
	if len(text) > MaxInputBytes {
		return nil, fmt.Errorf("wasmtok: text of %d bytes exceeds the %d-byte limit of one call", len(text), MaxInputBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer t.pool.Release(in)
	ptr, err := in.Call(ctx, "buffer", uint64(len(text)))
	if err != nil {
		return nil, err
	}
	mem := in.Memory()
	if !mem.WriteString(uint32(ptr), text) {
		return nil, errors.New("wasmtok: guest buffer out of range")
	}
	res, err := in.Call(ctx, "tokenize", uint64(len(text)))
	if err != nil {
		return nil, err
	}
	n := uint32(res)
	if n == 1<<32-1 {
		return nil, fmt.Errorf("wasmtok: %s", guestError(ctx, in))
	}
	raw, ok := mem.Read(uint32(res>>32), n*4)
	if !ok {
		return nil, errors.New("wasmtok: guest returned ids out of range")
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ids, nil
}

// Close drains and closes the guests.
func (t *Tokenizer) Close(ctx context.Context) error { return t.pool.Close(ctx) }

func guestError(ctx context.Context, in *wasmhost.Instance) string {
	res, err := in.Call(ctx, "error")
	if err != nil {
		return err.Error()
	}
	msg, ok := in.Memory().Read(uint32(res>>32), uint32(res))
	if !ok {
		return "unreadable guest error"
	}
	return string(msg)
}
