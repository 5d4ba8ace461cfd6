package train

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/ingest"
)

// AdapterOptions are the adapter shape and optimiser settings of FitAdapter (the train
// command's flags).
type AdapterOptions struct {
	Kind      adapter.Kind // adapter.Linear or adapter.LowRank
	Rank      int          // inner width of a LowRank adapter
	BothSides bool         // apply the adapter to episode vectors too
	// Config is the optimiser settings (its Progress is FitAdapter's).
	Config Config
	// MaxPairs keeps at most this many training pairs (the first ones); 0: all.
	MaxPairs int
	// Progress receives the training progress bar (nil: none).
	Progress io.Writer
}

// FitAdapter trains a new adapter of the encoder's model on trainPairs (each distinct query
// and document text encoded once, through enc) and returns it with what happened, also kept
// in the adapter's Notes: pair and document counts, settings, training loss before and after,
// steps and speed. evalPairs (may be nil) give a held-out loss before and after.
func FitAdapter(ctx context.Context, enc evaluate.Encoder, trainPairs, evalPairs []evaluate.Pair, o AdapterOptions) (*adapter.Adapter, map[string]any, error) {
	if o.MaxPairs > 0 && len(trainPairs) > o.MaxPairs {
		trainPairs = trainPairs[:o.MaxPairs]
	}
	data, err := PairData(ctx, enc, "train", trainPairs)
	if err != nil {
		return nil, nil, err
	}
	cfg := o.Config
	a, err := adapter.New(adapter.Config{Kind: o.Kind, Dim: encoder.Dim, Rank: o.Rank,
		BothSides: o.BothSides, Seed: cfg.Seed}, enc.Fingerprint())
	if err != nil {
		return nil, nil, err
	}
	round4 := evaluate.Round4
	info := map[string]any{"pairs": len(trainPairs), "documents": len(data.Episodes), "kind": string(o.Kind),
		"both_sides": o.BothSides, "epochs": cfg.Epochs, "batch_size": cfg.BatchSize, "lr": cfg.LearningRate,
		"weight_decay": cfg.WeightDecay, "scale": cfg.Scale, "seed": cfg.Seed}
	if a.Kind == adapter.LowRank {
		info["rank"] = a.Rank
	}
	var evalData Data
	if len(evalPairs) > 0 {
		if evalData, err = PairData(ctx, enc, "eval", evalPairs); err != nil {
			return nil, nil, err
		}
		before, err := Loss(a, evalData, cfg.BatchSize, cfg.Scale, 99)
		if err != nil {
			return nil, nil, err
		}
		info["eval_loss_before"] = round4(before)
	}
	trainBefore, err := Loss(a, data, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, nil, err
	}
	bar := ingest.ProgressBar(o.Progress, 1, "training")
	cfg.Progress = func(step, total int, _ float64) {
		bar.ChangeMax(total)
		_ = bar.Set(step)
	}
	res, err := Train(ctx, a, data, cfg)
	_ = bar.Finish()
	if err != nil {
		return nil, nil, err
	}
	trainAfter, err := Loss(a, data, cfg.BatchSize, cfg.Scale, 99)
	if err != nil {
		return nil, nil, err
	}
	info["train_loss_before"], info["train_loss_after"] = round4(trainBefore), round4(trainAfter)
	info["steps"], info["seconds"] = res.Steps, round4(res.Seconds)
	info["pairs_per_second"], info["steps_per_second"] = round4(res.PairsPerSecond), round4(res.StepsPerSecond)
	if len(evalPairs) > 0 {
		after, err := Loss(a, evalData, cfg.BatchSize, cfg.Scale, 99)
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

// PairLinks maps pairs to distinct document texts and distinct query texts: d holds the
// keys, episode links and groups (no vectors yet), texts the documents, queries the
// distinct query texts and qOf each pair's query index. A pair's document is its own text
// (core/pairs takes the query out of it); batches still never hold two pairs of one episode.
func PairLinks(ps []evaluate.Pair) (d Data, texts, queries []string, qOf []int) {
	d = Data{QueryKeys: make([]string, len(ps)), EpisodeOf: make([]int, len(ps)), EpisodeGroup: make([]int, len(ps))}
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

// PairData encodes pairs (each distinct query and document text once, through enc) into
// training data; what names them in logs ("train", "eval").
func PairData(ctx context.Context, enc evaluate.Encoder, what string, ps []evaluate.Pair) (Data, error) {
	d, texts, queries, qOf := PairLinks(ps)
	var err error
	if d.Episodes, err = enc.Encode(ctx, what+" documents", texts); err != nil {
		return Data{}, err
	}
	uv, err := enc.Encode(ctx, what+" queries", queries)
	if err != nil {
		return Data{}, err
	}
	d.Queries = make([][]float32, len(ps))
	for i := range ps {
		d.Queries[i] = uv[qOf[i]]
	}
	return d, nil
}

// ReadPairsDir reads the training pairs of a folder written by `podsearch pairs`:
// dir/train.jsonl and, when present, dir/eval.jsonl (nil otherwise). With corpus (the
// corpus the pairs were made from) not empty, every pair's document text becomes its
// episode's full text there (evaluate.UseDocTexts): training then reaches the vectors an
// index of the corpus serves.
func ReadPairsDir(dir, corpus string) (trainPairs, evalPairs []evaluate.Pair, err error) {
	trainPairs, err = evaluate.ReadPairs(filepath.Join(dir, "train.jsonl"), nil)
	if err != nil {
		return nil, nil, err
	}
	if p := filepath.Join(dir, "eval.jsonl"); pathExists(p) {
		if evalPairs, err = evaluate.ReadPairs(p, nil); err != nil {
			return nil, nil, err
		}
	}
	if corpus != "" {
		docs, err := evaluate.ReadCorpus(corpus)
		if err != nil {
			return nil, nil, err
		}
		n := evaluate.UseDocTexts(trainPairs, docs) + evaluate.UseDocTexts(evalPairs, docs)
		slog.Info("training against the corpus texts", "pairs", n)
	}
	return trainPairs, evalPairs, nil
}

// pathExists tells whether p exists.
func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
