package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/podsearch/podsearch/core/adapter"
)

func randRows(rng *rand.Rand, n, d int) *mat.Dense {
	x := mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		row := x.RawRowView(i)
		s := 0.0
		for j := range row {
			row[j] = rng.NormFloat64()
			s += row[j] * row[j]
		}
		for j := range row {
			row[j] /= math.Sqrt(s)
		}
	}
	return x
}

// TestGradientMatchesFiniteDifferences checks the analytic gradient of the MNR loss (through
// the adapter, the re-normalisation and the scaled softmax) against central differences, for
// both adapter kinds, query-only and both-sides.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	const dim, batch, scale = 10, 6, 20.0
	cases := []adapter.Config{
		{Kind: adapter.Linear, Dim: dim},
		{Kind: adapter.Linear, Dim: dim, BothSides: true},
		{Kind: adapter.LowRank, Dim: dim, Rank: 3, Seed: 5},
		{Kind: adapter.LowRank, Dim: dim, Rank: 3, Seed: 6, BothSides: true},
	}
	for ci, cfg := range cases {
		rng := rand.New(rand.NewPCG(uint64(ci), 42))
		a, err := adapter.New(cfg, "fp")
		if err != nil {
			t.Fatal(err)
		}
		m, err := newModel(a)
		if err != nil {
			t.Fatal(err)
		}
		// Move away from the identity so every term of the gradient is exercised.
		for _, p := range m.params {
			raw := p.RawMatrix().Data
			for i := range raw {
				raw[i] += 0.3 * rng.NormFloat64()
			}
		}
		xq, xe := randRows(rng, batch, dim), randRows(rng, batch, dim)
		m.zeroGrads()
		m.batchLoss(xq, xe, scale, true)
		worst := 0.0
		for k, p := range m.params {
			raw := p.RawMatrix().Data
			for i := range raw {
				const h = 1e-6
				orig := raw[i]
				raw[i] = orig + h
				lp := m.batchLoss(xq, xe, scale, false)
				raw[i] = orig - h
				lm := m.batchLoss(xq, xe, scale, false)
				raw[i] = orig
				num := (lp - lm) / (2 * h)
				ana := m.grads[k].RawMatrix().Data[i]
				rel := math.Abs(num-ana) / math.Max(1e-4, math.Abs(num)+math.Abs(ana))
				worst = math.Max(worst, rel)
				if rel > 1e-5 {
					t.Fatalf("%s both=%t param %d[%d]: analytic %g, finite differences %g", cfg.Kind, cfg.BothSides, k, i, ana, num)
				}
			}
		}
		t.Logf("%s both=%t: worst relative gradient error %.2e", cfg.Kind, cfg.BothSides, worst)
	}
}

// TestLossHandComputed checks the loss itself on a 2x2 case: with unit vectors q1=e1=(1,0),
// q2=e2=(0,1) at identity, S = 20 I, so each row's loss is log(1 + e^-20).
func TestLossHandComputed(t *testing.T) {
	a, _ := adapter.New(adapter.Config{Kind: adapter.Linear, Dim: 2}, "fp")
	m, _ := newModel(a)
	x := mat.NewDense(2, 2, []float64{1, 0, 0, 1})
	got := m.batchLoss(x, x, 20, false)
	want := math.Log(1 + math.Exp(-20))
	if math.Abs(got-want) > 1e-15 {
		t.Fatalf("loss = %g, want %g", got, want)
	}
	// Orthogonal query to its positive, aligned with the negative: loss = log(1 + e^20) - 0.
	q := mat.NewDense(2, 2, []float64{0, 1, 1, 0})
	got = m.batchLoss(q, x, 20, false)
	want = math.Log(1+math.Exp(20)) + 0 // row: scores (0, 20), positive at 0
	if math.Abs(got-want) > 1e-9 {
		t.Fatalf("loss = %g, want %g", got, want)
	}
}

func TestWarmupLinear(t *testing.T) {
	// 100 steps, 10 warm-up: 0, 0.5 at step 5, 1 at step 10, 0.5 at step 55, 0 at the end.
	for _, c := range []struct {
		s    int
		want float64
	}{{0, 0}, {5, 0.5}, {10, 1}, {55, 0.5}, {100, 0}} {
		if got := warmupLinear(c.s, 10, 100); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("warmupLinear(%d) = %g, want %g", c.s, got, c.want)
		}
	}
}

func TestAdamWFirstStep(t *testing.T) {
	// Adam's first bias-corrected step moves each weight by lr * sign(g) (|g| >> eps), after the
	// decoupled decay p *= 1 - lr*wd.
	p := mat.NewDense(1, 2, []float64{1, -2})
	g := mat.NewDense(1, 2, []float64{0.5, -3})
	o := newAdamW([]*mat.Dense{p}, 0.1)
	o.step([]*mat.Dense{p}, []*mat.Dense{g}, 0.01)
	want := []float64{1*(1-0.001) - 0.01, -2*(1-0.001) + 0.01}
	for i, w := range want {
		if math.Abs(p.RawMatrix().Data[i]-w) > 1e-7 {
			t.Errorf("param %d = %g, want %g", i, p.RawMatrix().Data[i], w)
		}
	}
}
