package tower

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var quiet = slog.New(slog.DiscardHandler)

// TestBatchLossGradient checks the MNR loss gradient with respect to the query outputs
// against central differences, and the loss on a hand-computed case.
func TestBatchLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const b = 5
	out := make([]float64, b*Width)
	for i := range out {
		out[i] = rng.NormFloat64() / math.Sqrt(Width)
	}
	es := make([][]float32, b)
	for i := range es {
		es[i] = make([]float32, Width)
		for j := range es[i] {
			es[i][j] = float32(rng.NormFloat64() / math.Sqrt(Width))
		}
	}
	d := make([]float64, len(out))
	BatchLoss(out, es, 20, d)
	for _, i := range []int{0, 7, 600, 1500, 2559} {
		const h = 1e-6
		o := out[i]
		out[i] = o + h
		lp := BatchLoss(out, es, 20, nil)
		out[i] = o - h
		lm := BatchLoss(out, es, 20, nil)
		out[i] = o
		num := (lp - lm) / (2 * h)
		if math.Abs(num-d[i]) > 1e-7+1e-6*math.Abs(num) {
			t.Fatalf("d loss / d out[%d]: analytic %g, finite differences %g", i, d[i], num)
		}
	}
	// Two orthogonal unit queries equal to their episodes: each row's loss is log(1 + e^-20).
	q := make([]float64, 2*Width)
	q[0], q[Width+1] = 1, 1
	e := [][]float32{make([]float32, Width), make([]float32, Width)}
	e[0][0], e[1][1] = 1, 1
	if got, want := BatchLoss(q, e, 20, nil), math.Log(1+math.Exp(-20)); math.Abs(got-want) > 1e-15 {
		t.Fatalf("loss %g, want %g", got, want)
	}
}

// toyData is n pairs of random 2..6-token queries, each with its own random episode vector.
func toyData(seed uint64, n int) Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	var d Data
	for i := 0; i < n; i++ {
		ids := make([]int32, 2+rng.IntN(5))
		for j := range ids {
			ids[j] = int32(8 + rng.IntN(400))
		}
		d.QueryIDs = append(d.QueryIDs, ids)
		e := make([]float32, Width)
		for j := range e {
			e[j] = float32(rng.NormFloat64())
		}
		d.Episodes = append(d.Episodes, e)
		d.EpisodeOf = append(d.EpisodeOf, i)
	}
	return d
}

func sameWeights(a, b *Model[float32]) bool {
	for i, p := range a.Params() {
		q := b.Params()[i]
		for j, v := range p.Data {
			if v != q.Data[j] {
				return false
			}
		}
	}
	return true
}

// TestTrainLearnsDeterministicallyAndResumes trains a small random-weight tower to map toy
// queries to their episodes: the training loss must fall, the same seed must give the
// identical tower: a run stopped half way and resumed from its checkpoint must end with
// the same weights as an uninterrupted run (so runs are deterministic for a seed, too).
func TestTrainLearnsDeterministicallyAndResumes(t *testing.T) {
	// The eval pairs are training pairs: the task is memorising, so that the kept (best
	// eval) weights must fit the training pairs better than the start.
	tr := toyData(1, 24)
	ev := Data{QueryIDs: tr.QueryIDs[:8], Episodes: tr.Episodes[:8], EpisodeOf: tr.EpisodeOf[:8]}
	cfg := Config{Epochs: 6, BatchSize: 8, LearningRate: 1e-3, EmbeddingLR: 1, Seed: 7, EvalEvery: 6, Patience: 100, Logger: quiet}
	run := func(c Config) (*Model[float32], Result) {
		m := Random[float32](11)
		res, err := Train(context.Background(), m, tr, ev, c)
		if err != nil {
			t.Fatal(err)
		}
		return m, res
	}
	before, err := Loss(Random[float32](11), tr, 8, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, res := run(cfg)
	after, _ := Loss(a, tr, 8, 20, 1)
	t.Logf("train loss %.4f -> %.4f; eval losses %v; %d steps, %.0f pairs/s", before, after, res.EvalLoss, res.Steps, res.PairsPerSecond)
	if !(after < 0.75*before) {
		t.Errorf("training loss %.4f -> %.4f did not fall by 25%%", before, after)
	}
	if res.Steps != 18 || len(res.EvalLoss) != 4 {
		t.Errorf("%d steps, %d evaluations; want 18 and 4", res.Steps, len(res.EvalLoss))
	}
	if res.BestEvalLoss != slicesMin(res.EvalLoss) {
		t.Errorf("best eval loss %g is not the minimum of %v", res.BestEvalLoss, res.EvalLoss)
	}
	// Stop after 8 steps with a checkpoint, then resume.
	ck := filepath.Join(t.TempDir(), "tower.ckpt")
	half := cfg
	half.Checkpoint, half.CheckpointEvery, half.MaxSteps = ck, 4, 8
	_, hr := run(half)
	if hr.Steps != 8 {
		t.Fatalf("stopped run did %d steps", hr.Steps)
	}
	rest := cfg
	rest.Checkpoint = ck
	c, rr := run(rest)
	if rr.ResumedAt != 8 || rr.Steps != 18 {
		t.Fatalf("resumed at %d, ended at %d", rr.ResumedAt, rr.Steps)
	}
	if !sameWeights(a, c) {
		t.Fatal("resumed run ended with other weights than the uninterrupted one")
	}
	// A checkpoint of other settings is refused.
	other := cfg
	other.Checkpoint, other.Seed = ck, 8
	if _, err := Train(context.Background(), Random[float32](11), tr, ev, other); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("checkpoint of another run: %v", err)
	}
	if err := os.WriteFile(ck, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(context.Background(), Random[float32](11), tr, ev, rest); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("corrupt checkpoint: %v", err)
	}
}

// TestEarlyStop: with a learning rate far too high the eval loss rises, training stops
// after Patience evaluations without a new best, and the best weights are kept.
func TestEarlyStop(t *testing.T) {
	tr, ev := toyData(1, 48), toyData(2, 16)
	m := Random[float32](11)
	res, err := Train(context.Background(), m, tr, ev, Config{Epochs: 20, BatchSize: 8, LearningRate: 0.5, Seed: 1, EvalEvery: 2, Patience: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if !res.EarlyStopped || res.Steps >= res.TotalSteps {
		t.Fatalf("no early stop: %d of %d steps, eval %v", res.Steps, res.TotalSteps, res.EvalLoss)
	}
	got, _ := Loss(m, ev, 8, 20, 99)
	if math.Abs(got-res.BestEvalLoss) > 1e-5 {
		t.Errorf("kept weights have eval loss %g, best was %g", got, res.BestEvalLoss)
	}
}

func TestTrainRejectsBadData(t *testing.T) {
	m := Random[float32](1)
	bad := []Data{
		{QueryIDs: [][]int32{{1}}, EpisodeOf: []int{0}},                                                        // no episode
		{QueryIDs: [][]int32{{1}}, Episodes: [][]float32{{1, 0}}, EpisodeOf: []int{0}},                         // width
		{QueryIDs: [][]int32{{VocabRows}}, Episodes: [][]float32{make([]float32, Width)}, EpisodeOf: []int{0}}, // id
		{QueryIDs: [][]int32{{1}}, Episodes: [][]float32{make([]float32, Width)}, EpisodeOf: []int{0}},         // one pair
	}
	for i, d := range bad {
		if _, err := Train(context.Background(), m, d, Data{}, Config{Logger: quiet}); err == nil {
			t.Errorf("bad data %d accepted", i)
		}
	}
}

func slicesMin(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

// TestPairLossGradient checks the MNR loss gradient with respect to both sides (the episode
// side is what training both towers back-propagates) against central differences, and that
// BatchLoss (frozen episode vectors) is the same loss.
func TestPairLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const b = 4
	q, e := make([]float64, b*Width), make([]float64, b*Width)
	for i := range q {
		q[i], e[i] = rng.NormFloat64()/math.Sqrt(Width), rng.NormFloat64()/math.Sqrt(Width)
	}
	dQ, dE := make([]float64, len(q)), make([]float64, len(e))
	loss := PairLoss(q, e, 20, dQ, dE)
	es := make([][]float32, b)
	for i := range es {
		es[i] = make([]float32, Width)
		for j := range es[i] {
			es[i][j] = float32(e[i*Width+j])
		}
	}
	if got := BatchLoss(q, es, 20, nil); math.Abs(got-loss) > 1e-6 {
		t.Fatalf("BatchLoss %g, PairLoss %g", got, loss)
	}
	for _, side := range []struct {
		name string
		x, d []float64
	}{{"query", q, dQ}, {"episode", e, dE}} {
		for _, i := range []int{0, 9, 700, 1300, 2047} {
			const h = 1e-6
			o := side.x[i]
			side.x[i] = o + h
			lp := PairLoss(q, e, 20, nil, nil)
			side.x[i] = o - h
			lm := PairLoss(q, e, 20, nil, nil)
			side.x[i] = o
			num := (lp - lm) / (2 * h)
			if math.Abs(num-side.d[i]) > 1e-7+1e-6*math.Abs(num) {
				t.Fatalf("d loss / d %s[%d]: analytic %g, finite differences %g", side.name, i, side.d[i], num)
			}
		}
	}
}

// bothData is toyData whose episodes are token-id sequences (both towers train).
func bothData(seed uint64, n int) Data {
	d := toyData(seed, n)
	rng := rand.New(rand.NewPCG(seed, 5))
	d.Episodes = nil
	for range n {
		ids := make([]int32, 4+rng.IntN(9))
		for j := range ids {
			ids[j] = int32(8 + rng.IntN(400))
		}
		d.EpisodeIDs = append(d.EpisodeIDs, ids)
	}
	return d
}

// TestBothTowersGradient checks the gradient of the both-towers batch loss (queries and
// episodes through one model, packed in one pass) against central differences in float64.
func TestBothTowersGradient(t *testing.T) {
	m := Random[float64](5)
	d := bothData(3, 4)
	b := []int{0, 1, 2, 3}
	m.ZeroGrad()
	if _, err := m.batchLoss(d, nil, b, 20, true, true); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	for _, p := range m.Params() {
		idx := []int{rng.IntN(len(p.Data))}
		if p.Embedding {
			idx = []int{int(d.EpisodeIDs[2][1])*EmbedDim + 5, int(d.QueryIDs[0][0])*EmbedDim + 17}
		}
		for _, i := range idx {
			const h = 1e-6
			o := p.Data[i]
			p.Data[i] = o + h
			lp, _ := m.batchLoss(d, nil, b, 20, false, true)
			p.Data[i] = o - h
			lm, _ := m.batchLoss(d, nil, b, 20, false, true)
			p.Data[i] = o
			num := (lp - lm) / (2 * h)
			if math.Abs(num-p.Grad[i]) > 1e-7+1e-5*math.Max(math.Abs(num), math.Abs(p.Grad[i])) {
				t.Fatalf("%s[%d]: analytic %.10g, finite differences %.10g", p.Name, i, p.Grad[i], num)
			}
		}
	}
}

// TestTrainBothTowers: with the episodes' token ids, training moves both sides (no frozen
// vectors exist) and the loss falls; a checkpoint of a query-tower run is refused.
func TestTrainBothTowers(t *testing.T) {
	tr := bothData(1, 24)
	cfg := Config{Epochs: 6, BatchSize: 8, LearningRate: 1e-3, EmbeddingLR: 1, Seed: 7, Logger: quiet}
	m := Random[float32](11)
	before, err := Loss(m, tr, 8, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(t.TempDir(), "both.ckpt")
	cfg.Checkpoint = ck
	res, err := Train(context.Background(), m, tr, Data{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := Loss(m, tr, 8, 20, 1)
	t.Logf("both towers: train loss %.4f -> %.4f in %d steps", before, after, res.Steps)
	if !(after < 0.75*before) {
		t.Errorf("training loss %.4f -> %.4f did not fall by 25%%", before, after)
	}
	q := toyData(1, 24)
	if _, err := Train(context.Background(), Random[float32](11), q, Data{}, cfg); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("a query-tower run resumed a both-towers checkpoint: %v", err)
	}
	if _, err := Train(context.Background(), Random[float32](11), tr, q, Config{Logger: quiet}); err == nil {
		t.Fatal("both-towers training with query-tower eval data was accepted")
	}
}
