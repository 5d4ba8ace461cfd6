package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestPoolSplitAndFusionRows runs the judging workflow on a small slice of SciFact with the
// real encoder: `pool` pools unjudged queries and writes the candidate map, a judged file made
// from it is split by `pool --split` into stratified halves with their title overlap, and
// `eval --fusion` adds a row per normalisation and weight.
func TestPoolSplitAndFusionRows(t *testing.T) {
	if _, err := os.Stat(assets.ModelPath()); err != nil {
		testenv.SkipOrFailModel(t, "the encoder model")
	}
	dir := t.TempDir()
	beir := filepath.Join(dir, "beir")
	docs := miniSciFact(t, beir)
	corpus := filepath.Join(beir, "corpus.jsonl")
	cache := filepath.Join(dir, "cache")
	drafts := filepath.Join(dir, "drafts.jsonl")
	var lines []string
	for i, d := range docs[:6] {
		lang, kind := "en", []string{"need", "place"}[i%2]
		lines = append(lines, fmt.Sprintf(`{"qid":"q%d","query":%q,"lang":%q,"kind":%q}`, i, d["title"], lang, kind))
	}
	if err := os.WriteFile(drafts, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mapPath := filepath.Join(dir, "map.json")
	if err := runPool([]string{"--corpus", corpus, "--queries", drafts, "--depth", "3", "--cache", cache, "--map", mapPath}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(mapPath)
	if err != nil {
		t.Fatal(err)
	}
	var pooled map[string][]string
	if err := json.Unmarshal(b, &pooled); err != nil {
		t.Fatal(err)
	}
	var judged []string
	for i, d := range docs[:6] {
		cands := pooled[fmt.Sprintf("q%d", i)]
		if len(cands) < 3 || len(cands) > 9 { // 3 systems (no adapter) x depth 3, merged
			t.Fatalf("q%d pooled %d candidates, want 3 to 9", i, len(cands))
		}
		found := false
		for _, id := range cands {
			found = found || id == d["_id"]
		}
		if !found {
			t.Errorf("q%d (its own title) did not pool its paper %s: %v", i, d["_id"], cands)
		}
		judged = append(judged, strings.Replace(lines[i], "}", fmt.Sprintf(`,"relevant":{%q:2}}`, d["_id"]), 1))
	}
	judgedPath := filepath.Join(dir, "judged.jsonl")
	if err := os.WriteFile(judgedPath, []byte(strings.Join(judged, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev, test := filepath.Join(dir, "dev.jsonl"), filepath.Join(dir, "test.jsonl")
	if err := runPool([]string{"--corpus", corpus, "--queries", judgedPath, "--split", dev + "," + test}); err != nil {
		t.Fatal(err)
	}
	d, err := evaluate.ReadQueries(dev)
	if err != nil {
		t.Fatal(err)
	}
	te, err := evaluate.ReadQueries(test)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 3 || len(te) != 3 {
		t.Fatalf("split %d/%d, want 3/3", len(d), len(te))
	}
	for _, q := range append(d, te...) {
		if q.TitleOverlap == nil || *q.TitleOverlap != 1 { // each query is its paper's title
			t.Errorf("query %s: title_overlap %v, want 1", q.ID, q.TitleOverlap)
		}
	}

	if err := runEval([]string{"--corpus", corpus, "--queries", dev, "--cache", cache, "--fusion", "zscore,rrf",
		"--fusion-weights", "0.5", "-o", filepath.Join(dir, "f"), "--json"}); err != nil {
		t.Fatal(err)
	}
	sec := readReport(t, filepath.Join(dir, "f.json"))["sections"].(map[string]any)["queries"].(map[string]any)
	for _, row := range []string{"fuse zscore w0.50 base", "fuse rrf w0.50 base"} {
		checkMetrics(t, row, sec[row], "ndcg@10", "recall@30")
	}

	for _, bad := range [][]string{
		{"--corpus", corpus},
		{"--corpus", corpus, "--queries", drafts, "--split", dev},
		{"--corpus", corpus, "--queries", drafts, "--depth", "0"},
	} {
		if err := runPool(bad); !errors.Is(err, errUsage) {
			t.Errorf("pool %v: %v, want a usage error", bad, err)
		}
	}
	if err := runEval([]string{"--corpus", corpus, "--queries", dev, "--fusion", "bogus"}); !errors.Is(err, errUsage) {
		t.Errorf("eval --fusion bogus: %v, want a usage error", err)
	}
	if err := runEval([]string{"--corpus", corpus, "--queries", dev, "--fusion", "rrf", "--fusion-weights", "2"}); !errors.Is(err, errUsage) {
		t.Errorf("eval --fusion-weights 2: %v, want a usage error", err)
	}
}
