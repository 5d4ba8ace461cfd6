package evaluate

import (
	"context"
	"fmt"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/metrics"
)

// Calibration is a set of judged queries a run chooses the default fusion's dense weight on
// (a BEIR folder's train split when the evaluated split is another): what `podsearch index
// --calibrate` does for an index of the corpus.
type Calibration struct {
	// Name says where the queries come from ("train").
	Name    string
	Queries []Query
}

// calibrationVectors are a Calibration's query vectors and BM25 scores for one section.
type calibrationVectors struct {
	base, tuned [][]float32
	kw          []Sparse
}

// encodeCalibration embeds the calibration queries with the base model and, when the run
// has one, the tuned model (a query tower encodes them itself; an adapter maps the base
// vectors), and scores them with BM25 against docs.
func (r *run) encodeCalibration(ctx context.Context, s Set) (*calibrationVectors, error) {
	if r.calib == nil {
		return nil, nil
	}
	texts := make([]string, len(r.calib.Queries))
	for i, q := range r.calib.Queries {
		texts[i] = q.Text
	}
	cv := &calibrationVectors{kw: BM25(s.Docs, r.calib.Queries)}
	var err error
	if cv.base, err = r.enc.Encode(ctx, s.Section+" "+r.calib.Name+" queries", texts); err != nil {
		return nil, err
	}
	switch ad := r.ad; {
	case ad == nil:
	case ad.Kind == adapter.Tower:
		if r.o.Tower == nil {
			return nil, fmt.Errorf("eval: a query tower needs its encoder")
		}
		cv.tuned, err = r.o.Tower.Encode(ctx, s.Section+" "+r.calib.Name+" queries (tuned tower)", texts)
	default:
		cv.tuned, err = ad.ApplyAll(cv.base, false)
	}
	return cv, err
}

// defaultFusionRows adds the row of the hybrid the product serves by default for model's
// vectors: z-score fusion of each side's candidates at index.DefaultDenseWeight or, with
// calibration vectors, at the weight index.PickFusion picks on them (nDCG@10, ties to the
// set's deepest recall).
func (r *run) defaultFusionRows(s Set, model string, qv, dv [][]float32, kw []Sparse, cv *calibrationVectors) error {
	k := metrics.MaxK(s.Metrics)
	depth := r.o.fusionDepth(k)
	w, label := index.DefaultDenseWeight, ""
	if cv != nil {
		cq := cv.base
		if model == Tuned {
			cq = cv.tuned
		}
		calib := Set{Section: s.Section, Docs: s.Docs, Queries: r.calib.Queries, Metrics: s.Metrics}
		lists, err := CandidateLists(cq, dv, cv.kw, depth)
		if err != nil {
			return err
		}
		best, err := chooseWeight(calib, lists, k)
		if err != nil {
			return err
		}
		w, label = best.DenseWeight, " (chosen on "+r.calib.Name+")"
		r.report.Notes = append(r.report.Notes, fmt.Sprintf("%s, %s: default fusion's dense weight %.1f chosen on %d %s queries (nDCG@10 %.3f, Recall@%d %.3f there)",
			s.Section, model, w, len(calib.Queries), r.calib.Name, best.NDCG10, recallDepth(s.Metrics), best.Recall))
	}
	lists, err := CandidateLists(qv, dv, kw, depth)
	if err != nil {
		return err
	}
	return r.fusedRows(s, lists, FuseOptions{Norm: NormZScore, DenseWeight: w}, k, fmt.Sprintf("hybrid default zscore w%.2f%s", w, label), model)
}

// chooseWeight fuses the calibration set's candidate lists at each of
// index.CalibrationWeights (z-score) and returns index.PickFusion's choice, recall taken at
// the set's deepest Recall cutoff.
func chooseWeight(calib Set, lists SideLists, k int) (index.FusionTrial, error) {
	rel := make([]map[string]int, len(calib.Queries))
	for i, q := range calib.Queries {
		rel[i] = q.Relevant
	}
	trials, err := index.FusionTrials(index.ZScore, rel, recallDepth(calib.Metrics), func(w float64) ([][]string, error) {
		ranked, err := lists.Fuse(FuseOptions{Norm: NormZScore, DenseWeight: w}, k)
		if err != nil {
			return nil, err
		}
		ids := make([][]string, len(ranked))
		for qi, r := range ranked {
			for _, d := range r {
				ids[qi] = append(ids[qi], calib.Docs[d].ID)
			}
		}
		return ids, nil
	})
	if err != nil {
		return index.FusionTrial{}, err
	}
	return index.PickFusion(trials)
}

// recallDepth is the deepest Recall cutoff among ms (30 when there is none).
func recallDepth(ms []metrics.Metric) int {
	k := 0
	for _, m := range ms {
		if m.Name == "recall" {
			k = max(k, m.K)
		}
	}
	if k == 0 {
		return 30
	}
	return k
}
