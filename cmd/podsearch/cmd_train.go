package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/evaluate/vcache"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/core/train"
)

func init() {
	register(&command{
		name:    "train",
		summary: "fine-tune a query adapter on (query, episode) pairs with the MNR ranking loss",
		run:     runTrain,
	})
}

// trainFlags are the adapter and optimiser settings shared by `train` and `eval --adapt`.
type trainFlags struct {
	kind                     *string
	rank                     *int
	both                     *bool
	epochs, batch            *int
	lr, warmup, decay, scale *float64
	seed                     *uint64
	maxPairs                 *int
	provider, cacheDir       *string
	encodeBatch              *int
}

func addTrainFlags(fs *flag.FlagSet) *trainFlags {
	return &trainFlags{
		kind:        fs.String("kind", "linear", "adapter shape: linear (512x512, identity at start) or lowrank (x + U Vᵀx)"),
		rank:        fs.Int("rank", 64, "inner width of a lowrank adapter"),
		both:        fs.Bool("both-sides", false, "apply the adapter to episode vectors too (the index must then be rebuilt with it)"),
		epochs:      fs.Int("epochs", 1, "passes over the training pairs"),
		batch:       fs.Int("batch-size", 64, "pairs per batch: each query's in-batch negatives + 1"),
		lr:          fs.Float64("lr", 1e-3, "peak AdamW learning rate"),
		warmup:      fs.Float64("warmup", 0.1, "share of steps with a linear learning-rate warm-up"),
		decay:       fs.Float64("weight-decay", 0.01, "AdamW decoupled weight decay (pulls the adapter towards the identity)"),
		scale:       fs.Float64("scale", 20, "similarity scale of the MNR loss"),
		seed:        fs.Uint64("seed", 1, "seed for shuffling and initialisation: the same seed gives the same adapter"),
		maxPairs:    fs.Int("max-pairs", 0, "use at most this many training pairs (0: all)"),
		provider:    fs.String("provider", "cpu", "ONNX Runtime execution provider: cpu or cuda (falls back to cpu)"),
		cacheDir:    fs.String("cache", filepath.Join(assets.Home(), "vectors"), "folder caching encoded vectors by model fingerprint; empty disables"),
		encodeBatch: fs.Int("encode-batch", 32, "texts per encoder call"),
	}
}

func (f *trainFlags) check() error {
	switch adapter.Kind(*f.kind) {
	case adapter.Linear, adapter.LowRank:
	default:
		return fmt.Errorf("%w: -kind must be linear or lowrank", errUsage)
	}
	if *f.epochs < 1 || *f.batch < 2 || *f.lr <= 0 || *f.scale <= 0 || *f.warmup < 0 || *f.warmup >= 1 || *f.decay < 0 || *f.encodeBatch < 1 {
		return fmt.Errorf("%w: need -epochs >= 1, -batch-size >= 2, -lr > 0, -scale > 0, 0 <= -warmup < 1, -weight-decay >= 0, -encode-batch >= 1", errUsage)
	}
	return nil
}

func (f *trainFlags) config() train.Config {
	return train.Config{Epochs: *f.epochs, BatchSize: *f.batch, LearningRate: *f.lr, WarmupFraction: *f.warmup,
		WeightDecay: *f.decay, Scale: *f.scale, Seed: *f.seed}
}

// vecEncoder turns texts into vectors with the real encoder, through the on-disk cache.
type vecEncoder struct {
	tok   tokenizer.Tokenizer
	sess  *encoder.Session
	cache *vcache.Cache
	batch int
}

func openVecEncoder(f *trainFlags) (*vecEncoder, error) {
	return newVecEncoder(*f.provider, *f.cacheDir, *f.encodeBatch)
}

// newVecEncoder opens the encoder on provider with the vector cache in cacheDir (empty:
// none), encoding batch texts per call.
func newVecEncoder(provider, cacheDir string, batch int) (*vecEncoder, error) {
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, err
	}
	sess, err := encoder.Open(encoder.Options{Provider: provider})
	if err != nil {
		return nil, err
	}
	return &vecEncoder{tok: tok, sess: sess, cache: &vcache.Cache{Dir: cacheDir}, batch: batch}, nil
}

func (e *vecEncoder) Close() error { return e.sess.Close() }

func (e *vecEncoder) fingerprint() string { return e.sess.Fingerprint() }

// encode returns one vector per text (cached per text and model fingerprint). Texts are encoded
// shortest first so batches hold similar lengths (less padding), then put back in order.
func (e *vecEncoder) encode(ctx context.Context, what string, texts []string) ([][]float32, error) {
	vs, hits, err := e.cache.GetOrCompute(ctx, e.fingerprint(), texts, func(ctx context.Context, texts []string) ([][]float32, error) {
		order := make([]int, len(texts))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return len(texts[order[a]]) < len(texts[order[b]]) })
		sorted := make([]string, len(texts))
		for i, j := range order {
			sorted[i] = texts[j]
		}
		bar := ingest.ProgressBar(os.Stderr, len(texts), "encoding "+what)
		defer bar.Finish()
		out, err := encoder.EmbedTexts(ctx, e.tok, e.sess, sorted, e.batch, func(done int) { _ = bar.Set(done) })
		if err != nil {
			return nil, err
		}
		vs := make([][]float32, len(texts))
		for i, j := range order {
			vs[j] = out[i]
		}
		return vs, nil
	})
	if err == nil {
		slog.Info("vectors ready", "what", what, "texts", len(texts), "from_cache", hits)
	}
	return vs, err
}

// pairLinks maps pairs to distinct document texts and distinct query texts: d holds the
// keys, episode links and groups (no vectors yet), texts the documents, queries the
// distinct query texts and qOf each pair's query index. A pair's document is its own text
// (core/pairs takes the query out of it); batches still never hold two pairs of one episode.
func pairLinks(ps []evaluate.Pair) (d train.Data, texts, queries []string, qOf []int) {
	d = train.Data{QueryKeys: make([]string, len(ps)), EpisodeOf: make([]int, len(ps)), EpisodeGroup: make([]int, len(ps))}
	textIdx, queryIdx, groups := map[string]int{}, map[string]int{}, map[string]int{}
	qOf = make([]int, len(ps))
	for i, p := range ps {
		j, ok := textIdx[p.Text]
		if !ok {
			j = len(texts)
			textIdx[p.Text] = j
			texts = append(texts, p.Text)
		}
		d.EpisodeOf[i] = j
		g, ok := groups[p.EpisodeID]
		if !ok {
			g = len(groups)
			groups[p.EpisodeID] = g
		}
		d.EpisodeGroup[i] = g
		q, ok := queryIdx[p.Query]
		if !ok {
			q = len(queries)
			queryIdx[p.Query] = q
			queries = append(queries, p.Query)
		}
		qOf[i] = q
		d.QueryKeys[i] = p.Query
	}
	return d, texts, queries, qOf
}

// pairData encodes pairs (each distinct query and document text once) into training data.
func (e *vecEncoder) pairData(ctx context.Context, what string, ps []evaluate.Pair) (train.Data, error) {
	d, texts, queries, qOf := pairLinks(ps)
	var err error
	if d.Episodes, err = e.encode(ctx, what+" documents", texts); err != nil {
		return train.Data{}, err
	}
	uv, err := e.encode(ctx, what+" queries", queries)
	if err != nil {
		return train.Data{}, err
	}
	d.Queries = make([][]float32, len(ps))
	for i := range ps {
		d.Queries[i] = uv[qOf[i]]
	}
	return d, nil
}

// readPairs reads a pairs file written by `podsearch pairs`.
func readPairs(path string, lang func(string) string) ([]evaluate.Pair, error) {
	ps, err := pairs.ReadPairs(path)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: no pairs", path)
	}
	return evaluate.FromPairs(ps, lang), nil
}

// fitAdapter trains a new adapter on the training pairs and reports what happened; eval
// pairs (may be nil) give a held-out loss before and after.
func fitAdapter(ctx context.Context, e *vecEncoder, f *trainFlags, trainPairs, evalPairs []evaluate.Pair) (*adapter.Adapter, map[string]any, error) {
	if *f.maxPairs > 0 && len(trainPairs) > *f.maxPairs {
		trainPairs = trainPairs[:*f.maxPairs]
	}
	data, err := e.pairData(ctx, "train", trainPairs)
	if err != nil {
		return nil, nil, err
	}
	a, err := adapter.New(adapter.Config{Kind: adapter.Kind(*f.kind), Dim: encoder.Dim, Rank: *f.rank,
		BothSides: *f.both, Seed: *f.seed}, e.fingerprint())
	if err != nil {
		return nil, nil, err
	}
	cfg := f.config()
	info := map[string]any{"pairs": len(trainPairs), "documents": len(data.Episodes), "kind": *f.kind,
		"both_sides": *f.both, "epochs": cfg.Epochs, "batch_size": cfg.BatchSize, "lr": cfg.LearningRate,
		"weight_decay": cfg.WeightDecay, "scale": cfg.Scale, "seed": cfg.Seed}
	if a.Kind == adapter.LowRank {
		info["rank"] = a.Rank
	}
	var evalData train.Data
	if len(evalPairs) > 0 {
		if evalData, err = e.pairData(ctx, "eval", evalPairs); err != nil {
			return nil, nil, err
		}
		before, err := train.Loss(a, evalData, cfg.BatchSize, cfg.Scale, 99)
		if err != nil {
			return nil, nil, err
		}
		info["eval_loss_before"] = round4(before)
	}
	trainBefore, err := train.Loss(a, data, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, nil, err
	}
	bar := ingest.ProgressBar(os.Stderr, 1, "training")
	cfg.Progress = func(step, total int, _ float64) {
		bar.ChangeMax(total)
		_ = bar.Set(step)
	}
	res, err := train.Train(ctx, a, data, cfg)
	_ = bar.Finish()
	if err != nil {
		return nil, nil, err
	}
	trainAfter, err := train.Loss(a, data, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, nil, err
	}
	info["train_loss_before"], info["train_loss_after"] = round4(trainBefore), round4(trainAfter)
	info["steps"], info["seconds"] = res.Steps, round4(res.Seconds)
	info["pairs_per_second"], info["steps_per_second"] = round4(res.PairsPerSecond), round4(res.StepsPerSecond)
	if len(evalPairs) > 0 {
		after, err := train.Loss(a, evalData, cfg.BatchSize, cfg.Scale, 99)
		if err != nil {
			return nil, nil, err
		}
		info["eval_loss_after"] = round4(after)
	}
	slog.Info("training done", "steps", res.Steps, "seconds", round4(res.Seconds), "pairs_per_second", round4(res.PairsPerSecond),
		"train_loss_before", round4(trainBefore), "train_loss_after", round4(trainAfter))
	a.Notes = info
	return a, info, nil
}

func round4(v float64) float64 { return float64(int64(v*1e4+0.5)) / 1e4 }

func runTrain(args []string) error {
	fs := newFlagSet("train", "--pairs DIR -o ADAPTER [--mode adapter|full] [flags]",
		"Trains a query adapter on the frozen encoder (--mode adapter, the default) or fine-tunes the encoder's\n"+
			"query tower itself (--mode full: USE-lite in Go, written as an ONNX model that goes wherever an adapter\n"+
			"file goes; episode vectors stay the base encoder's, so indexes stay valid) on DIR/train.jsonl pairs (query, episode_id, text),\n"+
			"MultipleNegativesRanking loss with in-batch negatives, AdamW with linear warm-up. DIR/eval.jsonl,\n"+
			"when present, gives a held-out loss before and after. Vectors are encoded once and cached.\n"+
			"The adapter file records the base model fingerprint; the tuned model's fingerprint is\n"+
			"sha256(base fingerprint + adapter bytes).")
	pairsDir := fs.String("pairs", "", "folder with train.jsonl (and eval.jsonl) from `podsearch pairs`")
	out := fs.String("o", "", "adapter file to write")
	corpus := fs.String("corpus", "", "corpus the pairs were made from (ingest output): train against the full episode texts it holds, the vectors an index of it serves, instead of the pairs' own texts (the episode minus the query)")
	mode := fs.String("mode", "adapter", "what to train: adapter (a map after the frozen encoder, see -kind) or full (USE-lite's query tower itself, written as an ONNX model)")
	tf := addTrainFlags(fs)
	tw := addTowerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pairsDir == "" || *out == "" {
		return fmt.Errorf("%w: -pairs and -o are required", errUsage)
	}
	if err := tf.check(); err != nil {
		return err
	}
	if *mode != "adapter" && *mode != "full" {
		return fmt.Errorf("%w: -mode must be adapter or full", errUsage)
	}
	if err := tw.check(); err != nil {
		return err
	}
	if *mode == "full" {
		return trainTowerFile(context.Background(), *pairsDir, *corpus, *out, tf, tw, fs)
	}
	a, info, err := trainAdapterFile(context.Background(), *pairsDir, *corpus, *out, tf)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %s adapter, base model %s, tuned model %s\n", *out, a.Kind, short12(a.BaseFingerprint), short12(a.Fingerprint()))
	fmt.Printf("trained %v pairs in %v steps, %.1f s (%.0f pairs/s); train loss %v -> %v",
		info["pairs"], info["steps"], info["seconds"], info["pairs_per_second"], info["train_loss_before"], info["train_loss_after"])
	if _, ok := info["eval_loss_before"]; ok {
		fmt.Printf("; eval loss %v -> %v", info["eval_loss_before"], info["eval_loss_after"])
	}
	fmt.Println()
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
