package main

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
)

// TestEdgeNodeOptions: the defaults of serve-edge (what the demo's edge runs with) give a
// node with the wasm tokenizer and scan, snippets from the corpus, and the in-process cache
// unless REDIS_URL is set; secrets not given come from the environment; -index is required.
func TestEdgeNodeOptions(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.jsonl")
	if err := ingest.WriteCorpus(corpus, []ingest.Episode{{ID: "a", Title: "A", Description: "about a", Text: "A. about a", Language: "en"}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_URL", "")
	t.Setenv("PODSEARCH_ENCODER_TOKEN", "from-env")
	c := defaultEdgeConfig()
	if _, err := c.nodeOptions(slog.Default()); err == nil {
		t.Fatal("no -index accepted")
	}
	c.index, c.corpus, c.encoders = dir, corpus, "127.0.0.1:1"
	o, err := c.nodeOptions(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if o.Tokenizer != "wasm" || o.Index.Backend == nil || o.RedisURL != "" || o.CacheBytes != 64<<20 ||
		len(o.Encoders) != 1 || o.EncoderToken != "from-env" || o.Index.Dir != dir || o.Edge.DefaultK != 10 {
		t.Fatalf("default node options %+v", o)
	}
	if len(o.Index.Descriptions) != 1 {
		t.Fatalf("descriptions of %d episodes, want 1", len(o.Index.Descriptions))
	}
	t.Setenv("REDIS_URL", "redis://127.0.0.1:6379")
	if o, err = c.nodeOptions(slog.Default()); err != nil || o.RedisURL != "redis://127.0.0.1:6379" {
		t.Fatalf("REDIS_URL not taken: %q, %v", o.RedisURL, err)
	}
}
