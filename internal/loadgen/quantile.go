package loadgen

import (
	"slices"
	"time"
)

// Rank says which sample of n sorted ones stands for the p-quantile. The two benchmarks have
// always used different rules; each keeps its own so that its figures stay comparable with
// those published before.
type Rank int

const (
	// Lower takes index ⌊p·(n−1)⌋ (numpy's "lower"): `bench encoder`'s p50, p90 and p99.
	Lower Rank = iota
	// Upper takes index min(n−1, ⌊p·n⌋): `bench e2e`'s p50 and p99.
	Upper
)

// Quantile returns the p-quantile (0 <= p <= 1) of latencies sorted in ascending order (Sort),
// picked by rule r; 0 when there are none.
func Quantile(sorted []time.Duration, p float64, r Rank) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if r == Upper {
		return sorted[min(n-1, int(p*float64(n)))]
	}
	return sorted[int(p*float64(n-1))]
}

// Sort sorts latencies in ascending order, in place.
func Sort(lats []time.Duration) { slices.Sort(lats) }

// Millis is d in milliseconds, to the microsecond.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
