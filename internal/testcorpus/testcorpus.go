// Package testcorpus gives tests a small real corpus file: the 380 episodes of the 8 real RSS
// feeds in the shared data folder (../shared/data/podcasts/rss_feeds), passed through the
// ingest pipeline as `podsearch ingest` does, and the check that the model set up by
// `podsearch setup` is present. Test plumbing only.
package testcorpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/internal/testenv"
)

// RequireModel skips tb (or fails it under PODSEARCH_REQUIRE_MODEL=1) unless the vocabulary,
// the ONNX model and ONNX Runtime set up by `podsearch setup` are all present.
func RequireModel(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{assets.VocabPath(), assets.ModelPath(), assets.RuntimeLibraryPath()} {
		if _, err := os.Stat(p); err != nil {
			testenv.SkipOrFailModel(tb, p)
		}
	}
}

// RSS builds the real RSS episodes with opts (ingest.Build), writes them as a corpus file in
// a fresh temporary folder, and returns the folder, the corpus path and the episodes. It
// skips tb (or fails it under PODSEARCH_REQUIRE_SHARED=1) without the shared data.
func RSS(tb testing.TB, opts ingest.Options) (dir, corpus string, eps []ingest.Episode) {
	tb.Helper()
	f, err := os.Open(testenv.Shared(tb, "data/podcasts/rss_feeds/episodes.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	batch, err := ingest.ReadJSONL(f, "episodes.jsonl", ingest.DefaultJSONLMapping)
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	res, err := ingest.Build([]*ingest.Batch{batch}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	dir = tb.TempDir()
	corpus = filepath.Join(dir, "corpus.jsonl")
	if err := ingest.WriteCorpus(corpus, res.Episodes); err != nil {
		tb.Fatal(err)
	}
	return dir, corpus, res.Episodes
}
