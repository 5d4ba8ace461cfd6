// Package testmodel opens the real USE-lite encoder and tokenizer for tests, skipping the
// test when `make setup` has not run (failing it instead under PODSEARCH_REQUIRE_MODEL=1).
package testmodel

import (
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
