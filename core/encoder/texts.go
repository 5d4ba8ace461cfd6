package encoder

import (
	"context"

	"github.com/podsearch/podsearch/core/tokenizer"
)

// EmbedTexts tokenizes texts with tok and embeds them with emb in batches of at most
// batchSize (0 means all at once), calling progress (when non-nil) after each batch with
// the number of texts done.
func EmbedTexts(ctx context.Context, tok tokenizer.Tokenizer, emb Embedder, texts []string, batchSize int, progress func(done int)) ([][]float32, error) {
	if batchSize <= 0 {
		batchSize = len(texts)
	}
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += batchSize {
		end := min(start+batchSize, len(texts))
		ids := make([][]int32, 0, end-start)
		for _, t := range texts[start:end] {
			ids = append(ids, Clip(tok.Encode(t)))
		}
		vecs, err := emb.Embed(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
		if progress != nil {
			progress(end)
		}
	}
	return out, nil
}

// Clip returns at most the first MaxTokens ids: what the model reads.
func Clip(ids []int32) []int32 {
	if len(ids) > MaxTokens {
		return ids[:MaxTokens]
	}
	return ids
}
