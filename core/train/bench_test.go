package train

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/vec"
)

// BenchmarkTrainEpoch measures training speed on 2,048 pairs of random unit vectors, 512-d,
// batch 64 (32 steps per epoch); it reports pairs per second for each adapter kind.
func BenchmarkTrainEpoch(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, dim = 2048, 512
	d := Data{EpisodeOf: make([]int, n)}
	for i := 0; i < n; i++ {
		d.Queries = append(d.Queries, randUnit(rng, dim))
		d.Episodes = append(d.Episodes, randUnit(rng, dim))
		d.EpisodeOf[i] = i
	}
	for _, cfg := range []adapter.Config{{Kind: adapter.Linear, Dim: dim}, {Kind: adapter.LowRank, Dim: dim, Rank: 64}, {Kind: adapter.Linear, Dim: dim, BothSides: true}} {
		name := string(cfg.Kind)
		if cfg.BothSides {
			name += "-both"
		}
		b.Run(name, func(b *testing.B) {
			var pps float64
			for i := 0; i < b.N; i++ {
				a, _ := adapter.New(cfg, "fp")
				res, err := Train(context.Background(), a, d, Config{Seed: uint64(i), Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				pps = res.PairsPerSecond
			}
			b.ReportMetric(pps, "pairs/s")
		})
	}
}

func randUnit(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	vec.Normalize(v)
	return v
}
