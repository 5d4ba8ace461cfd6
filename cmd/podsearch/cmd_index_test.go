package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testcorpus"
)

// hashedVector is a deterministic bag-of-words vector standing in for the encoder (which
// needs the model set up): similar texts get similar vectors.
func hashedVector(text string, d int) []float32 {
	v := make([]float32, d)
	for _, t := range bm25.Analyze(text) {
		h := fnv.New64a()
		h.Write([]byte(t))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(d)] += sign
	}
	if !vec.Normalize(v) {
		v[0] = 1
	}
	return v
}

// TestIndexCommandWithVectors builds an index from the real RSS episodes through the
// ingest pipeline and `podsearch index --vectors`, opens it, searches it, and runs
// `bench index --index` on it.
func TestIndexCommandWithVectors(t *testing.T) {
	dir, corpus, eps := testcorpus.RSS(t, ingest.Options{Seed: 1, Detect: func(string) string { return "und" }})
	const d = 32
	var flat []float32
	for _, e := range eps {
		flat = append(flat, hashedVector(e.Text, d)...)
	}
	var buf bytes.Buffer
	if err := vec.WriteFvecs(&buf, flat, d); err != nil {
		t.Fatal(err)
	}
	vecPath := filepath.Join(dir, "v.fvecs")
	if err := os.WriteFile(vecPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "idx")
	if err := runIndex([]string{"--corpus", corpus, "--vectors", vecPath, "--fingerprint", "test", "--shards", "2",
		"--nlist", "4", "-o", out}); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(out, "test", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != len(eps) || ix.Shards() != 2 {
		t.Fatalf("index holds %d episodes in %d shards, want %d in 2", ix.Len(), ix.Shards(), len(eps))
	}
	ep := eps[7]
	hits, err := ix.Search(context.Background(), hashedVector(ep.Text, d), index.SearchOptions{K: 5, NProbe: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].ID != ep.ID {
		t.Fatalf("searching an episode's own vector: top hit %v, want %s", hits, ep.ID)
	}
	kw, err := ix.SearchKeyword(ep.Title, 5, nil)
	if err != nil || len(kw) == 0 {
		t.Fatalf("keyword search for %q: %v %v", ep.Title, kw, err)
	}
	if _, err := index.Open(out, "other-model", index.OpenOptions{}); err == nil {
		t.Fatal("index opened with another model's fingerprint")
	}
	var rows bytes.Buffer
	if err := benchIndexTo(&rows, []string{"--index", out, "--holdout", "20", "--faiss=false", "--configs", "pq4x8+sq8",
		"--nlist", "4", "--nprobe", "4", "--min-seconds", "0", "--json"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(rows.String(), "\n"); n != 2 {
		t.Fatalf("bench printed %d rows, want 2:\n%s", n, rows.String())
	}
	if err := runIndex([]string{"--corpus", corpus}); err == nil {
		t.Fatal("missing -o accepted")
	}
	// --calibrate on the index alone: judged queries of this corpus, but the index's vectors
	// are hashed ones (model "test"), which no encoder makes: a clear error, nothing recorded.
	judged := filepath.Join(dir, "judged.jsonl")
	line := fmt.Sprintf(`{"qid":"q1","query":%q,"relevant":{%q:2}}`+"\n", ep.Title, ep.ID)
	if err := os.WriteFile(judged, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runIndex([]string{"-o", out, "--calibrate", judged}); err == nil || !strings.Contains(err.Error(), "calibration queries") {
		t.Fatalf("calibrating an index of hashed vectors: %v", err)
	}
	if err := runIndex([]string{"-o", out, "--calibrate", filepath.Join(dir, "missing.jsonl")}); err == nil {
		t.Fatal("calibrating on a missing queries file: no error")
	}
	ix.Close()
	if re, err := index.Open(out, "test", index.OpenOptions{}); err != nil {
		t.Fatal(err)
	} else if f := re.Searcher().Fusion(); f.Queries != 0 || f.Source != "" {
		re.Close()
		t.Fatalf("a failed calibration recorded %+v", f)
	} else {
		re.Close()
	}

	// Daily update: delete two episodes, add five new ones, compact.
	fresh := make([]ingest.Episode, 5)
	var freshVecs []float32
	for i := range fresh {
		fresh[i] = eps[20+i]
		fresh[i].ID = "new-" + fresh[i].ID
		freshVecs = append(freshVecs, hashedVector(fresh[i].Text, d)...)
	}
	updCorpus := filepath.Join(dir, "update.jsonl")
	if err := ingest.WriteCorpus(updCorpus, fresh); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := vec.WriteFvecs(&buf, freshVecs, d); err != nil {
		t.Fatal(err)
	}
	updVecs := filepath.Join(dir, "update.fvecs")
	if err := os.WriteFile(updVecs, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := []string{eps[3].ID, eps[4].ID}
	if err := runIndex([]string{"-o", out, "--delete", strings.Join(gone, ","), "--update", "--corpus", updCorpus,
		"--vectors", updVecs, "--compact"}); err != nil {
		t.Fatal(err)
	}
	ix2, err := index.Open(out, "test", index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	if want := len(eps) - 2 + 5; ix2.Len() != want || ix2.Segments() != 2 {
		t.Fatalf("after the update: %d episodes in %d segments, want %d in 2", ix2.Len(), ix2.Segments(), want)
	}
	hits, err = ix2.Search(context.Background(), hashedVector(fresh[0].Text, d), index.SearchOptions{K: 10, NProbe: 4})
	if err != nil {
		t.Fatal(err)
	}
	foundNew := false
	for _, h := range hits {
		if h.ID == gone[0] || h.ID == gone[1] {
			t.Fatalf("deleted episode %s still found", h.ID)
		}
		foundNew = foundNew || h.ID == fresh[0].ID
	}
	if !foundNew {
		t.Fatalf("added episode %s not found by its own vector", fresh[0].ID)
	}
	// The folder's vectors file grew by the added episodes, in order.
	all, vd, err := vec.ReadFvecs(filepath.Join(out, index.VectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if vd != d || len(all) != len(flat)+len(freshVecs) || !slices.Equal(all[len(flat):], freshVecs) {
		t.Fatalf("%s holds %d vectors of width %d, want %d + the %d added", index.VectorsFile, len(all)/vd, vd, len(flat)/d, len(fresh))
	}
}

// TestIndexConfig: without --config the model flags' defaults are indexbuild.DefaultConfig with
// the cosine metric (a build's default, indexbuild.DefaultOptions); --config fills the components it leaves out from them and refuses to be
// combined with them.
func TestIndexConfig(t *testing.T) {
	run := func(args ...string) (index.Config, error) {
		fs := flag.NewFlagSet("index", flag.ContinueOnError)
		config := fs.String("config", "", "")
		metric := fs.String("metric", "cosine", "")
		nlist, m, bits := fs.Int("nlist", 0, ""), fs.Int("m", 0, ""), fs.Int("bits", 4, "")
		rbits, rbytes := fs.Int("rerank-bits", 8, ""), fs.Int("rerank-bytes", -1, "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return indexConfig(fs, *config, *metric, *nlist, *m, *bits, *rbits, *rbytes)
	}
	def, err := index.ParseConfig(indexbuild.DefaultConfig + ",cosine")
	if err != nil {
		t.Fatal(err)
	}
	if got := indexbuild.DefaultOptions().Config; got != def {
		t.Fatalf("indexbuild.DefaultOptions().Config %+v, want the flags' default %+v", got, def)
	}
	for _, tc := range []struct {
		args []string
		want index.Config
	}{
		{nil, def},
		{[]string{"--config", indexbuild.DefaultConfig}, def},
		{[]string{"--config", "IVF100,SQ4"}, index.Config{NList: 100, Bits: 4, Rerank: index.RerankSQ4, Metric: index.Cosine}},
		{[]string{"--config", "IVF270,PQ128x4fs,TQ224,l2"}, index.Config{NList: 270, M: 128, Bits: 4, Rerank: index.RerankTQ, RerankBytes: 224, Metric: index.L2}},
		{[]string{"--rerank-bytes", "0"}, index.Config{Bits: 4, Rerank: index.RerankSQ8, Metric: index.Cosine}},
		{[]string{"--rerank-bytes", "0", "--rerank-bits", "-1", "--bits", "8", "--nlist", "9", "--metric", "ip"}, index.Config{NList: 9, Bits: 8, Rerank: index.RerankNone, Metric: index.InnerProduct}},
		{[]string{"--rerank-bytes", "100"}, index.Config{Bits: 4, Rerank: index.RerankTQ, RerankBytes: 100, Metric: index.Cosine}},
	} {
		got, err := run(tc.args...)
		if err != nil || got != tc.want {
			t.Fatalf("%v: %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, args := range [][]string{
		{"--config", "IVF100", "--nlist", "100"},
		{"--config", "SQ8", "--rerank-bits", "8"},
		{"--config", "IVF,PQ,SQ8,SQ4"},
		{"--rerank-bits", "6"},
		{"--metric", "hamming"},
	} {
		if c, err := run(args...); err == nil {
			t.Fatalf("%v accepted: %+v", args, c)
		}
	}
}
