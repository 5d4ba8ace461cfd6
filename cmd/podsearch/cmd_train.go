package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/corpusembed"
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
		both:        fs.Bool("both-sides", false, "apply the adapter to episode vectors too; with -mode full, train both towers (the tuned encoder embeds episodes too). The index must then be rebuilt with it"),
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

// adapterOptions are the settings of train.FitAdapter (its progress bar on stderr).
func (f *trainFlags) adapterOptions() train.AdapterOptions {
	return train.AdapterOptions{Kind: adapter.Kind(*f.kind), Rank: *f.rank, BothSides: *f.both, Config: f.config(),
		MaxPairs: *f.maxPairs, Progress: os.Stderr}
}

// openVecEncoder opens the encoder of f's provider with f's vector cache and batch size,
// its progress bars on stderr.
func openVecEncoder(f *trainFlags) (*corpusembed.Encoder, error) {
	return corpusembed.NewEncoder(*f.provider, *f.cacheDir, *f.encodeBatch, os.Stderr)
}

func runTrain(args []string) error {
	fs := newFlagSet("train", "--pairs DIR -o ADAPTER [--mode adapter|full] [flags]",
		"Trains a query adapter on the frozen encoder (--mode adapter, the default) or fine-tunes the encoder's\n"+
			"query tower itself (--mode full: USE-lite in Go, written as an ONNX model that goes wherever an adapter\n"+
			"file goes; episode vectors stay the base encoder's, so indexes stay valid; with --both-sides both towers are\n"+
			"trained, the model embeds episodes too and indexes are rebuilt with it) on DIR/train.jsonl pairs (query, episode_id, text),\n"+
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
