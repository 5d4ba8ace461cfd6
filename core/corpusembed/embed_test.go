package corpusembed

import (
	"context"
	"errors"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestEmbed: the vectors come back row-major in the order of the texts, whatever the batch
// size, equal to the encoder's own, with the base model's fingerprint.
func TestEmbed(t *testing.T) {
	texts := []string{"a long episode about the history of jazz in New Orleans", "cooking", "Fußball am Wochenende"}
	flat, fp, err := Embed(context.Background(), texts, Options{Batch: 2})
	if errors.Is(err, encoder.ErrNotSetUp) {
		testenv.SkipOrFailModel(t, "the encoder model")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(flat) != len(texts)*encoder.Dim || fp == "" {
		t.Fatalf("%d values, fingerprint %q", len(flat), fp)
	}
	sess, err := encoder.Open(encoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		t.Fatal(err)
	}
	want, err := encoder.EmbedTexts(context.Background(), tok, sess, texts, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fp != sess.Fingerprint() {
		t.Fatalf("fingerprint %q, the session's %q", fp, sess.Fingerprint())
	}
	for i, v := range want {
		for j, x := range v {
			if d := flat[i*encoder.Dim+j] - x; d > 1e-5 || d < -1e-5 {
				t.Fatalf("text %d value %d: %v, want %v", i, j, flat[i*encoder.Dim+j], x)
			}
		}
	}
}
