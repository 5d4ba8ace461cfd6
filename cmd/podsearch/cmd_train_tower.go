package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/model"
	"github.com/podsearch/podsearch/core/tower"
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

// defaultTowerLR is the peak learning rate of the transformer weights when -lr is not given
// (the adapter's 1e-3 would wreck a pretrained transformer).
const defaultTowerLR = 5e-5

func addTowerFlags(fs *flag.FlagSet) *towerFlags {
	return &towerFlags{
		embLR:           fs.Float64("emb-lr", 0.1, "--mode full: factor on the learning rate for the token embeddings"),
		evalEvery:       fs.Int("eval-every", 50, "--mode full: steps between eval-loss checks for early stopping (0: once per epoch)"),
		patience:        fs.Int("patience", 3, "--mode full: eval-loss checks without a new best before training stops (the best weights are kept)"),
		checkpoint:      fs.String("checkpoint", "", "--mode full: checkpoint file, written every -checkpoint-every steps; a rerun with the same settings resumes from it (default: OUT.ckpt)"),
		checkpointEvery: fs.Int("checkpoint-every", 50, "--mode full: steps between checkpoints"),
		maxSteps:        fs.Int("max-steps", 0, "--mode full: stop after this many steps (0: all; the schedule still spans every epoch)"),
	}
}

func (f *towerFlags) check() error {
	if *f.embLR <= 0 || *f.evalEvery < 0 || *f.patience < 1 || *f.checkpointEvery < 1 || *f.maxSteps < 0 {
		return fmt.Errorf("%w: need -emb-lr > 0, -eval-every >= 0, -patience >= 1, -checkpoint-every >= 1, -max-steps >= 0", errUsage)
	}
	return nil
}

// towerData turns pairs into the tower's training data: query token ids (clipped as the
// encoder clips them) and the frozen base vectors of the documents (cached).
func (e *vecEncoder) towerData(ctx context.Context, what string, ps []evaluate.Pair) (tower.Data, error) {
	d, texts, queries, qOf := pairLinks(ps)
	eps, err := e.encode(ctx, what+" documents", texts)
	if err != nil {
		return tower.Data{}, err
	}
	ids := make([][]int32, len(queries))
	for i, q := range queries {
		ids[i] = encoder.Clip(e.tok.Encode(q))
	}
	td := tower.Data{QueryKeys: d.QueryKeys, Episodes: eps, EpisodeOf: d.EpisodeOf, EpisodeGroup: d.EpisodeGroup,
		QueryIDs: make([][]int32, len(ps))}
	for i := range ps {
		td.QueryIDs[i] = ids[qOf[i]]
	}
	return td, nil
}

// trainTowerFile fine-tunes USE-lite's query tower on pairsDir/train.jsonl (early stopping
// on pairsDir/eval.jsonl when present), against corpus's full episode texts when corpus is
// not empty, and writes it as an ONNX model (a Tower adapter file) to out.
func trainTowerFile(ctx context.Context, pairsDir, corpus, out string, f *trainFlags, tw *towerFlags, fs *flag.FlagSet) error {
	trainPairs, err := readPairs(filepath.Join(pairsDir, "train.jsonl"), nil)
	if err != nil {
		return err
	}
	var evalPairs []evaluate.Pair
	if p := filepath.Join(pairsDir, "eval.jsonl"); fileExists(p) {
		if evalPairs, err = readPairs(p, nil); err != nil {
			return err
		}
	}
	if corpus != "" {
		docs, err := evaluate.ReadCorpus(corpus)
		if err != nil {
			return err
		}
		n := evaluate.UseDocTexts(trainPairs, docs) + evaluate.UseDocTexts(evalPairs, docs)
		slog.Info("training against the corpus texts", "pairs", n)
	}
	e, err := openVecEncoder(f)
	if err != nil {
		return err
	}
	defer e.Close()
	if *f.maxPairs > 0 && len(trainPairs) > *f.maxPairs {
		trainPairs = trainPairs[:*f.maxPairs]
	}
	base, err := model.ReadTFJS(tower.WeightsDir())
	if err != nil {
		return fmt.Errorf("%w (the TF.js weights come with `podsearch setup`)", err)
	}
	m, err := tower.FromTFJS[float32](base)
	if err != nil {
		return err
	}
	trData, err := e.towerData(ctx, "train", trainPairs)
	if err != nil {
		return err
	}
	var evData tower.Data
	if len(evalPairs) > 0 {
		if evData, err = e.towerData(ctx, "eval", evalPairs); err != nil {
			return err
		}
	}
	lr := defaultTowerLR
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "lr" {
			lr = *f.lr
		}
	})
	ck := *tw.checkpoint
	if ck == "" {
		ck = out + ".ckpt"
	}
	cfg := tower.Config{Epochs: *f.epochs, BatchSize: *f.batch, LearningRate: lr, EmbeddingLR: *tw.embLR,
		WarmupFraction: *f.warmup, WeightDecay: *f.decay, Scale: *f.scale, Seed: *f.seed,
		EvalEvery: *tw.evalEvery, Patience: *tw.patience, Checkpoint: ck, CheckpointEvery: *tw.checkpointEvery,
		MaxSteps: *tw.maxSteps}
	// The training loss before and after is measured on a sample (a full pass costs a third
	// of an epoch).
	sample := towerSample(trData, 1024)
	trainBefore, err := tower.Loss(m, sample, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return err
	}
	bar := ingest.ProgressBar(os.Stderr, 1, "training the query tower")
	cfg.Progress = func(p tower.Progress) {
		bar.ChangeMax(p.Total)
		bar.Describe(fmt.Sprintf("training the query tower: loss %.3f, %.1f pairs/s", p.Loss, p.PairsPerSec))
		_ = bar.Set(p.Step)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	slog.Info("training the query tower", "pairs", len(trainPairs), "eval_pairs", len(evalPairs), "lr", lr, "emb_lr", lr**tw.embLR,
		"epochs", cfg.Epochs, "batch", cfg.BatchSize, "checkpoint", ck)
	res, err := tower.Train(ctx, m, trData, evData, cfg)
	_ = bar.Finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted at step %d (checkpoint %s: rerun the same command to resume): %w", res.Steps, ck, err)
		}
		return err
	}
	trainAfter, err := tower.Loss(m, sample, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return err
	}
	info := map[string]any{"mode": "full", "pairs": len(trainPairs), "documents": len(trData.Episodes), "epochs": cfg.Epochs,
		"batch_size": cfg.BatchSize, "lr": lr, "emb_lr": lr * *tw.embLR, "weight_decay": cfg.WeightDecay, "scale": cfg.Scale,
		"seed": cfg.Seed, "steps": res.Steps, "total_steps": res.TotalSteps, "best_step": res.BestStep,
		"early_stopped": res.EarlyStopped, "seconds": round4(res.Seconds), "pairs_per_second": round4(res.PairsPerSecond),
		"train_loss_sample": len(sample.QueryIDs), "train_loss_before": round4(trainBefore), "train_loss_after": round4(trainAfter), "parameters": res.ParameterCount}
	if res.ResumedAt > 0 {
		info["resumed_at"] = res.ResumedAt
	}
	if len(res.EvalLoss) > 0 {
		info["eval_loss_before"], info["eval_loss_best"] = round4(res.EvalLoss[0]), round4(res.BestEvalLoss)
	}
	onnxBytes, err := model.Export(m.TFJS(base))
	if err != nil {
		return err
	}
	a, err := adapter.NewTower(onnxBytes, e.fingerprint(), info)
	if err != nil {
		return err
	}
	if err := a.Save(out); err != nil {
		return err
	}
	_ = os.Remove(ck) // finished: a rerun starts afresh
	fmt.Printf("wrote %s: query tower (ONNX), base model %s, tuned model %s\n", out, short12(a.BaseFingerprint), short12(a.Fingerprint()))
	fmt.Printf("trained %d pairs in %d of %d steps, %.1f s (%.1f pairs/s); train loss %.4f -> %.4f",
		len(trainPairs), res.Steps, res.TotalSteps, res.Seconds, res.PairsPerSecond, trainBefore, trainAfter)
	if len(res.EvalLoss) > 0 {
		fmt.Printf("; eval loss %.4f -> %.4f (best, step %d)", res.EvalLoss[0], res.BestEvalLoss, res.BestStep)
	}
	if math.IsNaN(res.BestEvalLoss) && len(evalPairs) > 0 {
		fmt.Print("; no eval loss")
	}
	fmt.Println()
	return nil
}

// towerSample returns the first n pairs of d (all when it has fewer).
func towerSample(d tower.Data, n int) tower.Data {
	if len(d.QueryIDs) <= n {
		return d
	}
	s := tower.Data{QueryIDs: d.QueryIDs[:n], Episodes: d.Episodes, EpisodeOf: d.EpisodeOf[:n]}
	if d.QueryKeys != nil {
		s.QueryKeys = d.QueryKeys[:n]
	}
	if d.EpisodeGroup != nil {
		s.EpisodeGroup = d.EpisodeGroup[:n]
	}
	return s
}
