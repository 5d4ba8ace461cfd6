package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/podsearch/podsearch/core/vec"
)

// OperatingPoint is the dense search setting an index is served with when a search leaves
// NProbe or RerankFactor at zero: chosen at build time (ChooseOperatingPoint) as the
// cheapest setting that reaches a target recall@10 on held-out sample queries, and recorded
// in the manifest.
type OperatingPoint struct {
	// NProbe is the number of inverted lists scanned; RerankFactor the re-rank factor.
	NProbe       int `json:"nprobe"`
	RerankFactor int `json:"rerank_factor"`
	// Target is the recall@10 asked for; Recall what the setting reached on Queries
	// held-out sample queries (against exact search over the index's vectors).
	Target  float64 `json:"target_recall"`
	Recall  float64 `json:"recall_at_10"`
	Queries int     `json:"queries"`
	// StdErr is the standard error of Recall over the queries (their per-query recalls'
	// standard deviation over the square root of their number): the setting was chosen so
	// that Recall - StdErr reaches Target.
	StdErr float64 `json:"std_err,omitempty"`
}

// Default search settings of an index without an operating point, and the largest re-rank
// factor a manifest may record.
const (
	defaultNProbe       = 16
	defaultRerankFactor = 4
	maxRerankFactor     = 1024
)

var (
	probeGrid = []int{4, 6, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 128, 192, 256, 384, 512, 768, 1024}
	// Factors past 32 serve large shards of near-duplicates, where the true top 10 lie
	// beyond the 320 best PQ candidates (docs/bench/index.md, 1,000,000 episodes); the cost
	// model makes them the choice only where smaller factors miss the target.
	rerankGrid = []int{4, 8, 12, 16, 20, 24, 32, 48, 64, 96, 128}
)

// ErrBelowTarget is wrapped by ChooseOperatingPoint's error when no setting reaches the
// target recall (it then returns the setting of highest recall).
var ErrBelowTarget = errors.New("index: operating point below the target recall")

// ChooseOperatingPoint measures recall@10 of s for the query vectors (row-major) against
// exact search over base (the vectors of the episodes named by ids, row-major), over a grid
// of nprobe and re-rank factors, and returns the cheapest setting that reaches target with
// one standard error of margin (Recall - StdErr >= target, the error over the queries). The
// cost of a setting is the codes it scans plus its re-rank candidates weighted by their code
// size (a 4-bit PQ code and 32 re-rank bytes count alike, 16 bytes of transform-quantized
// code), averaged over the queries. When no
// setting reaches target, the one of highest recall is returned with an error that says so.
//
// hardest, in (0, 1), keeps only that share of the queries whose nearest episode is least
// similar: listeners' short texts lie farther from every episode than synthetic queries made
// from episode text (a median nearest-episode cosine of 0.54 for real podcast queries against
// 0.75 for synthetic ones on the demo corpus), and a setting chosen on the hardest synthetic
// queries holds better for them. 0 or 1 keeps all.
func ChooseOperatingPoint(s *Searcher, queries, base []float32, ids []string, target, hardest float64) (OperatingPoint, error) {
	sample, err := NewOperatingSample(s.model.Metric, s.model.D, queries, base, ids, hardest)
	if err != nil {
		return OperatingPoint{}, err
	}
	return sample.Choose(s, target)
}

// OperatingSample is a set of sample queries with their exact top 10 among a build's
// episodes, computed once (the costly part: every query against every episode) and
// measured against any index of those episodes, e.g. each model a build tries.
type OperatingSample struct {
	metric Metric
	d      int
	qs     []float32         // the kept queries, normalised for cosine
	truth  []map[string]bool // their exact top 10 ids
}

// NewOperatingSample computes the exact top 10 of queries among base (the vectors of the
// episodes named by ids, row-major, width d) under metric, keeping the hardest share as
// ChooseOperatingPoint describes.
func NewOperatingSample(metric Metric, d int, queries, base []float32, ids []string, hardest float64) (*OperatingSample, error) {
	if d <= 0 || len(queries) == 0 || len(queries)%d != 0 || len(base) != len(ids)*d || len(ids) == 0 {
		return nil, fmt.Errorf("index: operating point needs query and episode vectors of width %d", d)
	}
	nq := len(queries) / d
	const k = 10
	qs := slices.Clone(queries)
	bs := base
	if metric == Cosine {
		normalizeRows(qs, d)
		bs = slices.Clone(base)
		normalizeRows(bs, d)
	}
	truth := make([]map[string]bool, nq)
	nearest := make([]float32, nq)
	vec.ParallelRows(nq, func(qi int) {
		q := vec.Row(qs, d, qi)
		var h topK
		h.reset(k)
		for i := range ids {
			var dist float32
			if metric == L2 {
				dist = vec.L2Sq(q, vec.Row(bs, d, i))
			} else {
				dist = -vec.Dot(q, vec.Row(bs, d, i))
			}
			if h.admits(dist) {
				h.push(entry{dist: dist, key: HashID(ids[i]), doc: uint32(i)})
			}
		}
		truth[qi] = map[string]bool{}
		for j, e := range h.sorted() {
			truth[qi][ids[e.doc]] = true
			if j == 0 {
				nearest[qi] = e.dist
			}
		}
	})
	if hardest > 0 && hardest < 1 {
		order := make([]int, nq)
		for i := range order {
			order[i] = i
		}
		// Largest distance of the nearest episode first (least similar).
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(nearest[b], nearest[a]) })
		keep := order[:max(1, int(hardest*float64(nq)))]
		slices.Sort(keep)
		hq := make([]float32, 0, len(keep)*d)
		ht := make([]map[string]bool, 0, len(keep))
		for _, qi := range keep {
			hq = append(hq, vec.Row(qs, d, qi)...)
			ht = append(ht, truth[qi])
		}
		qs, truth = hq, ht
	}
	return &OperatingSample{metric: metric, d: d, qs: qs, truth: truth}, nil
}

// Choose returns the cheapest setting of s that reaches target on the sample
// (ChooseOperatingPoint's rule); s must index the sample's episodes with its metric and width.
func (p *OperatingSample) Choose(s *Searcher, target float64) (OperatingPoint, error) {
	m := s.model
	d := m.D
	if m.Metric != p.metric || d != p.d {
		return OperatingPoint{}, fmt.Errorf("index: operating sample of %v, width %d, for an index of %v, width %d", p.metric, p.d, m.Metric, d)
	}
	if target <= 0 || target > 1 {
		return OperatingPoint{}, fmt.Errorf("index: target recall %v outside (0, 1]", target)
	}
	const k = 10
	qs, truth, nq := p.qs, p.truth, len(p.truth)
	rerankWeight := float64(m.rerankCodeSize()) / 32
	if m.TQ != nil {
		// Transform-quantized codes are read at random and unpacked lane by lane: measured
		// on the demo index (bench index, wasm scan), a 224-byte candidate costs about as
		// much as 14-17 scanned codes, twice what its bytes alone say.
		rerankWeight *= 2
	}
	if m.Exact {
		rerankWeight = float64(4*d) / 32
	}
	rerankGrid := rerankGrid
	if m.RerankBits() == 0 {
		rerankGrid = []int{1}
	}
	best, bestCost := OperatingPoint{}, 0.0
	highest := OperatingPoint{}
	for _, np := range probeGrid {
		np = min(np, m.NList)
		scanned := 0.0
		for qi := 0; qi < nq; qi++ {
			scanned += float64(s.probedEntries(vec.Row(qs, d, qi), np))
		}
		scanned /= float64(nq)
		for _, rf := range rerankGrid {
			cost := scanned + float64(k*rf)*rerankWeight
			if best.NProbe > 0 && cost >= bestCost {
				continue // cannot beat the cheapest found
			}
			var sum, sumSq float64 // of the per-query recalls
			for qi := 0; qi < nq; qi++ {
				hits, err := s.Search(context.Background(), vec.Row(qs, d, qi), SearchOptions{K: k, NProbe: np, RerankFactor: rf})
				if err != nil {
					return OperatingPoint{}, err
				}
				hit := 0
				for _, h := range hits {
					if truth[qi][h.ID] {
						hit++
					}
				}
				rq := float64(hit) / k
				sum, sumSq = sum+rq, sumSq+rq*rq
			}
			r := sum / float64(nq)
			se := math.Sqrt(max(0, sumSq/float64(nq)-r*r) / float64(nq))
			op := OperatingPoint{NProbe: np, RerankFactor: rf, Target: target, Recall: r, Queries: nq, StdErr: se}
			if r > highest.Recall {
				highest = op
			}
			// One standard error of margin: the sample is a few hundred queries, and a
			// setting that only just reaches the target on it falls short on about half of
			// the query sets listeners send.
			if r-se >= target {
				best, bestCost = op, cost
			}
		}
		if np == m.NList {
			break
		}
	}
	if best.NProbe == 0 {
		return highest, fmt.Errorf("%w: no setting reaches recall@10 %.3f on %d sample queries (best %.3f at nprobe %d, re-rank %d)",
			ErrBelowTarget, target, nq, highest.Recall, highest.NProbe, highest.RerankFactor)
	}
	return best, nil
}

// probedEntries is the number of codes a search of q (as searched: unit length for cosine)
// with nprobe lists scans over every view.
func (s *Searcher) probedEntries(q []float32, nprobe int) int {
	m := s.model
	var h topK
	h.reset(nprobe)
	qc := make([]float32, m.NList)
	m.centroidProducts(q, qc)
	for l := 0; l < m.NList; l++ {
		dist := m.listDistance(l, qc[l])
		if h.admits(dist) {
			h.push(entry{dist: dist, key: uint64(l)})
		}
	}
	n := 0
	for _, e := range h.e {
		for _, v := range s.views {
			n += v.Seg.listEntries(int(e.key))
		}
	}
	return n
}

// OperatingPoint is the setting searches of this Searcher use where theirs are zero (the
// index's recorded one, or nprobe 16 and re-rank factor 4).
func (s *Searcher) OperatingPoint() OperatingPoint { return s.op }

// SetOperatingPoint records op in the index's manifest, so that it is the default of every
// search of the index from now on (and of edges that open it).
func (ix *Index) SetOperatingPoint(op OperatingPoint) error {
	if op.NProbe <= 0 || op.RerankFactor <= 0 || op.RerankFactor > maxRerankFactor {
		return errors.New("index: an operating point needs nprobe >= 1 and a re-rank factor in 1..1024")
	}
	return ix.rewriteManifest(func(man *manifest) { man.Operating = &op })
}

// rewriteManifest applies change to a copy of the manifest, writes it (atomically) and
// serves the new state; an index opened for some shards only (a subset) refuses.
func (ix *Index) rewriteManifest(change func(*manifest)) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.subset {
		return errSubset
	}
	man := ix.man
	change(&man)
	if err := writeManifest(ix.dir, &man); err != nil {
		return err
	}
	ix.man = man
	return ix.refresh()
}

// Config names the index's composition, e.g. "IVF270,PQ128x4fs,TQ224,cosine".
func (ix *Index) Config() string { return ix.model().String() }

// BytesPerVector is the code memory per live or deleted episode over every open segment:
// the model's codes plus spilled entries (Segment.BytesPerVector).
func (ix *Index) BytesPerVector() float64 {
	sr := ix.Searcher()
	if sr == nil {
		return 0
	}
	total, n := 0.0, 0
	for _, v := range sr.views {
		total += v.Seg.BytesPerVector() * float64(v.Seg.Len())
		n += v.Seg.Len()
	}
	if n == 0 {
		return 0
	}
	return total / float64(n)
}
