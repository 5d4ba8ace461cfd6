package indexbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/vec"
)

// The defaults of a build (DefaultOptions), which `podsearch index` shows as its flags'
// defaults: transform-quantized re-rank codes of 224 bytes for 512-d vectors
// (index.DefaultRerankBytes), query-guided spilling of at most 0.77 entries per episode
// (PQ128x4 codes of 64 bytes: with the spilled entries about 340 bytes per 512-d episode,
// 1/6 of float32), and an operating point that reaches recall@10 0.95 on held-out sample
// queries. `bench index` builds its "default" configuration from the same values.
const (
	// DefaultConfig is the index model trained by default (the metric aside, cosine unless
	// told): 4-bit fast-scan PQ of d/4 sub-quantizers, transform-quantized re-rank codes of
	// index.DefaultRerankBytes, 224 bytes for 512-d.
	DefaultConfig = "IVF,PQx4fs,TQ"
	// DefaultSpillLists is the most lists one episode may be stored in, its own included.
	DefaultSpillLists = 4
	// DefaultSpillBudget is the most spilled entries per episode on average.
	DefaultSpillBudget = 0.77
	// DefaultTargetRecall is the recall@10 the operating point must reach.
	DefaultTargetRecall = 0.95
	// DefaultHardest: the operating point is chosen on the held-out sample queries least
	// similar to any episode, the share most like listeners' text queries
	// (index.ChooseOperatingPoint).
	DefaultHardest = 0.3
	// DefaultBatch is the number of texts per encoder batch.
	DefaultBatch = 32
	// DefaultSampleSize is the most sample queries used.
	DefaultSampleSize = 12000
)

// Options are the settings of Build. DefaultOptions gives the defaults; a zero field means
// what its comment says, not the default.
type Options struct {
	// Corpus is the corpus file (JSON Lines from `podsearch ingest`; .gz allowed). Required.
	Corpus string
	// Out is the output folder (created; an index already there is replaced). Required.
	Out string
	// Shards is the number of shards (episodes assigned by a hash of their id), at least 1.
	Shards int
	// Batch is the number of texts per encoder batch, at least 1.
	Batch int
	// Provider is the ONNX Runtime execution provider: cpu or cuda (falls back to cpu).
	Provider string
	// Adapter, when not empty, is a query adapter file (podsearch train): the index is
	// recorded under the tuned model's fingerprint, episode vectors pass through it when it
	// was trained on both sides (with Vectors they are taken as given), and the query sample
	// passes through its query side.
	Adapter string
	// Vectors, when not empty, is a file of precomputed episode vectors (.fvecs, corpus
	// order) used instead of running the encoder.
	Vectors string
	// Fingerprint is the model fingerprint recorded with Vectors (empty: the Adapter's tuned
	// model's, else none).
	Fingerprint string
	// Config is the index model's shape; Build sets its Seed and Fingerprint.
	Config index.Config
	// Seed is the training seed.
	Seed uint64
	// QuerySample is a file of text queries (JSON Lines with a query field, or plain lines)
	// that stand for what users will ask; empty: the corpus's own synthetic training queries
	// (QuerySampleTexts).
	QuerySample string
	// SampleSize is the most sample queries used (an even sample; 0: all); a fifth of them is
	// held out to choose the operating point.
	SampleSize int
	// SpillLists is the most lists one episode may be stored in, its own included (1: no
	// spilling).
	SpillLists int
	// SpillBudget is the most spilled entries per episode on average (0: no spilling).
	SpillBudget float64
	// TargetRecall is the recall@10 (against exact search, on the held-out sample queries)
	// the cheapest recorded operating point must reach; 0 keeps nprobe 16, re-rank 4.
	TargetRecall float64
	// ClimbRerank, when no operating point reaches TargetRecall, rebuilds with finer re-rank
	// codes (RerankLadder) until one does: recall first, then bytes. `podsearch index` sets
	// it unless the re-rank codes were chosen on its command line.
	ClimbRerank bool
	// Progress receives the progress bars of embedding and of encoding the query sample; nil
	// shows none.
	Progress io.Writer
}

// DefaultOptions returns the defaults of a build (those of `podsearch index`), with no
// corpus, output folder or progress bars.
func DefaultOptions() Options {
	cfg, err := index.ParseConfig(DefaultConfig + ",cosine")
	if err != nil {
		panic(err) // a constant that parses
	}
	return Options{Shards: 1, Batch: DefaultBatch, Provider: "cpu", Config: cfg, Seed: 1, SampleSize: DefaultSampleSize,
		SpillLists: DefaultSpillLists, SpillBudget: DefaultSpillBudget, TargetRecall: DefaultTargetRecall, ClimbRerank: true}
}

// Build embeds the corpus (or reads o.Vectors), writes the vectors beside the index
// (index.VectorsFile), trains the index model and writes the index into o.Out, query-aware
// (spilling and operating point) as o says.
func Build(ctx context.Context, o Options) error {
	if o.Corpus == "" || o.Out == "" {
		return errors.New("indexbuild: a corpus and an output folder are required")
	}
	if o.Shards < 1 || o.Batch < 1 {
		return errors.New("indexbuild: shards and batch must be >= 1")
	}
	docs, texts, err := ReadCorpus(o.Corpus)
	if err != nil {
		return err
	}
	start := time.Now()
	flat, d, fp, err := EpisodeVectors(ctx, o, texts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	vf, err := os.Create(filepath.Join(o.Out, index.VectorsFile))
	if err != nil {
		return err
	}
	if err := vec.WriteFvecs(vf, flat, d); err != nil {
		vf.Close()
		return err
	}
	if err := vf.Close(); err != nil {
		return err
	}
	trainStart := time.Now()
	cfg := o.Config
	cfg.Seed, cfg.Fingerprint = o.Seed, fp
	model, err := index.Train(flat, d, cfg)
	if err != nil {
		return err
	}
	slog.Info("trained", "model", model.String(), "seconds", time.Since(trainStart).Seconds())
	if err := buildQueryAware(ctx, model, docs, flat, fp, o); err != nil {
		return err
	}
	slog.Info("index written", "dir", o.Out, "episodes", len(docs), "shards", o.Shards, "seconds", time.Since(start).Seconds())
	return nil
}

// EpisodeVectors returns the vectors of a corpus's episodes, whose texts are texts (in
// corpus order): read from o.Vectors (which must hold one per episode), or embedded with the
// encoder (o.Batch, o.Provider; through o.Adapter's document side; progress on o.Progress).
// It returns them row-major with their width and the fingerprint of the model they belong to:
// o.Fingerprint when set, else the embedding model's, else (read vectors) the tuned model's
// of o.Adapter, else empty.
func EpisodeVectors(ctx context.Context, o Options, texts []string) (flat []float32, d int, fp string, err error) {
	fp = o.Fingerprint
	if o.Vectors == "" {
		start := time.Now()
		if flat, fp, err = corpusembed.Embed(ctx, texts, corpusembed.Options{Batch: o.Batch, Provider: o.Provider, Adapter: o.Adapter, Progress: o.Progress}); err != nil {
			return nil, 0, "", err
		}
		slog.Info("embedded", "episodes", len(texts), "seconds", time.Since(start).Seconds())
		return flat, encoder.Dim, fp, nil
	}
	if flat, d, err = vec.ReadFvecs(o.Vectors); err != nil {
		return nil, 0, "", err
	}
	if len(flat)/d != len(texts) {
		return nil, 0, "", fmt.Errorf("%s holds %d vectors for %d episodes", o.Vectors, len(flat)/d, len(texts))
	}
	if fp == "" && o.Adapter != "" { // the tuned model's, as the query side names it
		a, err := adapter.Load(o.Adapter)
		if err != nil {
			return nil, 0, "", err
		}
		fp = a.Fingerprint()
	}
	return flat, d, fp, nil
}

// buildQueryAware writes the index of docs and their vectors into o.Out under the guidance
// of a sample of queries encoded by the model fp names: four fifths of the sample choose the
// episodes' secondary lists (query-guided spilling, within the byte budget), the other
// fifth, held out, chooses the operating point recorded in the manifest. Without a sample to
// want, or with precomputed vectors and neither a sample file nor an adapter (whose query
// side then encodes the sample), it spills nothing and keeps the default operating point
// (no encoder needed).
func buildQueryAware(ctx context.Context, model *index.Model, docs []index.Doc, flat []float32, fp string, o Options) error {
	wantSample := o.SpillBudget > 0 && o.SpillLists > 1 || o.TargetRecall > 0
	if !wantSample || (o.Vectors != "" && o.QuerySample == "" && o.Adapter == "") {
		if err := index.Create(o.Out, model, o.Shards, docs, flat); err != nil {
			return err
		}
		slog.Info("no query sample: no spilling, default operating point", "bytes_per_vector", model.BytesPerVector())
		return nil
	}
	texts, source, err := QuerySampleTexts(o.QuerySample, o.Corpus)
	if err != nil {
		return err
	}
	sample, sd, err := EncodeQueries(ctx, EvenSample(texts, o.SampleSize), o.Adapter, fp, o.Progress)
	if err != nil {
		return fmt.Errorf("query sample: %w", err)
	}
	d := model.D
	guide, heldOut := SplitSample(sample, d)
	slog.Info("query sample", "source", source, "queries", len(sample)/sd, "guide", len(guide)/d, "held_out", len(heldOut)/d)
	var extra [][]int32
	if o.SpillBudget > 0 && o.SpillLists > 1 {
		t0 := time.Now()
		var st index.SpillStats
		extra, st, err = model.Spill(flat, index.SpillOptions{MaxLists: o.SpillLists, Queries: guide, Budget: o.SpillBudget})
		if err != nil {
			return err
		}
		slog.Info("spilled", "lists_per_episode", st.ListsPerEpisode(), "entries", st.Guided, "seconds", time.Since(t0).Seconds())
	}
	ids := make([]string, len(docs))
	for i, doc := range docs {
		ids[i] = doc.ID
	}
	// The held-out queries' exact top 10 is computed once, for every model ReachTarget tries.
	var truth *index.OperatingSample
	if o.TargetRecall > 0 {
		if truth, err = index.NewOperatingSample(model.Metric, d, heldOut, flat, ids, DefaultHardest); err != nil {
			return err
		}
	}
	var ix *index.Index
	defer func() {
		if ix != nil {
			ix.Close()
		}
	}()
	choose := func(m *index.Model) (index.OperatingPoint, error) {
		if ix != nil {
			ix.Close()
			ix = nil
		}
		if err := index.CreateSpill(o.Out, m, o.Shards, docs, flat, extra); err != nil {
			return index.OperatingPoint{}, err
		}
		var err error
		if ix, err = index.Open(o.Out, "", index.OpenOptions{}); err != nil {
			return index.OperatingPoint{}, err
		}
		slog.Info("index built", "config", ix.Config(), "bytes_per_vector", ix.BytesPerVector())
		if o.TargetRecall <= 0 {
			return index.OperatingPoint{}, nil
		}
		t0 := time.Now()
		op, err := truth.Choose(ix.Searcher(), o.TargetRecall)
		slog.Info("operating point", "config", ix.Config(), "nprobe", op.NProbe, "rerank_factor", op.RerankFactor,
			"recall_at_10", op.Recall, "target", op.Target, "queries", op.Queries, "seconds", time.Since(t0).Seconds())
		return op, err
	}
	_, op, err := ReachTarget(model, flat, o.Seed, o.ClimbRerank, choose)
	if o.TargetRecall <= 0 || (err != nil && !errors.Is(err, index.ErrBelowTarget)) {
		return err
	}
	if err != nil {
		slog.Warn("operating point below target: recording the best found", "err", err)
	}
	return ix.SetOperatingPoint(op)
}

// SplitSample splits sample query vectors (rows of d) into the four fifths that guide
// spilling and the fifth held out to choose the operating point.
func SplitSample(sample []float32, d int) (guide, heldOut []float32) {
	for i := 0; i < len(sample)/d; i++ {
		if i%5 == 4 {
			heldOut = append(heldOut, vec.Row(sample, d, i)...)
		} else {
			guide = append(guide, vec.Row(sample, d, i)...)
		}
	}
	return guide, heldOut
}

// ReadCorpus reads a corpus file into index documents and the texts to embed.
func ReadCorpus(path string) ([]index.Doc, []string, error) {
	eps, err := ingest.ReadCorpus(path)
	if err != nil {
		return nil, nil, err
	}
	if len(eps) == 0 {
		return nil, nil, fmt.Errorf("%s holds no episodes", path)
	}
	docs := make([]index.Doc, len(eps))
	texts := make([]string, len(eps))
	for i, e := range eps {
		if docs[i], err = ingest.IndexDoc(e); err != nil {
			slog.Warn("unparseable date ignored", "err", err)
		}
		texts[i] = e.Text
	}
	return docs, texts, nil
}
