package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/edge/node"
)

// ReadJSONLEpisodes reads the first n records (all when n <= 0) of a JSON Lines episode
// file in the Taddy layout (ingest.DefaultJSONLMapping) and cleans them as `podsearch
// ingest` does, keeping the file's order.
func ReadJSONLEpisodes(path string, n int) ([]ingest.Episode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for lines := 0; sc.Scan() && (n <= 0 || lines < n); lines++ {
		buf.Write(sc.Bytes())
		buf.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err := ingest.ReadJSONL(&buf, "episodes", ingest.DefaultJSONLMapping)
	if err != nil {
		return nil, err
	}
	res, err := ingest.Build([]*ingest.Batch{b}, ingest.Options{NoShuffle: true})
	if err != nil {
		return nil, err
	}
	return res.Episodes, nil
}

// BuildIndex embeds the episodes' texts with emb (tokenized by tok) and writes an index of
// the given number of shards into dir, as `podsearch index` does, with a progress bar on
// progress when it is not nil. It returns the model fingerprint the index was built with.
func BuildIndex(ctx context.Context, dir string, eps []ingest.Episode, shards int, tok tokenizer.Tokenizer, emb encoder.Embedder, progress io.Writer) (string, error) {
	if len(eps) == 0 {
		return "", fmt.Errorf("no episodes to index")
	}
	docs := make([]index.Doc, len(eps))
	texts := make([]string, len(eps))
	for i, e := range eps {
		docs[i], _ = ingest.IndexDoc(e) // a bad date leaves the episode undated
		texts[i] = e.Text
	}
	var onBatch func(int)
	if progress != nil {
		bar := ingest.ProgressBar(progress, len(texts), "embedding")
		defer bar.Finish()
		last := 0
		onBatch = func(done int) { _ = bar.Add(done - last); last = done }
	}
	vecs, err := encoder.EmbedTexts(ctx, tok, emb, texts, 32, onBatch)
	if err != nil {
		return "", err
	}
	flat := make([]float32, 0, len(vecs)*encoder.Dim)
	for _, v := range vecs {
		flat = append(flat, v...)
	}
	model, err := index.Train(flat, encoder.Dim, index.Config{Seed: 1, Fingerprint: emb.Fingerprint()})
	if err != nil {
		return "", err
	}
	if err := index.Create(dir, model, shards, docs, flat); err != nil {
		return "", err
	}
	return emb.Fingerprint(), nil
}

// Descriptions maps episode ids to their descriptions (cut to 2,000 bytes), for result
// snippets, as serve-edge -corpus does (node.Descriptions).
func Descriptions(eps []ingest.Episode) map[string]string { return node.Descriptions(eps) }
