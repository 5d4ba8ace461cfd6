package train

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// realPairs encodes n (title, "title. abstract") pairs of the real SciFact corpus with the
// real encoder: titles are the queries, the documents their papers.
func realPairs(t *testing.T, n int) Data {
	t.Helper()
	path := filepath.Join(testenv.Shared(t, "data/beir/scifact"), "corpus.jsonl")
	sess := testmodel.Session(t)
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		testenv.SkipOrFailModel(t, "the tokenizer vocabulary")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var titles, docs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() && len(titles) < n {
		var d struct{ Title, Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if len(strings.Fields(d.Title)) < 4 {
			continue
		}
		titles = append(titles, d.Title)
		// Keep documents short (about 80 tokens) so the test encodes quickly.
		doc := d.Title + " " + d.Text
		if len(doc) > 400 {
			doc = doc[:400]
		}
		docs = append(docs, doc)
	}
	ctx := context.Background()
	qv, err := encoder.EmbedTexts(ctx, tok, sess, titles, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	dv, err := encoder.EmbedTexts(ctx, tok, sess, docs, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	of := make([]int, len(titles))
	for i := range of {
		of[i] = i
	}
	return Data{Queries: qv, QueryKeys: titles, Episodes: dv, EpisodeOf: of}
}

var quiet = slog.New(slog.DiscardHandler)

func subset(d Data, lo, hi int) Data {
	of := make([]int, hi-lo)
	for i := range of {
		of[i] = i
	}
	return Data{Queries: d.Queries[lo:hi], QueryKeys: d.QueryKeys[lo:hi], Episodes: d.Episodes[lo:hi], EpisodeOf: of}
}

// TestTrainingReducesLossOnRealPairs trains both adapter kinds on 64 real (title, paper)
// pairs encoded by the real encoder: the training loss must fall well below its starting
// value, and the same seed must give the identical adapter.
func TestTrainingReducesLossOnRealPairs(t *testing.T) {
	all := realPairs(t, 96)
	tr, held := subset(all, 0, 64), subset(all, 64, 96)
	for _, cfg := range []adapter.Config{{Kind: adapter.Linear, Dim: encoder.Dim}, {Kind: adapter.LowRank, Dim: encoder.Dim, Rank: 32, Seed: 3}} {
		train := func() (*adapter.Adapter, Result) {
			a, err := adapter.New(cfg, "base")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Train(context.Background(), a, tr, Config{Epochs: 8, BatchSize: 32, LearningRate: 2e-3, Seed: 11, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			return a, res
		}
		a0, _ := adapter.New(cfg, "base")
		before, err := Loss(a0, tr, 32, 20, 1)
		if err != nil {
			t.Fatal(err)
		}
		heldBefore, _ := Loss(a0, held, 32, 20, 1)
		a, res := train()
		after, _ := Loss(a, tr, 32, 20, 1)
		heldAfter, _ := Loss(a, held, 32, 20, 1)
		t.Logf("%s: train loss %.4f -> %.4f, held-out %.4f -> %.4f; %d steps, %.0f pairs/s", cfg.Kind, before, after, heldBefore, heldAfter, res.Steps, res.PairsPerSecond)
		if !(after < 0.8*before) {
			t.Errorf("%s: training loss %.4f -> %.4f did not fall by 20%%", cfg.Kind, before, after)
		}
		if len(res.EpochLoss) != 8 || res.Steps != 16 {
			t.Errorf("%s: %d epochs, %d steps", cfg.Kind, len(res.EpochLoss), res.Steps)
		}
		b, _ := train()
		if a.Fingerprint() != b.Fingerprint() {
			t.Errorf("%s: same seed gave different adapters", cfg.Kind)
		}
	}
}

func TestTrainRejectsBadData(t *testing.T) {
	a, _ := adapter.New(adapter.Config{Kind: adapter.Linear, Dim: 4}, "fp")
	bad := []Data{
		{Queries: [][]float32{{1, 0, 0, 0}}, EpisodeOf: []int{0}},                                      // no episode 0
		{Queries: [][]float32{{1, 0, 0}}, Episodes: [][]float32{{1, 0, 0, 0}}, EpisodeOf: []int{0}},    // width
		{Queries: [][]float32{{1, 0, 0, 0}}, Episodes: [][]float32{{1, 0, 0, 0}}, EpisodeOf: []int{}},  // counts
		{Queries: [][]float32{{1, 0, 0, 0}}, Episodes: [][]float32{{1, 0, 0, 0}}, EpisodeOf: []int{0}}, // one pair: no batch
	}
	for i, d := range bad {
		if _, err := Train(context.Background(), a, d, Config{}); err == nil {
			t.Errorf("bad data %d accepted", i)
		}
	}
}
