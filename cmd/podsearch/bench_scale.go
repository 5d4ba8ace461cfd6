package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/podsearch/podsearch/core/vec"
)

// Cost growth: `bench index --scale 10000,100000,1000000` measures the default build at
// sizes beyond the real corpus. Each size runs in a child process (so its peak memory is its
// own) over the index's real episode vectors plus synthetic ones drawn from their
// distribution (augmentVectors), searched with the real text queries.

// runScale runs the benchmark once per size in a child process with the same flags plus
// --scale-size N, and prints the children's rows with their peak memory and size.
func runScale(w io.Writer, args []string, sizes []int, asJSON bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var childArgs []string
	for i := 0; i < len(args); i++ { // drop --scale and its value, keep everything else
		a := args[i]
		if a == "--scale" || a == "-scale" {
			i++
			continue
		}
		if len(a) > 7 && (a[:8] == "--scale=" || (len(a) > 7 && a[:7] == "-scale=")) {
			continue
		}
		childArgs = append(childArgs, a)
	}
	out := newRowPrinter(w, asJSON)
	for _, n := range sizes {
		cmd := exec.Command(self, append([]string{"bench", "index", "--json", "--scale-size", strconv.Itoa(n)}, childArgs...)...)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench index at %d episodes: %w", n, err)
		}
		rss, _ := peakRSSMB(cmd.ProcessState)
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			var r benchRow
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("bench index at %d episodes printed %q: %w", n, sc.Text(), err)
			}
			r.PeakRSSMB = math.Round(rss)
			out.row(r)
		}
		fmt.Fprintf(os.Stderr, "scale %d: %.0f s, peak RSS %.0f MiB\n", n, time.Since(start).Seconds(), rss)
	}
	return out.flush()
}

// Scale models: how augmentVectors draws the synthetic rows of a --scale run.
const (
	// scaleMix draws a new row on the segment between a real row and one of its ten nearest
	// real rows, at a uniform position: a mixture of two neighbouring episodes.
	scaleMix = "mix"
	// scaleIsotropic draws a new row as a real row plus isotropic Gaussian noise sized so
	// that its cosine to the source equals the median real nearest-neighbour cosine.
	scaleIsotropic = "iso"
)

// defaultScaleNoise is --scale-noise's default: grown from a tenth of the demo's real vectors
// back to its size, mixtures with this much noise gave the recall the real vectors give at
// the chosen operating point (0.955 against 0.950; 0.963 without noise, 0.939 with 0.5).
const defaultScaleNoise = 0.25

// scaleNeighbours is how many nearest real rows a mixture may pair a source with.
const scaleNeighbours = 10

// augmentVectors returns base (n0 unit rows of d) extended to n rows of synthetic vectors
// drawn from the real ones by model (scaleMix or scaleIsotropic), and the median cosine
// between a real row and its nearest other real row (measured on a sample). Either way the
// new vectors lie where the real ones do; rows beyond n0 are reproducible for a seed.
func augmentVectors(base []float32, d, n int, model string, noise float64, seed uint64) ([]float32, float64, error) {
	n0 := len(base) / d
	if n <= n0 {
		return base[:n*d], 0, nil
	}
	if model != scaleMix && model != scaleIsotropic {
		return nil, 0, fmt.Errorf("%w: scale model %q (want %s or %s)", errUsage, model, scaleMix, scaleIsotropic)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7363616c65))
	c := medianNearestCosine(base, d)
	var neighbours [][]int32
	if model == scaleMix {
		neighbours = nearestRows(base, d, scaleNeighbours)
	}
	sigma := math.Sqrt((1/(c*c) - 1) / float64(d))
	out := slices.Grow(slices.Clone(base), (n-n0)*d)
	row := make([]float32, d)
	for i := n0; i < n; i++ {
		s := rng.IntN(n0)
		src := vec.Row(base, d, s)
		if model == scaleMix {
			nb := vec.Row(base, d, int(neighbours[s][rng.IntN(len(neighbours[s]))]))
			t := float32(rng.Float64())
			for j := range row {
				row[j] = (1-t)*src[j] + t*nb[j]
			}
			if noise > 0 {
				vec.Normalize(row)
				for j := range row {
					row[j] += float32(noise * sigma * rng.NormFloat64())
				}
			}
		} else {
			for j := range row {
				row[j] = src[j] + float32(sigma*rng.NormFloat64())
			}
		}
		vec.Normalize(row)
		out = append(out, row...)
	}
	return out, c, nil
}

// medianNearestCosine is the median, over a sample of up to 400 rows, of a row's cosine to
// its nearest other row (rows are unit vectors), clamped to [0.05, 0.999].
func medianNearestCosine(base []float32, d int) float64 {
	n0 := len(base) / d
	sample := min(n0, 400)
	cos := make([]float64, sample)
	vec.ParallelRows(sample, func(s int) {
		i := s * n0 / sample
		x := vec.Row(base, d, i)
		best := float32(-2)
		for j := 0; j < n0; j++ {
			if j != i {
				best = max(best, vec.Dot(x, vec.Row(base, d, j)))
			}
		}
		cos[s] = float64(best)
	})
	sort.Float64s(cos)
	return math.Min(math.Max(cos[sample/2], 0.05), 0.999)
}

// nearestRows returns, for every row of base, its k nearest other rows by inner product
// (fewer when base has fewer rows).
func nearestRows(base []float32, d, k int) [][]int32 {
	n0 := len(base) / d
	k = min(k, n0-1)
	out := make([][]int32, n0)
	vec.ParallelRows(n0, func(i int) {
		x := vec.Row(base, d, i)
		best := make([]int32, 0, k+1)
		score := make([]float32, 0, k+1)
		for j := 0; j < n0; j++ {
			if j == i {
				continue
			}
			s := vec.Dot(x, vec.Row(base, d, j))
			if len(best) == k && s <= score[k-1] {
				continue
			}
			p := sort.Search(len(score), func(m int) bool { return score[m] < s })
			best = slices.Insert(best, p, int32(j))
			score = slices.Insert(score, p, s)
			if len(best) > k {
				best, score = best[:k], score[:k]
			}
		}
		out[i] = best
	})
	return out
}

// strideRows returns n rows of base (rows of d) taken at an even stride.
func strideRows(base []float32, d, n int) []float32 {
	n0 := len(base) / d
	if n <= 0 || n >= n0 {
		return base
	}
	out := make([]float32, 0, n*d)
	for i := 0; i < n; i++ {
		out = append(out, vec.Row(base, d, i*n0/n)...)
	}
	return out
}
