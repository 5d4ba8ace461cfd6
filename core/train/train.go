package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/podsearch/podsearch/core/adapter"
)

// Data is a training (or evaluation) set of pairs over precomputed vectors.
type Data struct {
	// Queries holds pair i's query vector.
	Queries [][]float32
	// QueryKeys holds pair i's query text; a batch never holds two equal keys. Nil means
	// every query is distinct.
	QueryKeys []string
	// Episodes holds each distinct episode's vector once.
	Episodes [][]float32
	// EpisodeOf maps pair i to its document vector's index in Episodes.
	EpisodeOf []int
	// EpisodeGroup, when set, names pair i's episode for the no-duplicates rule when one
	// episode has several document vectors (core/pairs takes the query out of the text, so
	// two pairs of one episode can have different document texts). Nil means EpisodeOf.
	EpisodeGroup []int
}

// groups returns what batches must not repeat.
func (d Data) groups() []int {
	if d.EpisodeGroup != nil {
		return d.EpisodeGroup
	}
	return d.EpisodeOf
}

// Validate checks that the parts agree and that every vector has width dim.
func (d Data) Validate(dim int) error {
	if len(d.Queries) != len(d.EpisodeOf) {
		return fmt.Errorf("train: %d query vectors for %d pairs", len(d.Queries), len(d.EpisodeOf))
	}
	if d.EpisodeGroup != nil && len(d.EpisodeGroup) != len(d.Queries) {
		return fmt.Errorf("train: %d episode groups for %d pairs", len(d.EpisodeGroup), len(d.Queries))
	}
	if d.QueryKeys != nil && len(d.QueryKeys) != len(d.Queries) {
		return fmt.Errorf("train: %d query keys for %d pairs", len(d.QueryKeys), len(d.Queries))
	}
	for i, q := range d.Queries {
		if len(q) != dim {
			return fmt.Errorf("train: query vector %d has width %d, want %d", i, len(q), dim)
		}
		if e := d.EpisodeOf[i]; e < 0 || e >= len(d.Episodes) {
			return fmt.Errorf("train: pair %d names episode %d of %d", i, e, len(d.Episodes))
		}
	}
	for i, e := range d.Episodes {
		if len(e) != dim {
			return fmt.Errorf("train: episode vector %d has width %d, want %d", i, len(e), dim)
		}
	}
	return nil
}

// Config holds the training settings; zero fields take the defaults shown.
type Config struct {
	Epochs         int     // passes over the pairs (1)
	BatchSize      int     // pairs per batch, each query's in-batch negatives + 1 (64)
	LearningRate   float64 // peak AdamW learning rate (1e-3)
	WarmupFraction float64 // share of steps with a linear warm-up (0.1)
	WeightDecay    float64 // AdamW decoupled weight decay, towards the identity (0.01)
	Scale          float64 // similarity scale of the MNR loss (20)
	Seed           uint64  // shuffling seed: the same seed gives the same adapter
	// Progress, when set, is called after every step.
	Progress func(step, total int, loss float64)
	// Logger receives one line per epoch; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Epochs <= 0 {
		c.Epochs = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.LearningRate <= 0 {
		c.LearningRate = 1e-3
	}
	if c.WarmupFraction <= 0 || c.WarmupFraction >= 1 {
		c.WarmupFraction = 0.1
	}
	if c.WeightDecay < 0 {
		c.WeightDecay = 0
	}
	if c.Scale <= 0 {
		c.Scale = 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Result reports what training did.
type Result struct {
	Pairs, Steps, Epochs int
	// EpochLoss is the mean training loss of each epoch.
	EpochLoss []float64
	// Seconds is the wall time of the optimisation (vectors were precomputed).
	Seconds float64
	// PairsPerSecond and StepsPerSecond measure training speed.
	PairsPerSecond, StepsPerSecond float64
}

// Train fits a in place on d with the MNR loss and returns what it did.
func Train(ctx context.Context, a *adapter.Adapter, d Data, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := d.Validate(a.Dim); err != nil {
		return Result{}, err
	}
	if cfg.BatchSize < 2 {
		return Result{}, errors.New("train: batch size must be at least 2")
	}
	m, err := newModel(a)
	if err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a11))
	epochs := make([][][]int, cfg.Epochs)
	total := 0
	for e := range epochs {
		epochs[e] = Batches(d.QueryKeys, d.groups(), cfg.BatchSize, rng)
		total += len(epochs[e])
	}
	if total == 0 {
		return Result{}, fmt.Errorf("train: %d pairs make no batch of two distinct episodes", len(d.Queries))
	}
	warm := int(math.Ceil(cfg.WarmupFraction * float64(total)))
	opt := newAdamW(m.params, cfg.WeightDecay)
	res := Result{Pairs: len(d.Queries), Steps: total, Epochs: cfg.Epochs}
	start := time.Now()
	step, seen := 0, 0
	for e, batches := range epochs {
		sum, pairs := 0.0, 0
		for _, b := range batches {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			xq, xe := gather(d, b, a.Dim)
			m.zeroGrads()
			loss := m.batchLoss(xq, xe, cfg.Scale, true)
			opt.step(m.params, m.grads, cfg.LearningRate*warmupLinear(step, warm, total))
			step++
			sum += loss * float64(len(b))
			pairs += len(b)
			seen += len(b)
			if cfg.Progress != nil {
				cfg.Progress(step, total, loss)
			}
		}
		res.EpochLoss = append(res.EpochLoss, sum/float64(max(1, pairs)))
		cfg.Logger.Info("train: epoch done", "epoch", e+1, "of", cfg.Epochs, "batches", len(batches), "mean_loss", res.EpochLoss[e])
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.StepsPerSecond = float64(total) / res.Seconds
		res.PairsPerSecond = float64(seen) / res.Seconds
	}
	m.store(a)
	return res, nil
}

// gather copies the rows of batch b into query and episode matrices.
func gather(d Data, b []int, dim int) (xq, xe *mat.Dense) {
	xq = mat.NewDense(len(b), dim, nil)
	xe = mat.NewDense(len(b), dim, nil)
	for r, p := range b {
		qr, er := xq.RawRowView(r), xe.RawRowView(r)
		for j, v := range d.Queries[p] {
			qr[j] = float64(v)
		}
		for j, v := range d.Episodes[d.EpisodeOf[p]] {
			er[j] = float64(v)
		}
	}
	return xq, xe
}

// Loss is the mean MNR loss of a over d, in batches of batchSize drawn with seed (the same
// seed gives the same batches, so losses before and after training compare).
func Loss(a *adapter.Adapter, d Data, batchSize int, scale float64, seed uint64) (float64, error) {
	if err := d.Validate(a.Dim); err != nil {
		return 0, err
	}
	m, err := newModel(a)
	if err != nil {
		return 0, err
	}
	if scale <= 0 {
		scale = 20
	}
	batches := Batches(d.QueryKeys, d.groups(), max(2, batchSize), rand.New(rand.NewPCG(seed, 0x7a11)))
	sum, n := 0.0, 0
	for _, b := range batches {
		xq, xe := gather(d, b, a.Dim)
		sum += m.batchLoss(xq, xe, scale, false) * float64(len(b))
		n += len(b)
	}
	if n == 0 {
		return 0, errors.New("train: no batch to score")
	}
	return sum / float64(n), nil
}
