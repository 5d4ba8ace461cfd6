package encoder

import (
	"context"
	"sort"

	"github.com/podsearch/podsearch/core/tokenizer"
)

// EmbedTexts tokenizes texts with tok and embeds them with emb in batches of at most
// batchSize (0 means all at once), calling progress (when non-nil) after each batch with
// the number of texts done. Texts are batched in order of token count, so a batch pads
// little; the vectors come back in the order of texts.
func EmbedTexts(ctx context.Context, tok tokenizer.Tokenizer, emb Embedder, texts []string, batchSize int, progress func(done int)) ([][]float32, error) {
	if batchSize <= 0 {
		batchSize = len(texts)
	}
	ids := make([][]int32, len(texts))
	order := make([]int, len(texts))
	for i, t := range texts {
		ids[i] = Clip(tok.Encode(t))
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(ids[order[a]]) < len(ids[order[b]]) })
	out := make([][]float32, len(texts))
	batch := make([][]int32, 0, batchSize)
	for start := 0; start < len(order); start += batchSize {
		end := min(start+batchSize, len(order))
		batch = batch[:0]
		for _, i := range order[start:end] {
			batch = append(batch, ids[i])
		}
		vecs, err := emb.Embed(ctx, batch)
		if err != nil {
			return nil, err
		}
		for j, i := range order[start:end] {
			out[i] = vecs[j]
		}
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
