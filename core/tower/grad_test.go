package tower

import (
	"math"
	"math/rand/v2"
	"testing"
)

// linearLoss is L = Σ out ∘ r, a loss whose gradient reaches every op of the model.
func linearLoss(t *testing.T, m *Model[float64], ids [][]int32, r []float64) float64 {
	t.Helper()
	c, err := m.Forward(ids)
	if err != nil {
		t.Fatal(err)
	}
	s := 0.0
	for i, v := range c.Out {
		s += v * r[i]
	}
	return s
}

// checkGrads compares the analytic gradient of every parameter with central finite
// differences at a few entries each (all entries of small tensors would take minutes; the
// sampled entries include the embedding rows of the batch's tokens).
func checkGrads(t *testing.T, m *Model[float64], ids [][]int32, perParam int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	r := make([]float64, len(ids)*Width)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	m.ZeroGrad()
	c, err := m.Forward(ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Backward(c, r); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, p := range m.Params() {
		var idx []int
		if p.Embedding {
			// entries of rows the batch uses (others have zero gradient: check one too)
			for _, seq := range ids {
				for _, id := range seq[:min(len(seq), 6)] {
					idx = append(idx, int(id)*EmbedDim+rng.IntN(EmbedDim))
				}
			}
			idx = append(idx, 7*EmbedDim+3) // id 7 is not in the test batches
		} else {
			for range perParam {
				idx = append(idx, rng.IntN(len(p.Data)))
			}
		}
		for _, i := range idx {
			const h = 1e-6 // small: a ReLU unit near its kink must not cross it
			orig := p.Data[i]
			p.Data[i] = orig + h
			lp := linearLoss(t, m, ids, r)
			p.Data[i] = orig - h
			lm := linearLoss(t, m, ids, r)
			p.Data[i] = orig
			num := (lp - lm) / (2 * h)
			ana := p.Grad[i]
			err := math.Abs(num - ana)
			if err > 1e-7+1e-5*math.Max(math.Abs(num), math.Abs(ana)) {
				t.Fatalf("%s[%d]: analytic %.10g, finite differences %.10g", p.Name, i, ana, num)
			}
			if s := math.Abs(num) + math.Abs(ana); s > 1e-6 {
				worst = math.Max(worst, err/s)
			}
		}
	}
	t.Logf("worst relative gradient error %.2e", worst)
}

// TestGradientsMatchFiniteDifferences checks every parameter's gradient (and so every op's
// backward: embeddings, timing, layer norms, fused QKV, masked multi-head attention and its
// softmax, output and residual projections, FFN with ReLU, mean pooling, tanh, L2
// normalisation) against central differences on a random model in float64, with sequences
// of different lengths (packed rows, one empty sequence, token id 0).
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	m := Random[float64](1)
	ids := [][]int32{{12, 400, 7999}, {0}, {}, {55, 12, 3000, 8001, 9}}
	checkGrads(t, m, ids, 4, 2)
}

// TestGradientsLongSequence repeats the check on a 24-token sequence, where attention
// spreads over many keys.
func TestGradientsLongSequence(t *testing.T) {
	m := Random[float64](3)
	seq := make([]int32, 24)
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range seq {
		seq[i] = int32(8 + rng.IntN(VocabRows-8))
	}
	checkGrads(t, m, [][]int32{seq, seq[:5]}, 2, 5)
}

// TestForwardPackingIndependent checks that a sequence's output does not depend on the
// other sequences of its batch (packing) and that float32 and float64 agree.
func TestForwardPackingIndependent(t *testing.T) {
	m := Random[float64](6)
	m32 := Random[float32](6)
	a := []int32{100, 200, 300}
	b := []int32{5000, 6, 7, 8, 9, 10}
	one, err := m.Forward([][]int32{a})
	if err != nil {
		t.Fatal(err)
	}
	two, err := m.Forward([][]int32{b, a})
	if err != nil {
		t.Fatal(err)
	}
	c32, err := m32.Forward([][]int32{b, a})
	if err != nil {
		t.Fatal(err)
	}
	for j := range Width {
		if math.Abs(one.Row(0)[j]-two.Row(1)[j]) > 1e-12 {
			t.Fatalf("output %d depends on the batch: %g vs %g", j, one.Row(0)[j], two.Row(1)[j])
		}
		if math.Abs(float64(c32.Row(1)[j])-two.Row(1)[j]) > 1e-4 {
			t.Fatalf("float32 output %d = %g, float64 %g", j, c32.Row(1)[j], two.Row(1)[j])
		}
	}
	norm := 0.0
	for _, v := range one.Row(0) {
		norm += v * v
	}
	if math.Abs(norm-1) > 1e-9 {
		t.Errorf("output norm² %g", norm)
	}
}

func TestForwardRejectsBadIDs(t *testing.T) {
	m := Random[float32](1)
	for _, ids := range [][][]int32{{{-1}}, {{1, VocabRows}}} {
		if _, err := m.Forward(ids); err == nil {
			t.Errorf("ids %v accepted", ids)
		}
	}
	c, _ := m.Forward([][]int32{{1}})
	if err := m.Backward(c, make([]float32, 3)); err == nil {
		t.Error("short output gradient accepted")
	}
}
