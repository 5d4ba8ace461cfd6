package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/core/tower"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// TestTrainFullModeAndEval trains the query tower for two steps on SciFact title pairs,
// checks the written file is a tower of the base model, evaluates with it (tuned rows come
// from the tower), does the same for both towers and for `eval --adapt --adapt-mode full`,
// and checks that a tower of another base model is refused.
func TestTrainFullModeAndEval(t *testing.T) {
	if _, err := os.Stat(assets.ModelPath()); err != nil {
		testenv.SkipOrFailModel(t, "the encoder model")
	}
	if _, err := os.Stat(filepath.Join(tower.WeightsDir(), "model.json")); err != nil {
		testenv.SkipOrFailModel(t, "the USE-lite TF.js weights")
	}
	dir := t.TempDir()
	beir := filepath.Join(dir, "beir")
	docs := miniSciFact(t, beir)
	cache := filepath.Join(dir, "cache")
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
	out := filepath.Join(dir, "q.tower")
	if err := runTrain([]string{"--mode", "full", "--pairs", pdir, "-o", out, "--batch-size", "8", "--max-steps", "2",
		"--eval-every", "1", "--lr", "1e-4", "--cache", cache}); err != nil {
		t.Fatal(err)
	}
	a, err := adapter.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != adapter.Tower || a.Notes["steps"] != 2.0 || a.Fingerprint() == a.BaseFingerprint {
		t.Fatalf("tower %s, notes %v", a.Kind, a.Notes)
	}
	if _, err := os.Stat(out + ".ckpt"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left behind after a finished run: %v", err)
	}
	if err := runEval([]string{"--pairs", pdir, "--adapter", out, "--cache", cache, "-o", filepath.Join(dir, "p"), "--json"}); err != nil {
		t.Fatal(err)
	}
	r := readReport(t, filepath.Join(dir, "p.json"))
	if r["tuned_fingerprint"] != a.Fingerprint() || r["base_fingerprint"] != a.BaseFingerprint {
		t.Errorf("report fingerprints %v / %v, tower %s / %s", r["tuned_fingerprint"], r["base_fingerprint"], a.Fingerprint(), a.BaseFingerprint)
	}
	sec := r["sections"].(map[string]any)
	checkMetrics(t, "in-batch", sec["in-batch"].(map[string]any)["tuned"], "mrr@5", "recall@1")
	checkMetrics(t, "test", sec["test"].(map[string]any)["tuned"], "recall@1", "recall@30", "mrr@30")

	// The query sample of an index built for the tower (`index --adapter`, `demo --adapter`)
	// is encoded by the tower itself: the vectors the encoder service serves for it.
	texts := []string{"eat better during xmas holidays", "how volcanoes form"}
	got, d, err := indexbuild.EncodeQueries(context.Background(), texts, out, a.Fingerprint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	served, err := adapter.Wrap(testmodel.Session(t), a, adapter.Query)
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	tok := testmodel.Tokenizer(t)
	want, err := served.Embed(context.Background(), [][]int32{tok.Encode(texts[0]), tok.Encode(texts[1])})
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if c := vec.Dot(vec.Row(got, d, i), want[i]); c < 0.9999 {
			t.Errorf("query %d: sample vector vs served tower vector cosine %.5f", i, c)
		}
	}

	// Both towers (--both-sides): the tuned encoder embeds episodes too, so its evaluation
	// encodes the documents with it and an index built with it holds its vectors.
	both := filepath.Join(dir, "both.tower")
	if err := runTrain([]string{"--mode", "full", "--both-sides", "--pairs", pdir, "-o", both, "--batch-size", "8", "--max-steps", "1",
		"--eval-every", "1", "--lr", "1e-4", "--cache", cache}); err != nil {
		t.Fatal(err)
	}
	ba, err := adapter.LoadFor(both, a.BaseFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if !ba.BothSides || ba.DocFingerprint() != ba.Fingerprint() || ba.Notes["both_sides"] != true {
		t.Fatalf("both-towers file: both %v, notes %v", ba.BothSides, ba.Notes)
	}
	if err := runEval([]string{"--pairs", pdir, "--adapter", both, "--cache", cache, "-o", filepath.Join(dir, "b"), "--json"}); err != nil {
		t.Fatal(err)
	}
	br := readReport(t, filepath.Join(dir, "b.json"))
	checkMetrics(t, "both towers test", br["sections"].(map[string]any)["test"].(map[string]any)["tuned"], "recall@1", "recall@30")
	if !strings.Contains(fmt.Sprint(br["notes"]), "embeds the queries and the episodes") {
		t.Errorf("report notes %v do not say the episodes were re-encoded", br["notes"])
	}
	docVecs, fp, err := corpusembed.Embed(context.Background(), texts, corpusembed.Options{Adapter: both})
	if err != nil {
		t.Fatal(err)
	}
	servedDocs, err := adapter.Wrap(testmodel.Session(t), ba, adapter.Doc)
	if err != nil {
		t.Fatal(err)
	}
	defer servedDocs.Close()
	wantDocs, err := servedDocs.Embed(context.Background(), [][]int32{tok.Encode(texts[0]), tok.Encode(texts[1])})
	if err != nil {
		t.Fatal(err)
	}
	baseDocs, err := testmodel.Session(t).Embed(context.Background(), [][]int32{tok.Encode(texts[0])})
	if err != nil {
		t.Fatal(err)
	}
	if fp != ba.Fingerprint() || vec.Dot(vec.Row(docVecs, d, 0), wantDocs[0]) < 0.9999 || vec.Dot(wantDocs[0], baseDocs[0]) > 0.999999 {
		t.Errorf("index vectors of the both-towers model: fingerprint %s (want %s), cosine to the tuned encoder %.5f, to the base %.6f",
			fp, ba.Fingerprint(), vec.Dot(vec.Row(docVecs, d, 0), wantDocs[0]), vec.Dot(wantDocs[0], baseDocs[0]))
	}

	// eval --adapt --adapt-mode full: the query tower fine-tuned on the BEIR corpus's own
	// pseudo-queries gives the tuned rows.
	if err := runEval([]string{"--beir", beir, "--adapt", "--adapt-mode", "full", "--max-steps", "1", "--batch-size", "8",
		"--lr", "1e-4", "--cache", cache, "--keyword=false", "-o", filepath.Join(dir, "sf-tower"), "--json"}); err != nil {
		t.Fatal(err)
	}
	sr := readReport(t, filepath.Join(dir, "sf-tower.json"))
	checkMetrics(t, "beir adapted tower", sr["tuned"], "ndcg@10")
	if tr, _ := sr["training"].(map[string]any); tr["mode"] != "full" || sr["tuned_fingerprint"] == sr["base_fingerprint"] {
		t.Errorf("--adapt-mode full report: training %v, tuned %v, base %v", tr, sr["tuned_fingerprint"], sr["base_fingerprint"])
	}

	// A tower of another base model is refused.
	b, err := adapter.NewTower(a.Tower.ONNX, "another-model", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.tower")
	if err := b.Save(other); err != nil {
		t.Fatal(err)
	}
	err = runEval([]string{"--pairs", pdir, "--adapter", other, "--cache", cache, "-o", filepath.Join(dir, "x")})
	if !errors.Is(err, adapter.ErrFingerprint) || !strings.Contains(err.Error(), "another-mod") {
		t.Errorf("tower of another model: %v", err)
	}
}
