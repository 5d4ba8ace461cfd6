package train

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// TestPairLinks: each distinct document text and query text is kept once, pairs point at
// them, and episodes group pairs whatever their document text.
func TestPairLinks(t *testing.T) {
	ps := []evaluate.Pair{
		{Query: "q1", EpisodeID: "e1", Text: "t1"},
		{Query: "q2", EpisodeID: "e1", Text: "t1b"},
		{Query: "q1", EpisodeID: "e2", Text: "t2"},
		{Query: "q3", EpisodeID: "e2", Text: "t2"},
	}
	d, texts, queries, qOf := PairLinks(ps)
	if !reflect.DeepEqual(texts, []string{"t1", "t1b", "t2"}) || !reflect.DeepEqual(queries, []string{"q1", "q2", "q3"}) {
		t.Fatalf("texts %q, queries %q", texts, queries)
	}
	if !reflect.DeepEqual(qOf, []int{0, 1, 0, 2}) || !reflect.DeepEqual(d.EpisodeOf, []int{0, 1, 2, 2}) ||
		!reflect.DeepEqual(d.EpisodeGroup, []int{0, 0, 1, 1}) || !reflect.DeepEqual(d.QueryKeys, []string{"q1", "q2", "q1", "q3"}) {
		t.Fatalf("qOf %v, data %+v", qOf, d)
	}
}

// TestReadPairsDir reads train.jsonl alone, then with eval.jsonl, and with a corpus takes
// the episodes' full texts from it.
func TestReadPairsDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ps []pairs.Pair) {
		if err := pairs.WritePairs(filepath.Join(dir, name), ps); err != nil {
			t.Fatal(err)
		}
	}
	write("train.jsonl", []pairs.Pair{{Query: "bees", EpisodeID: "a", Text: "monks keep", Method: "title"}, {Query: "jazz", EpisodeID: "b", Text: "history"}})
	tr, ev, err := ReadPairsDir(dir, "")
	if err != nil || len(tr) != 2 || ev != nil || tr[0].Text != "monks keep" || tr[0].Method != "title" {
		t.Fatalf("train %+v, eval %+v, err %v", tr, ev, err)
	}
	write("eval.jsonl", []pairs.Pair{{Query: "space", EpisodeID: "c", Text: "rockets"}})
	corpus := filepath.Join(dir, "corpus.jsonl")
	if err := os.WriteFile(corpus, []byte(`{"id":"a","text":"Bees. Monks keep bees."}`+"\n"+`{"id":"c","text":"Space. Rockets."}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, ev, err = ReadPairsDir(dir, corpus)
	if err != nil || len(ev) != 1 || tr[0].Text != "Bees. Monks keep bees." || tr[1].Text != "history" || ev[0].Text != "Space. Rockets." {
		t.Fatalf("train %+v, eval %+v, err %v", tr, ev, err)
	}
	if _, _, err := ReadPairsDir(t.TempDir(), ""); err == nil {
		t.Error("a folder without train.jsonl was read")
	}
}

// TestFitAdapterOnRealPairs fits a low-rank adapter through the real encoder on SciFact
// (title, paper) pairs with held-out pairs: the adapter is of the encoder's model, MaxPairs
// is honoured, the training loss falls, and the notes record what happened.
func TestFitAdapterOnRealPairs(t *testing.T) {
	d := realPairs(t, 48) // skips without the model or the shared data
	enc := testmodel.NewEncoder(t)
	var ps []evaluate.Pair
	for i, q := range d.QueryKeys {
		ps = append(ps, evaluate.Pair{Query: q, EpisodeID: q, Text: q + " document " + string(rune('a'+i%26))})
	}
	o := AdapterOptions{Kind: adapter.LowRank, Rank: 16, MaxPairs: 32,
		Config: Config{Epochs: 4, BatchSize: 16, LearningRate: 2e-3, Scale: 20, Seed: 5, Logger: quiet}}
	a, info, err := FitAdapter(context.Background(), enc, ps[:40], ps[40:], o)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != adapter.LowRank || a.BaseFingerprint != enc.Fingerprint() || !reflect.DeepEqual(a.Notes, info) {
		t.Fatalf("adapter %s of %s, notes %v", a.Kind, a.BaseFingerprint, a.Notes)
	}
	if info["pairs"] != 32 || info["rank"] != 16 || info["steps"] != 8 || info["kind"] != "lowrank" {
		t.Errorf("info %v", info)
	}
	before, after := info["train_loss_before"].(float64), info["train_loss_after"].(float64)
	if !(after < before) {
		t.Errorf("training loss %v -> %v", before, after)
	}
	if _, ok := info["eval_loss_after"].(float64); !ok {
		t.Errorf("no held-out loss: %v", info)
	}
}
