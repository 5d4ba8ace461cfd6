package corpusembed

import (
	"context"
	"io"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
)

// Options are the settings of Embed.
type Options struct {
	// Batch is the number of texts per encoder batch (0: all at once).
	Batch int
	// Provider is the ONNX Runtime execution provider: "cpu" or "cuda" (falls back to cpu).
	Provider string
	// Adapter, when not empty, is a query adapter file (podsearch train) whose document side
	// the vectors pass through; the fingerprint is then the tuned model's.
	Adapter string
	// Progress receives a progress bar; nil shows none.
	Progress io.Writer
}

// Embed runs the encoder over texts in batches and returns the vectors row-major
// (encoder.Dim each, in the order of texts) and the model fingerprint: the base model's, or
// with an adapter the tuned model's (the one the query side will name).
func Embed(ctx context.Context, texts []string, o Options) ([]float32, string, error) {
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, "", err
	}
	sess, err := encoder.Open(encoder.Options{Provider: o.Provider})
	if err != nil {
		return nil, "", err
	}
	defer sess.Close()
	var emb encoder.Embedder = sess
	fp := sess.Fingerprint()
	if o.Adapter != "" {
		a, err := adapter.LoadFor(o.Adapter, sess.Fingerprint())
		if err != nil {
			return nil, "", err
		}
		if emb, err = adapter.Wrap(sess, a, adapter.Doc); err != nil {
			return nil, "", err
		}
		fp = a.Fingerprint()
	}
	bar := ingest.ProgressBar(o.Progress, len(texts), "embedding")
	last := 0
	vecs, err := encoder.EmbedTexts(ctx, tok, emb, texts, o.Batch, func(done int) {
		_ = bar.Add(done - last)
		last = done
	})
	_ = bar.Finish()
	if err != nil {
		return nil, "", err
	}
	flat := make([]float32, 0, len(vecs)*encoder.Dim)
	for _, v := range vecs {
		flat = append(flat, v...)
	}
	return flat, fp, nil
}
