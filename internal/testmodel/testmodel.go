// Package testmodel opens the real USE-lite encoder and tokenizer for tests, skipping the
// test when `make setup` has not run (failing it instead under PODSEARCH_REQUIRE_MODEL=1).
package testmodel

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
)

// Session opens an encoder session with one intra-op thread, closed when tb ends.
func Session(tb testing.TB) *encoder.Session {
	tb.Helper()
	sess, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
	if errors.Is(err, encoder.ErrNotSetUp) {
		testenv.SkipOrFailModel(tb, "the encoder model")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sess.Close() })
	return sess
}

// Tokenizer loads the vocabulary that `podsearch setup` fetched.
func Tokenizer(tb testing.TB) *tokenizer.Unigram {
	tb.Helper()
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if errors.Is(err, fs.ErrNotExist) {
		testenv.SkipOrFailModel(tb, "the tokenizer vocabulary")
	}
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// Encoder is the real encoder behind the evaluate.Encoder interface (no vector cache), for
// tests of code that encodes through it.
type Encoder struct {
	Tok  tokenizer.Tokenizer // the vocabulary's tokenizer
	Sess *encoder.Session    // the model's session (closed when the test ends)
}

// NewEncoder opens the real encoder and tokenizer (Session, Tokenizer).
func NewEncoder(tb testing.TB) Encoder {
	tb.Helper()
	return Encoder{Tok: Tokenizer(tb), Sess: Session(tb)}
}

// Encode embeds texts, 32 per encoder call.
func (e Encoder) Encode(ctx context.Context, _ string, texts []string) ([][]float32, error) {
	return encoder.EmbedTexts(ctx, e.Tok, e.Sess, texts, 32, nil)
}

// Fingerprint is the model's fingerprint.
func (e Encoder) Fingerprint() string { return e.Sess.Fingerprint() }
