package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestIngestAndPairsCommands runs `podsearch ingest` on the Kaggle fixture plus the 8 real
// feeds, then `podsearch pairs` on the corpus it wrote.
func TestIngestAndPairsCommands(t *testing.T) {
	feeds := testenv.Shared(t, "data/podcasts/rss_feeds/xml")
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.jsonl")
	kaggle := filepath.Join(testenv.Root(t), "core", "ingest", "testdata", "kaggle")
	if err := runIngest([]string{"--kaggle", kaggle, "--rss", feeds, "-o", corpus, "--progress=false"}); err != nil {
		t.Fatal(err)
	}
	eps, err := ingest.ReadCorpus(corpus)
	if err != nil {
		t.Fatal(err)
	}
	rejects, err := ingest.ReadLines[ingest.Reject](filepath.Join(dir, "corpus.rejects.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Fixture: 9 episode rows, 4 written; feeds: 380 items, some exact duplicates dropped.
	episodeRejects := 0
	for _, r := range rejects {
		if r.Kind == ingest.KindEpisode {
			episodeRejects++
		}
	}
	if len(eps)+episodeRejects != 9+380 {
		t.Fatalf("%d episodes + %d episode rejects, want 389", len(eps), episodeRejects)
	}
	for _, e := range eps {
		if e.ID == "" || e.ShowTitle == "" || e.Title == "" || e.Text == "" || e.Language == "" {
			t.Fatalf("incomplete episode %+v", e)
		}
	}
	out := filepath.Join(dir, "pairs")
	if err := runPairs([]string{"--corpus", corpus, "-o", out, "--progress=false"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	total := 0
	for _, name := range []string{"train", "eval", "test"} {
		ps, err := pairs.ReadPairs(filepath.Join(out, name+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		total += len(ps)
		for _, p := range ps {
			if s, ok := seen[p.EpisodeID]; ok && s != name {
				t.Fatalf("episode %s in %s and %s", p.EpisodeID, s, name)
			}
			seen[p.EpisodeID] = name
		}
	}
	if total == 0 || len(seen) > len(eps) {
		t.Fatalf("%d pairs over %d episodes from a %d-episode corpus", total, len(seen), len(eps))
	}
	// The wordnet method, with package wordnet's fixture (a few real lemmas) as the database;
	// stats.json reports the word overlap per method. Without WordNet: a clear error.
	wn := filepath.Join(dir, "pairs-wordnet")
	withWordNet := []string{"--corpus", corpus, "-o", wn, "--progress=false", "--methods", "title,inverse-cloze,tfidf,wordnet"}
	if err := runPairs(append(withWordNet, "--wordnet", t.TempDir())); err == nil || !strings.Contains(err.Error(), "podsearch setup") {
		t.Fatalf("wordnet without a database: %v", err)
	}
	if err := runPairs(append(withWordNet, "--wordnet", filepath.Join("..", "..", "core", "wordnet", "testdata", "dict"))); err != nil {
		t.Fatal(err)
	}
	stats, err := os.ReadFile(filepath.Join(wn, "stats.json"))
	if err != nil || !strings.Contains(string(stats), `"query_word_overlap"`) || !strings.Contains(string(stats), `"wordnet"`) {
		t.Fatalf("stats.json: %s, %v", stats, err)
	}
	if err := runIngest([]string{"-o", corpus}); err == nil {
		t.Fatal("want a usage error without inputs")
	}
}

// TestIngestDemo: the demo's ingest (ingestDemo) writes what `podsearch ingest --demo` writes.
func TestIngestDemo(t *testing.T) {
	dir := t.TempDir()
	viaFlags := filepath.Join(dir, "flags.jsonl")
	if err := runIngest([]string{"--demo", "-o", viaFlags, "--progress=false"}); err != nil {
		t.Fatal(err)
	}
	direct, rejects := filepath.Join(dir, "direct.jsonl"), filepath.Join(dir, "direct.rejects.jsonl")
	if err := ingestDemo(direct, rejects); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{viaFlags, direct}, {filepath.Join(dir, "flags.rejects.jsonl"), rejects}} {
		a, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("%s (%d bytes) and %s (%d bytes) differ", p[0], len(a), p[1], len(b))
		}
	}
}
