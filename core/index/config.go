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

// Rerank is how a Model re-ranks the candidates of the PQ scan with finer codes.
type Rerank uint8

const (
	// RerankDefault is the zero value: Train uses RerankSQ8.
	RerankDefault Rerank = iota
	// RerankSQ8 re-ranks with 8-bit scalar-quantized codes (core/sq), "SQ8".
	RerankSQ8
	// RerankSQ4 re-ranks with 4-bit scalar-quantized codes, "SQ4".
	RerankSQ4
	// RerankTQ re-ranks with transform-quantized codes of at most Config.RerankBytes bytes
	// (core/tq: a PCA rotation with the bits spent on the axes of most variance, more
	// accurate per byte than scalar codes), "TQ<bytes>".
	RerankTQ
	// RerankFlat re-ranks with the exact float32 vectors, stored in the segment files and
	// read through the memory map for the k*factor candidates only (like FAISS's
	// IndexRefineFlat), "RFlat".
	RerankFlat
	// RerankNone does not re-rank: hits are ranked by their PQ distances, "noRerank".
	RerankNone
)

func (r Rerank) valid() bool { return r <= RerankNone }

// DefaultRerankBytes is the default transform-quantized re-rank code size for d-dimensional
// vectors: 7/16 byte per dimension, 224 bytes for 512-d (with the PQ codes and the spilled
// entries of `podsearch index` about 1/6 of float32).
func DefaultRerankBytes(d int) int { return max(1, d*7/16) }

// RerankOf reads the re-rank flags of `podsearch index` (--rerank-bits, --rerank-bytes):
// bytes > 0 is RerankTQ of that many bytes, bytes < 0 RerankTQ of DefaultRerankBytes;
// bytes 0 leaves the choice to bits: 8 (RerankSQ8), 4 (RerankSQ4), 32 (RerankFlat), -1
// (RerankNone) or 0 (RerankDefault), which must be one of these either way. It returns the
// kind and Config.RerankBytes.
func RerankOf(bits, bytes int) (Rerank, int, error) {
	kind, ok := map[int]Rerank{0: RerankDefault, 8: RerankSQ8, 4: RerankSQ4, exactBits: RerankFlat, -1: RerankNone}[bits]
	if !ok {
		return 0, 0, fmt.Errorf("index: re-rank bits %d, want 8, 4, 32 (exact float32) or -1 (none)", bits)
	}
	switch {
	case bytes > 0:
		return RerankTQ, bytes, nil
	case bytes < 0:
		return RerankTQ, 0, nil
	}
	return kind, 0, nil
}

// Config chooses how Train builds a Model. Zero fields take the defaults shown. The shape
// of a Config (metric, lists, PQ, re-rank) has a FAISS-style name, Config.String, that
// ParseConfig reads back.
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
	// Rerank is how the PQ candidates are re-ranked (default RerankSQ8).
	Rerank Rerank
	// RerankBytes is the size of a transform-quantized re-rank code with RerankTQ: at most
	// this many bytes per vector (default DefaultRerankBytes); ignored otherwise.
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
	if c.Rerank == RerankDefault {
		c.Rerank = RerankSQ8
	}
	if !c.Rerank.valid() {
		return c, fmt.Errorf("index: invalid re-rank kind %d", c.Rerank)
	}
	if c.RerankBytes < 0 {
		return c, fmt.Errorf("index: re-rank bytes %d < 0", c.RerankBytes)
	}
	if c.Rerank == RerankTQ && c.RerankBytes == 0 {
		c.RerankBytes = DefaultRerankBytes(d)
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
