package tower

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkStep measures one training step (forward, backward, AdamW) of the full-size
// tower in float32 on a batch of 64 queries of 8 tokens; it reports pairs per second.
func BenchmarkStep(b *testing.B) {
	d := toyData(1, 64)
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range d.QueryIDs {
		d.QueryIDs[i] = make([]int32, 8)
		for j := range d.QueryIDs[i] {
			d.QueryIDs[i][j] = int32(8 + rng.IntN(8000))
		}
	}
	m := Random[float32](1)
	eps := unitEpisodes(d.Episodes)
	batch := make([]int, 64)
	for i := range batch {
		batch[i] = i
	}
	opt := newAdamW(m.params, 0.01)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.ZeroGrad()
		if _, err := m.batchLoss(d, eps, batch, 20, true, false); err != nil {
			b.Fatal(err)
		}
		opt.step(m.params, 1e-5, 1e-6)
	}
	b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "pairs/s")
}
