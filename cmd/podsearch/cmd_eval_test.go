package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/internal/testenv"
)

// miniSciFact writes a small BEIR folder: the first 8 test queries of SciFact, their judged
// abstracts and 30 more, so the commands run end to end in a few seconds.
func miniSciFact(t *testing.T, dir string) (docs []map[string]string) {
	t.Helper()
	src := testenv.Shared(t, "data/beir/scifact")
	qrels, err := os.ReadFile(filepath.Join(src, "qrels", "test.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(qrels)), "\n")
	keepQ, keepD := map[string]bool{}, map[string]bool{}
	var qrelOut []string
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(keepQ) == 8 && !keepQ[f[0]] {
			continue
		}
		keepQ[f[0]], keepD[f[1]] = true, true
		qrelOut = append(qrelOut, l)
	}
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, ls []string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(ls, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("qrels/test.tsv", append([]string{lines[0]}, qrelOut...))
	pick := func(file string, keep func(id string) bool) (out []string) {
		f, err := os.Open(filepath.Join(src, file))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var d map[string]any
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			if keep(fmt.Sprint(d["_id"])) {
				out = append(out, sc.Text())
			}
		}
		return out
	}
	extra := 0
	corpus := pick("corpus.jsonl", func(id string) bool {
		if keepD[id] {
			return true
		}
		extra++
		return extra <= 30
	})
	write("corpus.jsonl", corpus)
	write("queries.jsonl", pick("queries.jsonl", func(id string) bool { return keepQ[id] }))
	for _, l := range corpus {
		var d map[string]string
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return docs
}

func readReport(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func checkMetrics(t *testing.T, what string, m any, keys ...string) {
	t.Helper()
	mm, ok := m.(map[string]any)
	if !ok {
		t.Fatalf("%s: no metrics object in %v", what, m)
	}
	for _, k := range keys {
		v, ok := mm[k].(float64)
		if !ok || v < 0 || v > 1 {
			t.Errorf("%s: %s = %v", what, k, mm[k])
		}
	}
}

// TestTrainAndEvalCommands runs `podsearch eval --beir --adapt`, `podsearch train` and
// `podsearch eval --pairs / --queries` with the real encoder on a small slice of SciFact.
func TestTrainAndEvalCommands(t *testing.T) {
	if _, err := os.Stat(assets.ModelPath()); err != nil {
		testenv.SkipOrFailModel(t, "the encoder model")
	}
	dir := t.TempDir()
	beir := filepath.Join(dir, "beir")
	docs := miniSciFact(t, beir)
	cache := filepath.Join(dir, "cache")

	// BEIR end to end, adapting to the corpus first.
	if err := runEval([]string{"--beir", beir, "--adapt", "--epochs", "2", "--batch-size", "16", "--cache", cache,
		"--curve-k", "20", "-o", filepath.Join(dir, "sf"), "--json"}); err != nil {
		t.Fatal(err)
	}
	r := readReport(t, filepath.Join(dir, "sf.json"))
	checkMetrics(t, "beir top level", r, "ndcg@10", "recall@100", "mrr@10")
	checkMetrics(t, "beir base", r["base"], "ndcg@10")
	checkMetrics(t, "beir tuned", r["tuned"], "ndcg@10")
	if r["tuned_fingerprint"] == r["base_fingerprint"] || r["tuned_fingerprint"] == nil {
		t.Errorf("tuned fingerprint %v, base %v", r["tuned_fingerprint"], r["base_fingerprint"])
	}
	if _, err := os.Stat(filepath.Join(dir, "sf-recall.png")); err != nil {
		t.Error(err)
	}

	// A pairs folder in the pairs command's format: title -> abstract.
	pdir := filepath.Join(dir, "pairs")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ps []pairs.Pair
	for _, d := range docs {
		ps = append(ps, pairs.Pair{Query: d["title"], EpisodeID: d["_id"], Text: d["text"], Method: "title"})
	}
	for name, part := range map[string][]pairs.Pair{"train.jsonl": ps[:len(ps)-16], "eval.jsonl": ps[len(ps)-16 : len(ps)-8], "test.jsonl": ps[len(ps)-8:]} {
		if err := pairs.WritePairs(filepath.Join(pdir, name), part); err != nil {
			t.Fatal(err)
		}
	}
	adapterPath := filepath.Join(dir, "title.adapter")
	if err := runTrain([]string{"--pairs", pdir, "-o", adapterPath, "--kind", "lowrank", "--rank", "16",
		"--epochs", "3", "--batch-size", "8", "--cache", cache}); err != nil {
		t.Fatal(err)
	}
	a, err := adapter.Load(adapterPath)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != adapter.LowRank || a.BaseFingerprint != r["base_fingerprint"] {
		t.Errorf("adapter %s trained on %s, encoder is %v", a.Kind, a.BaseFingerprint, r["base_fingerprint"])
	}
	if before, after := a.Notes["train_loss_before"].(float64), a.Notes["train_loss_after"].(float64); !(after < before) {
		t.Errorf("training loss %v -> %v", before, after)
	}

	// Pairs and a queries file against the corpus, with that adapter.
	qfile := filepath.Join(dir, "queries.jsonl")
	q := `{"qid": "t1", "query": "` + strings.ReplaceAll(docs[0]["title"], `"`, `'`) + `", "relevant": {"` + docs[0]["_id"] + `": 2}}` + "\n"
	if err := os.WriteFile(qfile, []byte(q), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runEval([]string{"--pairs", pdir, "--corpus", filepath.Join(beir, "corpus.jsonl"), "--queries", qfile,
		"--adapter", adapterPath, "--cache", cache, "-o", filepath.Join(dir, "p"), "--json"}); err != nil {
		t.Fatal(err)
	}
	r = readReport(t, filepath.Join(dir, "p.json"))
	sec := r["sections"].(map[string]any)
	checkMetrics(t, "in-batch", sec["in-batch"].(map[string]any)["tuned"], "mrr@5", "recall@1")
	checkMetrics(t, "test", sec["test"].(map[string]any)["base"], "recall@1", "recall@10", "recall@30", "mrr@30")
	checkMetrics(t, "queries", sec["queries"].(map[string]any)["tuned"], "recall@10", "recall@30", "mrr@30", "ndcg@10")
	if sec["test"].(map[string]any)["bm25"] == nil {
		t.Error("no BM25 row")
	}
	md, err := os.ReadFile(filepath.Join(dir, "p.md"))
	if err != nil || !strings.Contains(string(md), "### in-batch") {
		t.Errorf("markdown report: %v", err)
	}

	// An adapter of another model is refused.
	a.BaseFingerprint = "another-model"
	other := filepath.Join(dir, "other.adapter")
	if err := a.Save(other); err != nil {
		t.Fatal(err)
	}
	if err := runEval([]string{"--pairs", pdir, "--adapter", other, "--cache", cache, "-o", filepath.Join(dir, "x")}); err == nil {
		t.Error("adapter of another model accepted")
	}
}

// TestEvalBEIREmptyDocuments runs `podsearch eval --beir --json` with the real encoder on a
// tiny BEIR folder holding documents without text (as Cranfield does) and no -o: it
// evaluates (the empty documents left out and counted in the notes), prints the report on
// stdout and writes no file into the working directory.
func TestEvalBEIREmptyDocuments(t *testing.T) {
	if _, err := os.Stat(assets.ModelPath()); err != nil {
		testenv.SkipOrFailModel(t, "the encoder model")
	}
	beir, err := filepath.Abs(filepath.Join("..", "..", "core", "evaluate", "testdata", "beir-empty"))
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	wd := t.TempDir()
	t.Chdir(wd)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	err = runEval([]string{"--beir", beir, "--cache", cache, "--curve-k", "5", "--json"})
	os.Stdout = stdout
	w.Close()
	out := <-done
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Notes []string `json:"notes"`
		Rows  []struct {
			Retrieval string             `json:"retrieval"`
			Metrics   map[string]float64 `json:"metrics"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, out)
	}
	kinds := map[string]bool{}
	for _, row := range rep.Rows {
		kinds[row.Retrieval] = true
		if v, ok := row.Metrics["ndcg@10"]; !ok || v < 0 || v > 1 {
			t.Errorf("%s row: ndcg@10 = %v", row.Retrieval, row.Metrics["ndcg@10"])
		}
	}
	if !kinds["dense"] || !kinds["bm25"] {
		t.Errorf("rows %v: want dense and bm25", kinds)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "2 documents without text left out (ids 3, 5)") }) {
		t.Errorf("notes %q do not count the empty documents", rep.Notes)
	}
	if ents, err := os.ReadDir(wd); err != nil || len(ents) != 0 {
		t.Errorf("eval without -o wrote into the working directory: %v %v", ents, err)
	}
}
