package tower

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/podsearch/podsearch/core/train"
)

// Data is a set of (query, episode) pairs for training the query tower: each query as token
// ids, each episode as its frozen vector (what the index serves), or, to train both towers
// (one model embedding queries and episodes, which then needs a re-index), as token ids.
type Data struct {
	// QueryIDs holds pair i's query token ids.
	QueryIDs [][]int32
	// QueryKeys holds pair i's query text; a batch never holds two equal keys. Nil means
	// every query is distinct.
	QueryKeys []string
	// Episodes holds each distinct document vector once (unit length or not: they are
	// normalised before use).
	Episodes [][]float32
	// EpisodeIDs, when set, holds each document's token ids (parallel to Episodes, which
	// may then be nil): the documents run through the model being trained, so both towers
	// learn, and Episodes is not used.
	EpisodeIDs [][]int32
	// EpisodeOf maps pair i to its document's index in Episodes (or EpisodeIDs).
	EpisodeOf []int
	// EpisodeGroup, when set, names pair i's episode for the no-duplicates rule (several
	// document vectors of one episode); nil means EpisodeOf.
	EpisodeGroup []int
}

// BothTowers reports whether d trains both towers (it holds the documents' token ids).
func (d Data) BothTowers() bool { return d.EpisodeIDs != nil }

// documents is the number of distinct documents.
func (d Data) documents() int {
	if d.BothTowers() {
		return len(d.EpisodeIDs)
	}
	return len(d.Episodes)
}

func (d Data) groups() []int {
	if d.EpisodeGroup != nil {
		return d.EpisodeGroup
	}
	return d.EpisodeOf
}

// Validate checks that the parts agree and that every vector has width 512.
func (d Data) Validate() error {
	n := len(d.QueryIDs)
	if len(d.EpisodeOf) != n || (d.QueryKeys != nil && len(d.QueryKeys) != n) || (d.EpisodeGroup != nil && len(d.EpisodeGroup) != n) {
		return fmt.Errorf("tower: %d queries, %d episode links, %d keys, %d groups disagree", n, len(d.EpisodeOf), len(d.QueryKeys), len(d.EpisodeGroup))
	}
	if d.BothTowers() && d.Episodes != nil && len(d.Episodes) != len(d.EpisodeIDs) {
		return fmt.Errorf("tower: %d document vectors but %d documents' token ids", len(d.Episodes), len(d.EpisodeIDs))
	}
	for i, e := range d.EpisodeOf {
		if e < 0 || e >= d.documents() {
			return fmt.Errorf("tower: pair %d names episode %d of %d", i, e, d.documents())
		}
	}
	if err := checkIDs("query", d.QueryIDs); err != nil {
		return err
	}
	if err := checkIDs("document", d.EpisodeIDs); err != nil {
		return err
	}
	if d.BothTowers() {
		return nil
	}
	for i, e := range d.Episodes {
		if len(e) != Width {
			return fmt.Errorf("tower: episode vector %d has width %d, want %d", i, len(e), Width)
		}
	}
	return nil
}

// checkIDs checks that every token id of seqs (what names them in errors) is in the vocabulary.
func checkIDs(what string, seqs [][]int32) error {
	for i, ids := range seqs {
		for _, id := range ids {
			if id < 0 || id >= VocabRows {
				return fmt.Errorf("tower: %s %d has token id %d outside [0, %d)", what, i, id, VocabRows)
			}
		}
	}
	return nil
}

// Config holds the training settings; zero fields take the defaults shown.
type Config struct {
	Epochs         int     // passes over the pairs (1)
	BatchSize      int     // pairs per batch (64)
	LearningRate   float64 // peak AdamW learning rate of the transformer weights (5e-5)
	EmbeddingLR    float64 // factor on the learning rate for the token embeddings (0.1)
	WarmupFraction float64 // share of steps with a linear warm-up, then linear decay (0.1)
	WeightDecay    float64 // AdamW decoupled weight decay of matrices; biases, layer norms and embeddings take none (0.01)
	Scale          float64 // similarity scale of the MNR loss (20)
	Seed           uint64  // the same seed (and data) gives the same tower
	// EvalEvery is the number of steps between evaluations of the eval loss (0: once per
	// epoch and at the end); Patience is how many evaluations without a new best loss stop
	// training (0: 3). The weights of the best evaluation are kept.
	EvalEvery, Patience int
	// Checkpoint, when set, is a file written every CheckpointEvery steps (0: 50) and at
	// the end; a run with the same data and settings resumes from it.
	Checkpoint      string
	CheckpointEvery int
	// MaxSteps stops after this many steps in all (0: no limit); the schedule still spans
	// every epoch (for short trial runs).
	MaxSteps int
	// Progress, when set, is called after every step.
	Progress func(p Progress)
	// Logger receives evaluation and checkpoint lines; nil means slog.Default().
	Logger *slog.Logger

	bothTowers bool // set by Train from the data: part of a checkpoint's run key
}

// Progress reports one training step.
type Progress struct {
	Step, Total  int
	Loss         float64 // this batch's loss
	PairsPerSec  float64 // since the start (or the resume) of this run
	BestEvalLoss float64 // NaN before the first evaluation or without eval data
}

func (c Config) withDefaults() Config {
	if c.Epochs <= 0 {
		c.Epochs = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.LearningRate <= 0 {
		c.LearningRate = 5e-5
	}
	if c.EmbeddingLR <= 0 {
		c.EmbeddingLR = 0.1
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
	if c.Patience <= 0 {
		c.Patience = 3
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 50
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Result reports what training did.
type Result struct {
	Pairs, Steps, TotalSteps int
	// ResumedAt is the step a checkpoint resumed from (0 for a fresh run).
	ResumedAt int
	// EvalLoss holds the eval loss at each evaluation (empty without eval data); BestStep is
	// the step whose weights were kept.
	EvalLoss          []float64
	BestEvalLoss      float64
	BestStep          int
	EarlyStopped      bool
	TrainLossLast100  float64
	Seconds           float64
	PairsPerSecond    float64
	StepsPerSecond    float64
	ParameterCount    int
	EmbeddingRowsUsed int
}

// BatchLoss returns the MNR loss of one batch (query outputs out [B, 512], unit length, and
// episode vectors e [B, 512], unit length; pair i's positive is row i) and, when dOut is not
// nil, writes the loss gradient with respect to out into it.
func BatchLoss[T Float](out []T, e [][]float32, scale float64, dOut []T) float64 {
	flat := make([]T, 0, len(e)*Width)
	for _, v := range e {
		for _, x := range v {
			flat = append(flat, T(x))
		}
	}
	return PairLoss(out, flat, scale, dOut, nil)
}

// PairLoss is the MNR loss of one batch of B query outputs q and B episode outputs e (both
// [B, 512] row-major, unit length; pair i's positive is row i, the other rows its negatives)
// and, when dQ or dE is not nil, writes the loss gradient with respect to q or e into it:
// the episode side's gradient is what training both towers needs.
func PairLoss[T Float](q, e []T, scale float64, dQ, dE []T) float64 {
	b := len(e) / Width
	loss := 0.0
	s := make([]float64, b)
	clear(dE)
	for i := 0; i < b; i++ {
		qi := q[i*Width : (i+1)*Width]
		mx := math.Inf(-1)
		for j := 0; j < b; j++ {
			d := 0.0
			for k, v := range e[j*Width : (j+1)*Width] {
				d += float64(qi[k]) * float64(v)
			}
			s[j] = scale * d
			mx = math.Max(mx, s[j])
		}
		sum := 0.0
		for _, v := range s {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		loss += lse - s[i]
		if dQ == nil && dE == nil {
			continue
		}
		var g []T
		if dQ != nil {
			g = dQ[i*Width : (i+1)*Width]
			clear(g)
		}
		for j := 0; j < b; j++ {
			w := math.Exp(s[j]-lse) / float64(b)
			if j == i {
				w -= 1 / float64(b)
			}
			w *= scale
			ej := e[j*Width : (j+1)*Width]
			if g != nil {
				for k, v := range ej {
					g[k] += T(w * float64(v))
				}
			}
			if dE != nil {
				dj := dE[j*Width : (j+1)*Width]
				for k, v := range qi {
					dj[k] += T(w * float64(v))
				}
			}
		}
	}
	return loss / float64(b)
}

// unitEpisodes returns the episode vectors scaled to unit length.
func unitEpisodes(es [][]float32) [][]float32 {
	out := make([][]float32, len(es))
	for i, e := range es {
		s := 0.0
		for _, v := range e {
			s += float64(v) * float64(v)
		}
		inv := 1.0
		if s > 0 {
			inv = 1 / math.Sqrt(s)
		}
		u := make([]float32, len(e))
		for j, v := range e {
			u[j] = float32(float64(v) * inv)
		}
		out[i] = u
	}
	return out
}

// Loss is the mean MNR loss of m over d in batches of batchSize drawn with seed (the same
// seed gives the same batches, so losses before and after training compare).
func Loss[T Float](m *Model[T], d Data, batchSize int, scale float64, seed uint64) (float64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	eps := unitEpisodes(d.Episodes)
	batches := train.Batches(d.QueryKeys, d.groups(), max(2, batchSize), rand.New(rand.NewPCG(seed, 0x7a11)))
	sum, n := 0.0, 0
	for _, b := range batches {
		l, err := m.batchLoss(d, eps, b, scale, false, d.BothTowers())
		if err != nil {
			return 0, err
		}
		sum += l * float64(len(b))
		n += len(b)
	}
	if n == 0 {
		return 0, errors.New("tower: no batch of two distinct episodes to score")
	}
	return sum / float64(n), nil
}

// batchLoss runs one batch forward (and backward, accumulating gradients, when grad). With
// both towers the episodes' token ids run through m beside the queries (one packed forward
// pass of 2B sequences), else their frozen vectors eps are the positives and negatives.
func (m *Model[T]) batchLoss(d Data, eps [][]float32, b []int, scale float64, grad, both bool) (float64, error) {
	ids := make([][]int32, len(b), 2*len(b))
	es := make([][]float32, len(b))
	for r, p := range b {
		ids[r] = d.QueryIDs[p]
		if !both {
			es[r] = eps[d.EpisodeOf[p]]
		}
	}
	if both {
		for _, p := range b {
			ids = append(ids, d.EpisodeIDs[d.EpisodeOf[p]])
		}
	}
	c, err := m.Forward(ids)
	if err != nil {
		return 0, err
	}
	if both {
		n := len(b) * Width
		if !grad {
			return PairLoss(c.Out[:n], c.Out[n:], scale, nil, nil), nil
		}
		dOut := make([]T, len(c.Out))
		loss := PairLoss(c.Out[:n], c.Out[n:], scale, dOut[:n], dOut[n:])
		return loss, m.Backward(c, dOut)
	}
	if !grad {
		return BatchLoss(c.Out, es, scale, nil), nil
	}
	dOut := make([]T, len(c.Out))
	loss := BatchLoss(c.Out, es, scale, dOut)
	return loss, m.Backward(c, dOut)
}

// Train fine-tunes m in place on the training pairs with the MNR loss against the frozen
// episode vectors; eval (may have no pairs) drives early stopping. See Config.
func Train[T Float](ctx context.Context, m *Model[T], tr, eval Data, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := tr.Validate(); err != nil {
		return Result{}, err
	}
	hasEval := len(eval.QueryIDs) > 0
	if hasEval {
		if err := eval.Validate(); err != nil {
			return Result{}, fmt.Errorf("eval data: %w", err)
		}
		if eval.BothTowers() != tr.BothTowers() {
			return Result{}, errors.New("tower: train and eval data must both hold documents' token ids (both towers) or neither")
		}
	}
	if cfg.BatchSize < 2 {
		return Result{}, errors.New("tower: batch size must be at least 2")
	}
	cfg.bothTowers = tr.BothTowers()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a11))
	var batches [][]int
	epochEnds := map[int]bool{}
	for range cfg.Epochs {
		batches = append(batches, train.Batches(tr.QueryKeys, tr.groups(), cfg.BatchSize, rng)...)
		epochEnds[len(batches)] = true
	}
	total := len(batches)
	if total == 0 {
		return Result{}, fmt.Errorf("tower: %d pairs make no batch of two distinct episodes", len(tr.QueryIDs))
	}
	warm := int(math.Ceil(cfg.WarmupFraction * float64(total)))
	trEps := unitEpisodes(tr.Episodes)
	opt := newAdamW(m.params, cfg.WeightDecay)
	res := Result{Pairs: len(tr.QueryIDs), TotalSteps: total, BestEvalLoss: math.NaN()}
	for _, p := range m.params {
		res.ParameterCount += len(p.Data)
	}
	st := &state[T]{bestLoss: math.Inf(1)}
	if cfg.Checkpoint != "" {
		ok, err := st.load(cfg.Checkpoint, m, opt, cfg, total)
		if err != nil {
			return res, err
		}
		if ok {
			res.ResumedAt = st.step
			res.EvalLoss = append(res.EvalLoss, st.evalLosses...)
			cfg.Logger.Info("tower: resuming from checkpoint", "file", cfg.Checkpoint, "step", st.step, "of", total)
		}
	}
	evaluate := func(step int) (stop bool, err error) {
		if !hasEval {
			return false, nil
		}
		l, err := Loss(m, eval, cfg.BatchSize, cfg.Scale, 99)
		if err != nil {
			return false, err
		}
		st.evalLosses = append(st.evalLosses, l)
		res.EvalLoss = append(res.EvalLoss, l)
		if l < st.bestLoss {
			st.bestLoss, st.bestStep, st.bad = l, step, 0
			st.best = snapshot(m)
		} else {
			st.bad++
		}
		cfg.Logger.Info("tower: eval", "step", step, "eval_loss", l, "best", st.bestLoss, "best_step", st.bestStep)
		return st.bad >= cfg.Patience, nil
	}
	if st.step == 0 && len(st.evalLosses) == 0 {
		if _, err := evaluate(0); err != nil {
			return res, err
		}
	}
	start := time.Now()
	done, recent := 0, []float64{}
	for st.step < total && !st.stopped {
		if err := ctx.Err(); err != nil {
			_ = st.save(cfg.Checkpoint, m, opt, cfg, total)
			return res, err
		}
		if cfg.MaxSteps > 0 && st.step >= cfg.MaxSteps {
			break
		}
		b := batches[st.step]
		m.ZeroGrad()
		loss, err := m.batchLoss(tr, trEps, b, cfg.Scale, true, tr.BothTowers())
		if err != nil {
			return res, err
		}
		f := warmupLinear(st.step, warm, total)
		opt.step(m.params, cfg.LearningRate*f, cfg.LearningRate*cfg.EmbeddingLR*f)
		st.step++
		done += len(b)
		recent = append(recent, loss)
		if len(recent) > 100 {
			recent = recent[1:]
		}
		if (cfg.EvalEvery > 0 && st.step%cfg.EvalEvery == 0) || (cfg.EvalEvery <= 0 && epochEnds[st.step]) || st.step == total {
			stop, err := evaluate(st.step)
			if err != nil {
				return res, err
			}
			if stop {
				st.stopped = true
				res.EarlyStopped = true
				cfg.Logger.Info("tower: early stop", "step", st.step, "best_step", st.bestStep, "best_eval_loss", st.bestLoss)
			}
		}
		if cfg.Checkpoint != "" && (st.step%cfg.CheckpointEvery == 0 || st.step == total || st.stopped) {
			if err := st.save(cfg.Checkpoint, m, opt, cfg, total); err != nil {
				return res, err
			}
		}
		if cfg.Progress != nil {
			el := time.Since(start).Seconds()
			cfg.Progress(Progress{Step: st.step, Total: total, Loss: loss, PairsPerSec: float64(done) / math.Max(el, 1e-9), BestEvalLoss: nanIfInf(st.bestLoss)})
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Steps = st.step
	if res.Seconds > 0 {
		res.PairsPerSecond = float64(done) / res.Seconds
		res.StepsPerSecond = float64(st.step-res.ResumedAt) / res.Seconds
	}
	for _, l := range recent {
		res.TrainLossLast100 += l / float64(len(recent))
	}
	if hasEval && st.best != nil {
		restore(m, st.best)
		res.BestEvalLoss, res.BestStep = st.bestLoss, st.bestStep
	} else {
		res.BestStep = st.step
	}
	used := map[int32]bool{}
	for _, seqs := range [][][]int32{tr.QueryIDs, tr.EpisodeIDs} {
		for _, ids := range seqs {
			for _, id := range ids {
				used[id] = true
			}
		}
	}
	res.EmbeddingRowsUsed = len(used)
	return res, nil
}

func nanIfInf(v float64) float64 {
	if math.IsInf(v, 0) {
		return math.NaN()
	}
	return v
}

// snapshot copies every parameter's values.
func snapshot[T Float](m *Model[T]) [][]T {
	out := make([][]T, len(m.params))
	for i, p := range m.params {
		out[i] = append([]T(nil), p.Data...)
	}
	return out
}

func restore[T Float](m *Model[T], s [][]T) {
	for i, p := range m.params {
		copy(p.Data, s[i])
	}
}

// warmupLinear is the learning-rate factor at step s of total: a linear ramp from 0 over the
// first warm steps, then a linear decay to 0.
func warmupLinear(s, warm, total int) float64 {
	if s < warm {
		return float64(s+1) / float64(max(1, warm))
	}
	return math.Max(0, float64(total-s)/float64(max(1, total-warm)))
}
