package index

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sort"

	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/vec"
)

// Spilling: an episode near the border of its inverted list is also stored in a second list,
// so a query that probes only the second list still finds it. Text queries lie off the
// distribution of the episode vectors the lists were trained on (docs/bench/index.md), and
// the lists they probe often miss their true neighbours; spilling guided by a sample of
// queries (RoarGraph, VLDB 2024, applied to IVF lists) puts those neighbours where such
// queries look. SOAR (ScaNN, NeurIPS 2023) spills without queries: the secondary list is
// chosen so that its residual is as orthogonal as possible to the primary one.

// SpillOptions chooses the secondary lists of episodes (Model.Spill).
type SpillOptions struct {
	// MaxLists bounds the lists one episode is stored in, its own included (default 2;
	// 1 disables spilling).
	MaxLists int
	// Queries holds sample query vectors, row-major (for example the corpus's synthetic
	// training queries, encoded): query-guided spilling. For each query, every episode among
	// its exact TopK neighbours whose list is not among the query's QueryProbe nearest lists
	// gets a vote for the query's nearest list; an episode takes its most voted lists.
	Queries []float32
	// QueryProbe is the number of nearest lists a sample query is taken to probe surely
	// (default 4).
	QueryProbe int
	// TopK is the number of exact neighbours of a sample query that should be reachable
	// (default 10).
	TopK int
	// Hardest, in (0, 1), lets only that share of the sample queries vote: those whose
	// nearest episode is least similar, the ones most like listeners' short texts
	// (ChooseOperatingPoint has the same knob). 0 or 1: every query votes.
	Hardest float64
	// Budget, when > 0, bounds the query-guided secondary entries to Budget per episode on
	// average: the lists most sample queries asked for are taken first. It is how a build
	// keeps its bytes per vector under a limit (Segment.BytesPerVector).
	Budget float64
	// SOAR, when > 0, gives every episode with room left (after query-guided spilling) a
	// secondary list minimising SOAR's loss |x-c'|² + λ((x-c')·r̂)² with λ = SOAR, where r̂
	// is the direction of the episode's residual in its own list.
	SOAR float64
}

// SpillStats counts what Spill assigned.
type SpillStats struct {
	// Episodes is the number of episodes; Guided and SOAR the secondary lists given by
	// query-guided spilling and by SOAR.
	Episodes, Guided, SOAR int
}

// ListsPerEpisode is the average number of lists an episode is stored in.
func (s SpillStats) ListsPerEpisode() float64 {
	if s.Episodes == 0 {
		return 0
	}
	return 1 + float64(s.Guided+s.SOAR)/float64(s.Episodes)
}

func (o SpillOptions) withDefaults() SpillOptions {
	if o.MaxLists <= 0 {
		o.MaxLists = 2
	}
	if o.QueryProbe <= 0 {
		o.QueryProbe = 4
	}
	if o.TopK <= 0 {
		o.TopK = 10
	}
	return o
}

// Spill returns the secondary lists of each of the n = len(vectors)/D episodes (row-major;
// normalised here for the cosine metric), for BuildSegmentSpill and Create: nil entries
// where an episode stays in its own list only.
func (m *Model) Spill(vectors []float32, opts SpillOptions) ([][]int32, SpillStats, error) {
	opts = opts.withDefaults()
	d := m.D
	if len(vectors)%d != 0 || len(opts.Queries)%d != 0 {
		return nil, SpillStats{}, fmt.Errorf("index: spill: vectors or queries are not rows of %d values", d)
	}
	if m.Metric == L2 || m.PQ.Bits != 4 {
		return nil, SpillStats{}, fmt.Errorf("index: spilling needs the cosine or inner-product metric and 4-bit PQ (model %s)", m)
	}
	if err := checkFinite(opts.Queries); err != nil {
		return nil, SpillStats{}, err
	}
	n := len(vectors) / d
	st := SpillStats{Episodes: n}
	if opts.MaxLists <= 1 || n == 0 || m.NList < 2 {
		return make([][]int32, n), st, nil
	}
	if m.Metric == Cosine {
		vectors = slices.Clone(vectors)
		normalizeRows(vectors, d)
	}
	assign := make([]int32, n)
	kmeans.Assign(vectors, d, m.Coarse, assign, make([]float32, n), runtime.GOMAXPROCS(0))
	extra := make([][]int32, n)
	if len(opts.Queries) > 0 {
		st.Guided = m.guidedSpill(vectors, assign, extra, opts)
	}
	if opts.SOAR > 0 {
		st.SOAR = m.soarSpill(vectors, assign, extra, opts)
	}
	return extra, st, nil
}

// guidedSpill adds query-guided secondary lists to extra and returns how many.
func (m *Model) guidedSpill(vectors []float32, assign []int32, extra [][]int32, opts SpillOptions) int {
	d := m.D
	n := len(vectors) / d
	nq := len(opts.Queries) / d
	type vote struct {
		episode int32
		list    int32
	}
	perQuery := make([][]vote, nq)
	nearest := make([]float32, nq)
	vec.ParallelRows(nq, func(qi int) {
		q := slices.Clone(vec.Row(opts.Queries, d, qi))
		if m.Metric == Cosine && !vec.Normalize(q) {
			return
		}
		var lists, near topK
		lists.reset(opts.QueryProbe)
		for l := 0; l < m.NList; l++ {
			if dist := -vec.Dot(q, vec.Row(m.Coarse, d, l)); lists.admits(dist) {
				lists.push(entry{dist: dist, key: uint64(l)})
			}
		}
		near.reset(opts.TopK)
		for i := 0; i < n; i++ {
			if dist := -vec.Dot(q, vec.Row(vectors, d, i)); near.admits(dist) {
				near.push(entry{dist: dist, key: uint64(i)})
			}
		}
		probed := lists.sorted()
		target := int32(probed[0].key)
		top := near.sorted()
		if len(top) > 0 {
			nearest[qi] = top[0].dist
		}
		for _, e := range top {
			own := assign[e.key]
			if !slices.ContainsFunc(probed, func(p entry) bool { return int32(p.key) == own }) {
				perQuery[qi] = append(perQuery[qi], vote{int32(e.key), target})
			}
		}
	})
	if opts.Hardest > 0 && opts.Hardest < 1 {
		order := make([]int, nq)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(nearest[b], nearest[a]) })
		for _, qi := range order[max(1, int(opts.Hardest*float64(nq))):] {
			perQuery[qi] = nil
		}
	}
	counts := map[vote]int{}
	for _, vs := range perQuery {
		for _, v := range vs {
			counts[v]++
		}
	}
	// Most asked-for first; ties by episode and list, so the result does not depend on map
	// order.
	all := make([]vote, 0, len(counts))
	for v := range counts {
		all = append(all, v)
	}
	sort.Slice(all, func(a, b int) bool {
		ca, cb := counts[all[a]], counts[all[b]]
		if ca != cb {
			return ca > cb
		}
		if all[a].episode != all[b].episode {
			return all[a].episode < all[b].episode
		}
		return all[a].list < all[b].list
	})
	limit := len(all)
	if opts.Budget > 0 {
		limit = min(limit, int(opts.Budget*float64(n)))
	}
	added := 0
	for _, v := range all {
		if added >= limit {
			break
		}
		if 1+len(extra[v.episode]) >= opts.MaxLists {
			continue
		}
		extra[v.episode] = append(extra[v.episode], v.list)
		added++
	}
	return added
}

// soarCandidates is how many of an episode's nearest lists SOAR's loss is evaluated on.
const soarCandidates = 16

// soarSpill gives every episode with room left a SOAR secondary list; it returns how many.
func (m *Model) soarSpill(vectors []float32, assign []int32, extra [][]int32, opts SpillOptions) int {
	d := m.D
	n := len(vectors) / d
	lambda := float32(opts.SOAR)
	added := make([]bool, n)
	vec.ParallelRows(n, func(i int) {
		if 1+len(extra[i]) >= opts.MaxLists {
			return
		}
		x := vec.Row(vectors, d, i)
		own := int(assign[i])
		r := vec.Sub(make([]float32, d), x, vec.Row(m.Coarse, d, own))
		if !vec.Normalize(r) {
			return
		}
		var near topK
		near.reset(soarCandidates)
		for l := 0; l < m.NList; l++ {
			if dist := vec.L2Sq(x, vec.Row(m.Coarse, d, l)); near.admits(dist) {
				near.push(entry{dist: dist, key: uint64(l)})
			}
		}
		rp := make([]float32, d)
		best, bestLoss := -1, float32(0)
		for _, e := range near.sorted() {
			l := int(e.key)
			if l == own || slices.Contains(extra[i], int32(l)) {
				continue
			}
			vec.Sub(rp, x, vec.Row(m.Coarse, d, l))
			par := vec.Dot(rp, r)
			if loss := e.dist + lambda*par*par; best < 0 || loss < bestLoss {
				best, bestLoss = l, loss
			}
		}
		if best >= 0 {
			extra[i] = append(extra[i], int32(best))
			added[i] = true
		}
	})
	c := 0
	for _, a := range added {
		if a {
			c++
		}
	}
	return c
}

// spillEntries are a segment's spilled entries while it is built: per list, the episodes
// (numbers in list order) and their PQ codes relative to that list's centroid, row-major.
type spillEntries struct {
	start []uint32 // NList+1
	doc   []uint32
	raw   []byte
}

// buildSpill encodes the secondary entries extra asks for. vectors are the docs' (as
// encoded: normalised for cosine), assign their own lists, order the doc index of each
// episode number. nil extra (or no secondary list at all) gives nil.
func buildSpill(m *Model, vectors []float32, assign []int32, order []int, extra [][]int32) (*spillEntries, error) {
	if extra == nil {
		return nil, nil
	}
	n := len(order)
	if len(extra) != n {
		return nil, fmt.Errorf("index: %d spill assignments for %d episodes", len(extra), n)
	}
	buckets := make([][]uint32, m.NList)
	total := 0
	for p, i := range order {
		for k, l := range extra[i] {
			if l < 0 || int(l) >= m.NList {
				return nil, fmt.Errorf("index: episode %d spills to list %d of %d", i, l, m.NList)
			}
			if l == assign[i] || slices.Contains(extra[i][:k], l) {
				continue
			}
			buckets[l] = append(buckets[l], uint32(p))
			total++
		}
	}
	if total == 0 {
		return nil, nil
	}
	if m.Metric == L2 || m.PQ.Bits != 4 {
		return nil, fmt.Errorf("index: spilling needs the cosine or inner-product metric and 4-bit PQ (model %s)", m)
	}
	sp := &spillEntries{start: make([]uint32, m.NList+1), doc: make([]uint32, 0, total)}
	lists := make([]int32, 0, total)
	for l, b := range buckets {
		sp.doc = append(sp.doc, b...)
		for range b {
			lists = append(lists, int32(l))
		}
		sp.start[l+1] = uint32(len(sp.doc))
	}
	M, d := m.PQ.M, m.D
	sp.raw = make([]byte, total*M)
	vec.ParallelRows(total, func(e int) {
		x := vec.Row(vectors, d, order[sp.doc[e]])
		r := vec.Sub(make([]float32, d), x, vec.Row(m.Coarse, d, int(lists[e])))
		m.PQ.Encode(r, sp.raw[e*M:(e+1)*M])
	})
	return sp, nil
}

// SpillEntries is the number of secondary (spilled) entries the segment stores.
func (s *Segment) SpillEntries() int { return len(s.spillDoc) }

// BytesPerVector is the code memory per episode of this segment: the model's, plus the PQ
// codes and episode numbers of spilled entries spread over the episodes.
func (s *Segment) BytesPerVector() float64 {
	b := s.model.BytesPerVector()
	if s.n > 0 && len(s.spillDoc) > 0 {
		b += float64(len(s.spillDoc)) * (float64(s.model.PQ.M*s.model.PQ.Bits)/8 + 4) / float64(s.n)
	}
	return b
}
