package index

import (
	"fmt"
	"math"
	"strings"
)

// Metric is the similarity an index ranks by.
type Metric uint8

const (
	// Cosine ranks by cosine similarity: vectors and queries are normalised to unit length,
	// then compared by inner product.
	Cosine Metric = iota + 1
	// InnerProduct ranks by the raw inner product (higher is closer).
	InnerProduct
	// L2 ranks by Euclidean distance (smaller is closer).
	L2
)

// String names the metric as ParseMetric reads it.
func (m Metric) String() string {
	switch m {
	case Cosine:
		return "cosine"
	case InnerProduct:
		return "ip"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("metric(%d)", m)
}

// ParseMetric reads "cosine", "ip" (or "inner_product", "dot") or "l2".
func ParseMetric(s string) (Metric, error) {
	switch strings.ToLower(s) {
	case "cosine", "cos":
		return Cosine, nil
	case "ip", "inner_product", "dot":
		return InnerProduct, nil
	case "l2", "euclidean":
		return L2, nil
	}
	return 0, fmt.Errorf("index: unknown metric %q (want cosine, ip or l2)", s)
}

func (m Metric) valid() bool { return m >= Cosine && m <= L2 }

// Config chooses how Train builds a Model. Zero fields take the defaults shown.
type Config struct {
	// Metric is the similarity (default Cosine).
	Metric Metric
	// NList is the number of inverted lists (coarse centroids); default 4*sqrt(n), at most
	// n/39 so every centroid gets enough training points, at least 1.
	NList int
	// M is the number of product-quantizer sub-vectors; default D/4 for 4-bit codes and
	// D/8 for 8-bit codes (so 4-bit codes take D/8 bytes and 8-bit ones D/8 bytes too).
	M int
	// Bits is the PQ code width: 4 (the fast-scan layout, default) or 8.
	Bits int
	// RerankBits is the width of the copy used to re-rank PQ candidates: 8 (default) or 4
	// for scalar-quantized codes, 32 for the exact float32 vectors (stored in the segment
	// files and read through the memory map for the k*factor candidates only, like FAISS's
	// IndexRefineFlat), or -1 for no re-ranking (PQ distances only).
	RerankBits int
	// RerankBytes, when > 0, replaces RerankBits: candidates are re-ranked with
	// transform-quantized codes of at most this many bytes (core/tq: a PCA rotation with
	// the bits spent on the axes of most variance), which keeps more accuracy per byte
	// than scalar codes.
	RerankBytes int
	// TrainSize bounds the vectors used for training (default 100,000, sampled).
	TrainSize int
	// Iters is the number of k-means iterations (default 20).
	Iters int
	// Seed makes training reproducible.
	Seed uint64
	// Fingerprint names the model that made the vectors (the encoder's Fingerprint); files
	// of one fingerprint refuse to open as another.
	Fingerprint string
}

// withDefaults fills zero fields for n vectors of width d.
func (c Config) withDefaults(n, d int) (Config, error) {
	if c.Metric == 0 {
		c.Metric = Cosine
	}
	if !c.Metric.valid() {
		return c, fmt.Errorf("index: invalid metric %d", c.Metric)
	}
	if c.Bits == 0 {
		c.Bits = 4
	}
	if c.Bits != 4 && c.Bits != 8 {
		return c, fmt.Errorf("index: PQ bits %d, want 4 or 8", c.Bits)
	}
	if c.M == 0 {
		c.M = d / 4
		if c.Bits == 8 {
			c.M = d / 8
		}
		c.M = max(c.M, 1)
		for d%c.M != 0 {
			c.M--
		}
	}
	if c.RerankBits == 0 {
		c.RerankBits = 8
	}
	if c.RerankBits != 8 && c.RerankBits != 4 && c.RerankBits != exactBits && c.RerankBits != -1 {
		return c, fmt.Errorf("index: re-rank bits %d, want 8, 4, 32 (exact float32) or -1 (none)", c.RerankBits)
	}
	if c.RerankBytes < 0 {
		return c, fmt.Errorf("index: re-rank bytes %d < 0", c.RerankBytes)
	}
	if c.TrainSize <= 0 {
		c.TrainSize = 100_000
	}
	nt := min(n, c.TrainSize)
	if c.NList == 0 {
		c.NList = int(math.Round(4 * math.Sqrt(float64(n))))
		c.NList = max(1, min(c.NList, nt/39))
	}
	if c.NList <= 0 || c.NList > nt {
		return c, fmt.Errorf("index: %d lists for %d training vectors", c.NList, nt)
	}
	if len(c.Fingerprint) > fingerprintLen {
		return c, fmt.Errorf("index: fingerprint longer than %d bytes", fingerprintLen)
	}
	return c, nil
}
