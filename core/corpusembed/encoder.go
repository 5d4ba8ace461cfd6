package corpusembed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate/vcache"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
)

// Encoder turns texts into vectors with the real encoder, through the on-disk vector cache
// (core/evaluate/vcache): the evaluate.Encoder of the eval, train and pool commands and of
// an index build's query sample.
type Encoder struct {
	tok      tokenizer.Tokenizer
	sess     *encoder.Session
	cache    *vcache.Cache
	batch    int
	progress io.Writer
}

// NewEncoder opens the encoder on provider with the vector cache in cacheDir (empty: none),
// encoding batch texts per call, with its progress bars on progress (nil: none).
func NewEncoder(provider, cacheDir string, batch int, progress io.Writer) (*Encoder, error) {
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, err
	}
	sess, err := encoder.Open(encoder.Options{Provider: provider})
	if err != nil {
		return nil, err
	}
	return &Encoder{tok: tok, sess: sess, cache: &vcache.Cache{Dir: cacheDir}, batch: batch, progress: progress}, nil
}

// QueryTower returns an Encoder that embeds query texts with the tuned query tower of a
// (an adapter of kind adapter.Tower, loaded from a file), on e's provider, through e's
// tokenizer, vector cache (keyed by the tower's fingerprint), batch size and progress bars:
// the vectors the encoder service serves for that tower. Closing it closes the tower's
// session, not e's.
func (e *Encoder) QueryTower(a *adapter.Adapter) (*Encoder, error) {
	if a.Kind != adapter.Tower || a.Tower == nil || a.Tower.Path == "" {
		return nil, fmt.Errorf("corpusembed: %s adapter is not a query tower loaded from a file", a.Kind)
	}
	sess, err := encoder.Open(encoder.Options{ModelPath: a.Tower.Path, Provider: e.sess.Provider()})
	if err != nil {
		return nil, fmt.Errorf("opening the query tower %s: %w", a.Tower.Path, err)
	}
	return &Encoder{tok: e.tok, sess: sess, cache: e.cache, batch: e.batch, progress: e.progress}, nil
}

// Tokenizer is the tokenizer the encoder encodes texts with.
func (e *Encoder) Tokenizer() tokenizer.Tokenizer { return e.tok }

// Close releases the encoder session.
func (e *Encoder) Close() error { return e.sess.Close() }

// Fingerprint is the encoder model's fingerprint.
func (e *Encoder) Fingerprint() string { return e.sess.Fingerprint() }

// Encode returns one vector per text (cached per text and model fingerprint); what names the
// texts in logs and progress bars. Texts are encoded shortest first so batches hold similar
// lengths (less padding), then put back in order.
func (e *Encoder) Encode(ctx context.Context, what string, texts []string) ([][]float32, error) {
	vs, hits, err := e.cache.GetOrCompute(ctx, e.Fingerprint(), texts, func(ctx context.Context, texts []string) ([][]float32, error) {
		order := make([]int, len(texts))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return len(texts[order[a]]) < len(texts[order[b]]) })
		sorted := make([]string, len(texts))
		for i, j := range order {
			sorted[i] = texts[j]
		}
		bar := ingest.ProgressBar(e.progress, len(texts), "encoding "+what)
		defer bar.Finish()
		out, err := encoder.EmbedTexts(ctx, e.tok, e.sess, sorted, e.batch, func(done int) { _ = bar.Set(done) })
		if err != nil {
			return nil, err
		}
		vs := make([][]float32, len(texts))
		for i, j := range order {
			vs[j] = out[i]
		}
		return vs, nil
	})
	if err == nil {
		slog.Info("vectors ready", "what", what, "texts", len(texts), "from_cache", hits)
	}
	return vs, err
}
