package kmeans

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/podsearch/podsearch/core/vec"
)

// Options configures Train. The zero value gives sensible defaults.
type Options struct {
	// Iters is the number of Lloyd iterations (default 20).
	Iters int
	// Seed makes sampling and seeding reproducible.
	Seed uint64
	// Workers bounds the goroutines of the assignment step (default GOMAXPROCS).
	Workers int
	// MaxPointsPerCentroid subsamples the training set to at most k times this many points
	// (default 256, as FAISS does); 0 keeps the default, a negative value keeps every point.
	MaxPointsPerCentroid int
	// InitPointsPerCentroid bounds the points k-means++ seeding looks at to k times this many
	// (default 16), because seeding costs O(points * k * d).
	InitPointsPerCentroid int
}

// Train clusters the n = len(data)/d row vectors of data into k centroids and returns them
// as a row-major k x d slice.
func Train(data []float32, d, k int, opts Options) ([]float32, error) {
	if d <= 0 {
		return nil, fmt.Errorf("kmeans: dimension %d must be positive", d)
	}
	if len(data)%d != 0 {
		return nil, fmt.Errorf("kmeans: %d values are not a whole number of %d-d vectors", len(data), d)
	}
	n := len(data) / d
	if k <= 0 {
		return nil, fmt.Errorf("kmeans: k=%d must be positive", k)
	}
	if n < k {
		return nil, fmt.Errorf("kmeans: %d points cannot make %d centroids", n, k)
	}
	for _, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("kmeans: training data holds NaN or Inf")
		}
	}
	if opts.Iters <= 0 {
		opts.Iters = 20
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxPointsPerCentroid == 0 {
		opts.MaxPointsPerCentroid = 256
	}
	if opts.InitPointsPerCentroid <= 0 {
		opts.InitPointsPerCentroid = 16
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6b6d65616e73))
	if opts.MaxPointsPerCentroid > 0 && n > k*opts.MaxPointsPerCentroid {
		data = sample(data, d, k*opts.MaxPointsPerCentroid, rng)
		n = len(data) / d
	}
	initData := data
	if n > k*opts.InitPointsPerCentroid {
		initData = sample(data, d, k*opts.InitPointsPerCentroid, rng)
	}
	cent := plusPlus(initData, d, k, rng)
	assign := make([]int32, n)
	dist := make([]float32, n)
	counts := make([]int, k)
	sums := make([]float64, k*d)
	for it := 0; it < opts.Iters; it++ {
		Assign(data, d, cent, assign, dist, opts.Workers)
		clear(counts)
		clear(sums)
		for i := 0; i < n; i++ {
			c := int(assign[i])
			counts[c]++
			row := vec.Row(data, d, i)
			s := sums[c*d : (c+1)*d]
			for j, v := range row {
				s[j] += float64(v)
			}
		}
		for c := 0; c < k; c++ {
			if counts[c] == 0 {
				continue
			}
			inv := 1 / float64(counts[c])
			for j := 0; j < d; j++ {
				cent[c*d+j] = float32(sums[c*d+j] * inv)
			}
		}
		reseedEmpty(data, d, cent, counts, dist)
	}
	return cent, nil
}

// sample returns m distinct rows of data chosen at random (a partial Fisher-Yates shuffle).
func sample(data []float32, d, m int, rng *rand.Rand) []float32 {
	n := len(data) / d
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	out := make([]float32, 0, m*d)
	for i := 0; i < m; i++ {
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
		out = append(out, vec.Row(data, d, perm[i])...)
	}
	return out
}

// plusPlus picks k initial centroids by k-means++ (each next one drawn with probability
// proportional to the squared distance to the nearest one chosen so far).
func plusPlus(data []float32, d, k int, rng *rand.Rand) []float32 {
	n := len(data) / d
	cent := make([]float32, 0, k*d)
	first := rng.IntN(n)
	cent = append(cent, vec.Row(data, d, first)...)
	best := make([]float64, n)
	var total float64
	for i := 0; i < n; i++ {
		best[i] = float64(vec.L2Sq(vec.Row(data, d, i), cent[:d]))
		total += best[i]
	}
	for c := 1; c < k; c++ {
		pick := -1
		if total > 0 {
			r := rng.Float64() * total
			for i := 0; i < n; i++ {
				r -= best[i]
				if r < 0 {
					pick = i
					break
				}
			}
		}
		if pick < 0 { // all remaining points coincide with centroids, or rounding ran off the end
			pick = rng.IntN(n)
		}
		newC := vec.Row(data, d, pick)
		cent = append(cent, newC...)
		total = 0
		for i := 0; i < n; i++ {
			if dd := float64(vec.L2Sq(vec.Row(data, d, i), newC)); dd < best[i] {
				best[i] = dd
			}
			total += best[i]
		}
	}
	return cent
}

// reseedEmpty moves every empty centroid onto the point farthest from its own centroid,
// so no centroid stays unused.
func reseedEmpty(data []float32, d int, cent []float32, counts []int, dist []float32) {
	for c := range counts {
		if counts[c] != 0 {
			continue
		}
		far, farD := -1, float32(-1)
		for i, dd := range dist {
			if dd > farD {
				far, farD = i, dd
			}
		}
		if far < 0 {
			return
		}
		copy(cent[c*d:(c+1)*d], vec.Row(data, d, far))
		dist[far] = 0
		counts[c] = 1
	}
}

// chunk is the number of points one assignment task handles; fixed so results do not depend
// on the number of workers.
const chunk = 1024

// Assign writes into assign[i] the index of the centroid nearest (squared L2) to row i of
// data and into dist[i] that squared distance, using up to workers goroutines.
func Assign(data []float32, d int, cent []float32, assign []int32, dist []float32, workers int) {
	n := len(data) / d
	k := len(cent) / d
	norms := make([]float32, k)
	for c := 0; c < k; c++ {
		row := vec.Row(cent, d, c)
		norms[c] = vec.Dot(row, row)
	}
	if workers < 1 {
		workers = 1
	}
	tasks := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range tasks {
				end := min(start+chunk, n)
				for i := start; i < end; i++ {
					x := vec.Row(data, d, i)
					best, bestD := 0, float32(math.MaxFloat32)
					for c := 0; c < k; c++ {
						dd := norms[c] - 2*vec.Dot(x, vec.Row(cent, d, c))
						if dd < bestD {
							best, bestD = c, dd
						}
					}
					assign[i] = int32(best)
					dd := bestD + vec.Dot(x, x)
					if dd < 0 {
						dd = 0
					}
					dist[i] = dd
				}
			}
		}()
	}
	for start := 0; start < n; start += chunk {
		tasks <- start
	}
	close(tasks)
	wg.Wait()
}

// Nearest returns the index of the centroid nearest (squared L2) to x.
func Nearest(x, cent []float32) int {
	d := len(x)
	best, bestD := 0, float32(math.MaxFloat32)
	for c := 0; c*d < len(cent); c++ {
		if dd := vec.L2Sq(x, vec.Row(cent, d, c)); dd < bestD {
			best, bestD = c, dd
		}
	}
	return best
}
