package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/evaluate"

	"github.com/podsearch/podsearch/core/tower"
	"github.com/podsearch/podsearch/core/train"
	"github.com/podsearch/podsearch/core/train/querytower"
)

// towerFlags are the settings of `train --mode full` beyond the shared training flags.
type towerFlags struct {
	embLR           *float64
	evalEvery       *int
	patience        *int
	checkpoint      *string
	checkpointEvery *int
	maxSteps        *int
}

func addTowerFlags(fs *flag.FlagSet) *towerFlags {
	return &towerFlags{
		embLR:           fs.Float64("emb-lr", 0.1, "full mode (train --mode full, eval --adapt-mode full): factor on the learning rate for the token embeddings"),
		evalEvery:       fs.Int("eval-every", 50, "full mode (train --mode full, eval --adapt-mode full): steps between eval-loss checks for early stopping (0: once per epoch)"),
		patience:        fs.Int("patience", 3, "full mode (train --mode full, eval --adapt-mode full): eval-loss checks without a new best before training stops (the best weights are kept)"),
		checkpoint:      fs.String("checkpoint", "", "full mode (train --mode full, eval --adapt-mode full): checkpoint file, written every -checkpoint-every steps; a rerun with the same settings resumes from it (default: OUT.ckpt)"),
		checkpointEvery: fs.Int("checkpoint-every", 50, "full mode (train --mode full, eval --adapt-mode full): steps between checkpoints"),
		maxSteps:        fs.Int("max-steps", 0, "full mode (train --mode full, eval --adapt-mode full): stop after this many steps (0: all; the schedule still spans every epoch)"),
	}
}

func (f *towerFlags) check() error {
	if *f.embLR <= 0 || *f.evalEvery < 0 || *f.patience < 1 || *f.checkpointEvery < 1 || *f.maxSteps < 0 {
		return fmt.Errorf("%w: need -emb-lr > 0, -eval-every >= 0, -patience >= 1, -checkpoint-every >= 1, -max-steps >= 0", errUsage)
	}
	return nil
}

// config is the tower's training configuration from the flags, checkpointing to ck (empty:
// none); the learning rate is querytower.DefaultLR unless -lr was given (its default is the
// adapter's).
func (tw *towerFlags) config(f *trainFlags, fs *flag.FlagSet, ck string) tower.Config {
	lr := querytower.DefaultLR
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "lr" {
			lr = *f.lr
		}
	})
	return tower.Config{Epochs: *f.epochs, BatchSize: *f.batch, LearningRate: lr, EmbeddingLR: *tw.embLR,
		WarmupFraction: *f.warmup, WeightDecay: *f.decay, Scale: *f.scale, Seed: *f.seed,
		EvalEvery: *tw.evalEvery, Patience: *tw.patience, Checkpoint: ck, CheckpointEvery: *tw.checkpointEvery,
		MaxSteps: *tw.maxSteps}
}

// adaptTower is eval --adapt --adapt-mode full: it fine-tunes the query tower (both towers
// with -both-sides) on the pseudo-pairs, writes it into dir (an encoder opens the file) and
// returns it with its encoder; closing the encoder is the caller's job.
func adaptTower(ctx context.Context, enc *corpusembed.Encoder, ps []evaluate.Pair, dir string, f *trainFlags, tw *towerFlags, fs *flag.FlagSet) (evaluate.Adapted, error) {
	r, err := querytower.Fit(ctx, enc, enc.Tokenizer(), ps, nil, querytower.Options{Config: tw.config(f, fs, *tw.checkpoint),
		MaxPairs: *f.maxPairs, BothTowers: *f.both, Progress: os.Stderr})
	if err != nil {
		return evaluate.Adapted{}, err
	}
	path := filepath.Join(dir, "adapt.tower")
	if err := r.Adapter.Save(path); err != nil {
		return evaluate.Adapted{}, err
	}
	a, err := adapter.LoadFor(path, enc.Fingerprint())
	if err != nil {
		return evaluate.Adapted{}, err
	}
	t, err := enc.QueryTower(a)
	if err != nil {
		return evaluate.Adapted{}, err
	}
	return evaluate.Adapted{Adapter: a, Info: r.Info, Tower: t}, nil
}

// trainTowerFile fine-tunes USE-lite's query tower on pairsDir/train.jsonl (early stopping
// on pairsDir/eval.jsonl when present), against corpus's full episode texts when corpus is
// not empty, and writes it as an ONNX model (a Tower adapter file) to out.
func trainTowerFile(ctx context.Context, pairsDir, corpus, out string, f *trainFlags, tw *towerFlags, fs *flag.FlagSet) error {
	trainPairs, evalPairs, err := train.ReadPairsDir(pairsDir, corpus)
	if err != nil {
		return err
	}
	e, err := openVecEncoder(f)
	if err != nil {
		return err
	}
	defer e.Close()
	ck := *tw.checkpoint
	if ck == "" {
		ck = out + ".ckpt"
	}
	cfg := tw.config(f, fs, ck)
	r, err := querytower.Fit(ctx, e, e.Tokenizer(), trainPairs, evalPairs, querytower.Options{Config: cfg, MaxPairs: *f.maxPairs, BothTowers: *f.both,
		Progress: os.Stderr, TrainContext: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt)
		}})
	if err != nil {
		return err
	}
	a, res := r.Adapter, r.Train
	if err := a.Save(out); err != nil {
		return err
	}
	_ = os.Remove(ck) // finished: a rerun starts afresh
	what := "query tower"
	if a.BothSides {
		what = "both towers: rebuild the index with --adapter " + out
	}
	fmt.Printf("wrote %s: %s (ONNX), base model %s, tuned model %s\n", out, what, short12(a.BaseFingerprint), short12(a.Fingerprint()))
	fmt.Printf("trained %d pairs in %d of %d steps, %.1f s (%.1f pairs/s); train loss %.4f -> %.4f",
		r.Pairs, res.Steps, res.TotalSteps, res.Seconds, res.PairsPerSecond, r.LossBefore, r.LossAfter)
	if len(res.EvalLoss) > 0 {
		fmt.Printf("; eval loss %.4f -> %.4f (best, step %d)", res.EvalLoss[0], res.BestEvalLoss, res.BestStep)
	}
	if math.IsNaN(res.BestEvalLoss) && len(evalPairs) > 0 {
		fmt.Print("; no eval loss")
	}
	fmt.Println()
	return nil
}
