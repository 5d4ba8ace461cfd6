package tower

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// adamW is Adam with decoupled weight decay (torch.optim.AdamW: betas 0.9/0.999, eps 1e-6),
// with two learning-rate groups: the token embeddings, and everything else. Weight decay
// applies to weight matrices only (not biases, layer norms or embeddings), as BERT-style
// fine-tuning does.
type adamW[T Float] struct {
	beta1, beta2, eps, decay float64
	m, v                     [][]T
	t                        int
}

func newAdamW[T Float](params []*Param[T], decay float64) *adamW[T] {
	o := &adamW[T]{beta1: 0.9, beta2: 0.999, eps: 1e-6, decay: decay}
	for _, p := range params {
		o.m = append(o.m, make([]T, len(p.Data)))
		o.v = append(o.v, make([]T, len(p.Data)))
	}
	return o
}

// step applies one update: lr for the transformer weights, embLR for the embeddings.
func (o *adamW[T]) step(params []*Param[T], lr, embLR float64) {
	o.t++
	c1 := 1 - math.Pow(o.beta1, float64(o.t))
	c2 := 1 - math.Pow(o.beta2, float64(o.t))
	parallelFor(len(params), func(k int) {
		p := params[k]
		rate := lr
		if p.Embedding {
			rate = embLR
		}
		shrink := T(1)
		if !p.Embedding && len(p.Shape) == 2 {
			shrink = T(1 - rate*o.decay)
		}
		b1, b2 := T(o.beta1), T(o.beta2)
		a1, a2 := T(1-o.beta1), T(1-o.beta2)
		step, ic2, eps := T(rate/c1), T(1/c2), T(o.eps)
		m, v := o.m[k], o.v[k]
		for i, g := range p.Grad {
			if g == 0 && m[i] == 0 && v[i] == 0 {
				continue // an embedding row never used yet: Adam leaves it as it is
			}
			p.Data[i] *= shrink
			m[i] = b1*m[i] + a1*g
			v[i] = b2*v[i] + a2*g*g
			p.Data[i] -= step * m[i] / (T(math.Sqrt(float64(v[i]*ic2))) + eps)
		}
	})
}

// state is the resumable part of a training run.
type state[T Float] struct {
	step       int
	stopped    bool
	bestLoss   float64
	bestStep   int
	bad        int
	best       [][]T
	evalLosses []float64
}

// checkpointFile is what a checkpoint holds (gob-encoded).
type checkpointFile[T Float] struct {
	Version    int
	RunKey     string
	Step       int
	Stopped    bool
	Params     [][]T
	M, V       [][]T
	AdamT      int
	BestLoss   float64
	BestStep   int
	Bad        int
	Best       [][]T
	EvalLosses []float64
}

// runKey names the settings a checkpoint is only valid for.
func runKey(cfg Config, total int) string {
	k := fmt.Sprintf("epochs=%d batch=%d lr=%g emb=%g warm=%g wd=%g scale=%g seed=%d steps=%d",
		cfg.Epochs, cfg.BatchSize, cfg.LearningRate, cfg.EmbeddingLR, cfg.WarmupFraction, cfg.WeightDecay, cfg.Scale, cfg.Seed, total)
	if cfg.bothTowers {
		k += " both-towers"
	}
	return k
}

// save writes the checkpoint atomically (a temporary file renamed into place).
func (s *state[T]) save(path string, m *Model[T], o *adamW[T], cfg Config, total int) error {
	if path == "" {
		return nil
	}
	ck := checkpointFile[T]{Version: 1, RunKey: runKey(cfg, total), Step: s.step, Stopped: s.stopped,
		Params: snapshot(m), M: o.m, V: o.v, AdamT: o.t, BestLoss: s.bestLoss, BestStep: s.bestStep,
		Bad: s.bad, Best: s.best, EvalLosses: s.evalLosses}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("tower: checkpoint: %w", err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("tower: checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := gob.NewEncoder(w).Encode(&ck); err != nil {
		tmp.Close()
		return fmt.Errorf("tower: checkpoint: %w", err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("tower: checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tower: checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tower: checkpoint: %w", err)
	}
	return nil
}

// load restores a checkpoint into m, o and s; it reports false when the file does not exist
// and refuses one written by a run with other settings.
func (s *state[T]) load(path string, m *Model[T], o *adamW[T], cfg Config, total int) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tower: checkpoint: %w", err)
	}
	defer f.Close()
	var ck checkpointFile[T]
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&ck); err != nil {
		return false, fmt.Errorf("tower: checkpoint %s is unreadable (delete it to start afresh): %w", path, err)
	}
	if ck.Version != 1 || ck.RunKey != runKey(cfg, total) {
		return false, fmt.Errorf("tower: checkpoint %s is of another run (%s; this run: %s): delete it or use the same settings", path, ck.RunKey, runKey(cfg, total))
	}
	if len(ck.Params) != len(m.params) || len(ck.M) != len(m.params) || len(ck.V) != len(m.params) || (ck.Best != nil && len(ck.Best) != len(m.params)) {
		return false, fmt.Errorf("tower: checkpoint %s holds %d tensors, the model %d", path, len(ck.Params), len(m.params))
	}
	for i, p := range m.params {
		if len(ck.Params[i]) != len(p.Data) || len(ck.M[i]) != len(p.Data) || len(ck.V[i]) != len(p.Data) || (ck.Best != nil && len(ck.Best[i]) != len(p.Data)) {
			return false, fmt.Errorf("tower: checkpoint %s: tensor %s has the wrong size", path, p.Name)
		}
	}
	restore(m, ck.Params)
	o.m, o.v, o.t = ck.M, ck.V, ck.AdamT
	s.step, s.stopped, s.bestLoss, s.bestStep, s.bad = ck.Step, ck.Stopped, ck.BestLoss, ck.BestStep, ck.Bad
	s.best, s.evalLosses = ck.Best, ck.EvalLosses
	return true, nil
}
