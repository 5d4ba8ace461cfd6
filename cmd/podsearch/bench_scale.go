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

// augmentVectors returns base (n0 unit rows of d) extended to n rows: each new row is a
// random real row plus Gaussian noise, renormalised, with the noise sized so that a new row's
// cosine to its source equals the median cosine between a real row and its nearest other real
// row (measured on a sample). The new vectors thus cluster where the real ones do, as densely
// as real neighbours lie; rows beyond n0 are reproducible for a seed.
func augmentVectors(base []float32, d, n int, seed uint64) ([]float32, float64) {
	n0 := len(base) / d
	if n <= n0 {
		return base[:n*d], 0
	}
	rng := rand.New(rand.NewPCG(seed, 0x7363616c65))
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
	c := math.Min(math.Max(cos[sample/2], 0.05), 0.999)
	sigma := math.Sqrt((1/(c*c) - 1) / float64(d))
	out := slices.Grow(slices.Clone(base), (n-n0)*d)
	row := make([]float32, d)
	for i := n0; i < n; i++ {
		src := vec.Row(base, d, rng.IntN(n0))
		for j := range row {
			row[j] = src[j] + float32(sigma*rng.NormFloat64())
		}
		vec.Normalize(row)
		out = append(out, row...)
	}
	return out, c
}
