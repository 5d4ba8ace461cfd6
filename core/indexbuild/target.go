package indexbuild

import (
	"errors"
	"log/slog"

	"github.com/podsearch/podsearch/core/index"
)

// RerankLadder is the re-rank codes a build steps up to, in order, when no operating point
// reaches the target recall with the codes it was configured with: 8-bit scalar codes (d
// bytes a vector), then the exact float32 vectors (4d bytes, memory-mapped and read for the
// candidates only). Rungs no larger than the current codes are skipped.
//
// Why: with many near-duplicate episodes (a large catalogue) a query's ten nearest lie
// within the re-rank codes' error of each other, and probing more lists cannot help; the
// measured cap was recall@10 0.94 at 100,000 episodes with 224-byte transform-quantized
// codes, 0.98 with 8-bit codes at a sixth of the probes (docs/bench/index.md).
var RerankLadder = []index.Rerank{index.RerankSQ8, index.RerankFlat}

// Chooser builds an index of model's shape over the build's episodes (spill assignments
// kept) and returns its operating point (index.ChooseOperatingPoint's result and error).
type Chooser func(model *index.Model) (index.OperatingPoint, error)

// ReachTarget returns the model and operating point of the build: choose(model) first, and
// when that misses the target (index.ErrBelowTarget) and climb is true, the same model with
// finer re-rank codes (RerankLadder, trained on vectors with seed) until one reaches it or
// the ladder ends (the last try's model, point and error are then returned). Other errors
// stop at once.
func ReachTarget(model *index.Model, vectors []float32, seed uint64, climb bool, choose Chooser) (*index.Model, index.OperatingPoint, error) {
	op, err := choose(model)
	if !climb || !errors.Is(err, index.ErrBelowTarget) {
		return model, op, err
	}
	have := rerankBytes(model)
	for _, r := range RerankLadder {
		if rungBytes(r, model.D) <= have {
			continue
		}
		slog.Warn("operating point below target: stepping up the re-rank codes",
			"from", model.String(), "best_recall", op.Recall, "nprobe", op.NProbe, "rerank", op.RerankFactor)
		finer, ferr := model.WithRerank(vectors, r, 0, seed)
		if ferr != nil {
			return model, op, ferr
		}
		model = finer
		if op, err = choose(model); !errors.Is(err, index.ErrBelowTarget) {
			return model, op, err
		}
		have = rerankBytes(model)
	}
	return model, op, err
}

// rerankBytes is the bytes of one vector's re-rank code in m.
func rerankBytes(m *index.Model) float64 {
	b := m.BytesPerVector() - float64(m.PQ.M*m.PQ.Bits)/8
	if m.Metric == index.L2 {
		b -= 4
	}
	return b
}

// rungBytes is the bytes of one d-dimensional vector's re-rank code of kind r.
func rungBytes(r index.Rerank, d int) float64 {
	switch r {
	case index.RerankSQ4:
		return float64(d) / 2
	case index.RerankSQ8:
		return float64(d)
	case index.RerankFlat:
		return 4 * float64(d)
	}
	return 0
}
