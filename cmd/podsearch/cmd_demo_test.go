package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate/vcache"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testcorpus"
)

// TestEnsureDemoAdapter trains the demo's query adapter on the real RSS episodes with the real
// encoder (pairs, then train against the corpus texts, as README's commands did), then checks
// that a second run reuses it untouched and that another corpus gets its own adapter file.
func TestEnsureDemoAdapter(t *testing.T) {
	testcorpus.RequireModel(t)
	dir, corpus, eps := testcorpus.RSS(t, ingest.Options{Seed: 1})
	sess, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	fp := sess.Fingerprint()
	sess.Close()

	ctx := context.Background()
	path, err := ensureDemoAdapter(ctx, dir, corpus, "", fp, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.LoadFor(path, fp)
	if err != nil {
		t.Fatalf("trained adapter does not load for the base model: %v", err)
	}
	if a.BothSides || a.Kind != adapter.Linear {
		t.Fatalf("adapter %s, both sides %v: want train's default (a linear query-only adapter)", a.Kind, a.BothSides)
	}
	before, ok1 := a.Notes["train_loss_before"].(float64)
	after, ok2 := a.Notes["train_loss_after"].(float64)
	if !ok1 || !ok2 || after >= before {
		t.Fatalf("training loss %v -> %v: training did not lower it", a.Notes["train_loss_before"], a.Notes["train_loss_after"])
	}
	cfp, err := fileSHA256(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "query-"+cfp[:16]+".adapter"); path != want {
		t.Fatalf("adapter at %s, want %s (keyed by the corpus fingerprint)", path, want)
	}
	for _, name := range []string{"train.jsonl", "eval.jsonl", "test.jsonl", "stats.json"} {
		if !fileExists(filepath.Join(dir, "pairs-"+cfp[:16], name)) {
			t.Errorf("pairs file %s missing", name)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	// Second run: the same file, not rewritten.
	again, err := ensureDemoAdapter(ctx, dir, corpus, "", fp, false)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if again != path || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("second run: %s (modified %v), want %s reused (modified %v)", again, st2.ModTime(), path, st.ModTime())
	}

	// Another corpus (one episode fewer) is another key.
	other := filepath.Join(dir, "other.jsonl")
	if err := ingest.WriteCorpus(other, eps[1:]); err != nil {
		t.Fatal(err)
	}
	ofp, err := fileSHA256(other)
	if err != nil {
		t.Fatal(err)
	}
	if ofp == cfp {
		t.Fatalf("two corpora map to one adapter file %s", path)
	}
}

// seedVectorCache puts an index's episode vectors into the vector cache keyed by the
// episodes' texts: a later lookup of those texts computes nothing and gets those vectors.
func TestSeedVectorCache(t *testing.T) {
	dir := t.TempDir()
	eps := []ingest.Episode{
		{ID: "a", Title: "A", Text: "first episode text", Language: "en"},
		{ID: "b", Title: "B", Text: "second episode text", Language: "en"},
		{ID: "c", Title: "C", Text: "first episode text", Language: "en"}, // same text as a
	}
	corpus := filepath.Join(dir, "corpus.jsonl")
	if err := ingest.WriteCorpus(corpus, eps); err != nil {
		t.Fatal(err)
	}
	flat := make([]float32, len(eps)*encoder.Dim)
	for i := range eps {
		flat[i*encoder.Dim+i] = 1
	}
	var buf bytes.Buffer
	if err := vec.WriteFvecs(&buf, flat, encoder.Dim); err != nil {
		t.Fatal(err)
	}
	vectors := filepath.Join(dir, index.VectorsFile)
	if err := os.WriteFile(vectors, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	ctx := context.Background()
	if err := seedVectorCache(ctx, cacheDir, "fp", corpus, vectors); err != nil {
		t.Fatal(err)
	}
	c := &vcache.Cache{Dir: cacheDir}
	vs, hits, err := c.GetOrCompute(ctx, "fp", []string{"second episode text", "first episode text"},
		func(context.Context, []string) ([][]float32, error) { return nil, errors.New("encoded again") })
	if err != nil || hits != 2 {
		t.Fatalf("lookup after seeding: %d hits, %v", hits, err)
	}
	if vs[0][1] != 1 || vs[1][0] != 1 {
		t.Fatalf("seeded vectors are not the index's: %v, %v", vs[0][:3], vs[1][:3])
	}
	// A vectors file that does not match the corpus is refused.
	if err := os.WriteFile(vectors, buf.Bytes()[:len(buf.Bytes())/3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := seedVectorCache(ctx, filepath.Join(dir, "cache2"), "fp", corpus, vectors); err == nil {
		t.Fatal("a vectors file with fewer vectors than episodes seeded the cache")
	}
}
