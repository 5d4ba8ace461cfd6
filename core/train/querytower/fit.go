package querytower

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/model"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/core/tower"
	"github.com/podsearch/podsearch/core/train"
)

// DefaultLR is the peak learning rate of the transformer weights when none is given (the
// adapter's 1e-3 would wreck a pretrained transformer).
const DefaultLR = 5e-5

// Options configure Fit.
type Options struct {
	// Config is the tower's training settings: its LearningRate (see DefaultLR) and
	// Checkpoint are used as given; its Progress is Fit's.
	Config tower.Config
	// MaxPairs keeps at most this many training pairs (the first ones); 0: all.
	MaxPairs int
	// BothTowers trains both towers: the episodes' texts run through the model being tuned
	// too (the article's fine-tuning of the one sentence encoder), so the result embeds
	// episodes as well and an index must be rebuilt with it. It costs about an episode's
	// tokens (up to 128) per pair more than a query's.
	BothTowers bool
	// Progress receives the training progress bar (nil: none).
	Progress io.Writer
	// TrainContext, when set, wraps the context of the training steps alone (the command
	// stops training on Ctrl-C there, keeping the checkpoint); it returns the context and
	// its release.
	TrainContext func(context.Context) (context.Context, context.CancelFunc)
}

// Result is what Fit made and measured.
type Result struct {
	// Adapter is the fine-tuned tower (kind adapter.Tower) of enc's base model, its Notes
	// holding Info.
	Adapter *adapter.Adapter
	// Info is what happened, as the adapter file records it.
	Info map[string]any
	// Pairs is the number of training pairs used; LossBefore and LossAfter the training
	// loss on a sample of at most 1,024 of them before and after.
	Pairs                 int
	LossBefore, LossAfter float64
	// Train is core/tower's account of the training.
	Train tower.Result
}

// Fit fine-tunes USE-lite's query tower (the TF.js weights of `podsearch setup`) on
// trainPairs, with early stopping on evalPairs (may be nil): queries are tokenized with tok,
// episode vectors come from enc (the frozen base encoder, cached). The tower is returned as
// a Tower adapter; saving it is the caller's job.
func Fit(ctx context.Context, enc evaluate.Encoder, tok tokenizer.Tokenizer, trainPairs, evalPairs []evaluate.Pair, o Options) (*Result, error) {
	if o.MaxPairs > 0 && len(trainPairs) > o.MaxPairs {
		trainPairs = trainPairs[:o.MaxPairs]
	}
	base, err := model.ReadTFJS(tower.WeightsDir())
	if err != nil {
		return nil, fmt.Errorf("%w (the TF.js weights come with `podsearch setup`)", err)
	}
	m, err := tower.FromTFJS[float32](base)
	if err != nil {
		return nil, err
	}
	trData, err := Data(ctx, enc, tok, "train", trainPairs, o.BothTowers)
	if err != nil {
		return nil, err
	}
	var evData tower.Data
	if len(evalPairs) > 0 {
		if evData, err = Data(ctx, enc, tok, "eval", evalPairs, o.BothTowers); err != nil {
			return nil, err
		}
	}
	cfg := o.Config
	lr := cfg.LearningRate
	// The training loss before and after is measured on a sample (a full pass costs a third
	// of an epoch).
	sample := Sample(trData, 1024)
	trainBefore, err := tower.Loss(m, sample, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, err
	}
	what := "the query tower"
	if o.BothTowers {
		what = "both towers"
	}
	bar := ingest.ProgressBar(o.Progress, 1, "training "+what)
	cfg.Progress = func(p tower.Progress) {
		bar.ChangeMax(p.Total)
		bar.Describe(fmt.Sprintf("training %s: loss %.3f, %.1f pairs/s", what, p.Loss, p.PairsPerSec))
		_ = bar.Set(p.Step)
	}
	tctx := ctx
	if o.TrainContext != nil {
		var stop context.CancelFunc
		tctx, stop = o.TrainContext(ctx)
		defer stop()
	}
	slog.Info("training "+what, "pairs", len(trainPairs), "eval_pairs", len(evalPairs), "lr", lr, "emb_lr", lr*cfg.EmbeddingLR,
		"epochs", cfg.Epochs, "batch", cfg.BatchSize, "checkpoint", cfg.Checkpoint)
	res, err := tower.Train(tctx, m, trData, evData, cfg)
	_ = bar.Finish()
	if err != nil {
		if tctx.Err() != nil {
			return nil, fmt.Errorf("interrupted at step %d (checkpoint %s: rerun the same command to resume): %w", res.Steps, cfg.Checkpoint, err)
		}
		return nil, err
	}
	trainAfter, err := tower.Loss(m, sample, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, err
	}
	round4 := evaluate.Round4
	info := map[string]any{"mode": "full", "both_sides": o.BothTowers, "pairs": len(trainPairs), "documents": len(trData.EpisodeOf), "epochs": cfg.Epochs,
		"batch_size": cfg.BatchSize, "lr": lr, "emb_lr": lr * cfg.EmbeddingLR, "weight_decay": cfg.WeightDecay, "scale": cfg.Scale,
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
		return nil, err
	}
	a, err := adapter.NewTower(onnxBytes, enc.Fingerprint(), o.BothTowers, info)
	if err != nil {
		return nil, err
	}
	return &Result{Adapter: a, Info: info, Pairs: len(trainPairs), LossBefore: trainBefore, LossAfter: trainAfter, Train: res}, nil
}

// Data turns pairs into the tower's training data: query token ids (clipped as the encoder
// clips them) and the frozen base vectors of the documents (through enc), or with
// bothTowers the documents' token ids; what names them in logs ("train", "eval").
func Data(ctx context.Context, enc evaluate.Encoder, tok tokenizer.Tokenizer, what string, ps []evaluate.Pair, bothTowers bool) (tower.Data, error) {
	d, texts, queries, qOf := train.PairLinks(ps)
	td := tower.Data{QueryKeys: d.QueryKeys, EpisodeOf: d.EpisodeOf, EpisodeGroup: d.EpisodeGroup,
		QueryIDs: make([][]int32, len(ps))}
	if bothTowers {
		td.EpisodeIDs = clipped(tok, texts)
	} else {
		eps, err := enc.Encode(ctx, what+" documents", texts)
		if err != nil {
			return tower.Data{}, err
		}
		td.Episodes = eps
	}
	ids := clipped(tok, queries)
	for i := range ps {
		td.QueryIDs[i] = ids[qOf[i]]
	}
	return td, nil
}

// clipped tokenizes texts as the encoder does (clipped to its maximum length).
func clipped(tok tokenizer.Tokenizer, texts []string) [][]int32 {
	ids := make([][]int32, len(texts))
	for i, t := range texts {
		ids[i] = encoder.Clip(tok.Encode(t))
	}
	return ids
}

// Sample returns the first n pairs of d (all when it has fewer).
func Sample(d tower.Data, n int) tower.Data {
	if len(d.QueryIDs) <= n {
		return d
	}
	s := tower.Data{QueryIDs: d.QueryIDs[:n], Episodes: d.Episodes, EpisodeIDs: d.EpisodeIDs, EpisodeOf: d.EpisodeOf[:n]}
	if d.QueryKeys != nil {
		s.QueryKeys = d.QueryKeys[:n]
	}
	if d.EpisodeGroup != nil {
		s.EpisodeGroup = d.EpisodeGroup[:n]
	}
	return s
}
