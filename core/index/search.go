package index

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/vec"
)

// Filter restricts a search to episodes matching every non-empty field. It is applied
// inside the scan: an episode that does not match never takes a place among the
// candidates, so a selective filter still returns K hits when K exist in the probed lists.
type Filter struct {
	// Languages keeps episodes in any of these languages.
	Languages []string
	// ShowIDs keeps episodes of any of these shows.
	ShowIDs []string
	// From and To bound the publication date, inclusive; a zero time leaves that side open.
	// Episodes without a date are excluded when either bound is set.
	From, To time.Time
}

func (f *Filter) empty() bool {
	return f == nil || (len(f.Languages) == 0 && len(f.ShowIDs) == 0 && f.From.IsZero() && f.To.IsZero())
}

// SearchOptions tunes one dense search.
type SearchOptions struct {
	// K is the number of hits (default 10).
	K int
	// NProbe is the number of inverted lists scanned (default: the index's operating point,
	// else 16; at most NList). A filtered search that finds fewer than K matching episodes
	// in the probed lists probes wider, up to every list, so it returns K hits whenever K
	// live episodes match.
	NProbe int
	// RerankFactor: the K*RerankFactor best PQ candidates are re-ranked with the re-rank
	// codes (default: the index's operating point, else 4; 1 or a model without re-rank
	// codes keeps PQ distances).
	RerankFactor int
	// Filter restricts the hits; nil keeps all.
	Filter *Filter
}

// withDefaults fills o's zero fields from op (the searcher's operating point).
func (o SearchOptions) withDefaults(nlist int, op OperatingPoint) SearchOptions {
	if o.K <= 0 {
		o.K = 10
	}
	if o.NProbe <= 0 {
		o.NProbe = op.NProbe
	}
	o.NProbe = min(o.NProbe, nlist)
	if o.RerankFactor <= 0 {
		o.RerankFactor = op.RerankFactor
	}
	return o
}

// Hit is one search result.
type Hit struct {
	// Doc is the episode's stored metadata (Text is empty: it is not stored).
	Doc
	// Score is higher for closer episodes: the cosine similarity or inner product, the
	// negative squared L2 distance, the BM25 score, or the fused score.
	Score float32
	// Shard is the shard the episode lives in.
	Shard int
}

// View is a segment as searched: its shard and its deleted episodes.
type View struct {
	Seg   *Segment
	Shard int
	// Deleted marks deleted episodes by number (nil: none).
	Deleted []bool
	// Kernel runs the segment's scan and re-rank loops; nil runs them natively in Go.
	// Either way the hits are the same.
	Kernel Kernel
}

// Searcher searches a fixed set of segments of one model together. It is safe for
// concurrent use.
type Searcher struct {
	model *Model
	views []View
	op    OperatingPoint // defaults of searches (OperatingPoint)
	// fusion is the hybrid default recorded in the manifest (Fusion); zero for none.
	fusion FusionSetting
	// nativeScan / nativeRerank: some view scans / re-ranks with the native kernel (which
	// then needs the pair table / the prepared re-rank query).
	nativeScan, nativeRerank bool
	scratch                  sync.Pool
	scorers                  sync.Pool
}

// NewSearcher checks that all views share one model and returns their Searcher.
func NewSearcher(views []View) (*Searcher, error) {
	return NewSearcherWithStats(views, nil)
}

// NewSearcherWithStats is NewSearcher with the keyword statistics of a whole index of which
// views are a part (the file its manifest names; OpenOptions.Shards uses it), so that
// keyword scores equal a whole-index search's; nil counts them over views.
func NewSearcherWithStats(views []View, stats *bm25.Stats) (*Searcher, error) {
	if len(views) == 0 {
		return nil, errors.New("index: no segments to search")
	}
	m := views[0].Seg.model
	id := m.ID()
	for _, v := range views[1:] {
		if v.Seg.model != m && v.Seg.model.ID() != id {
			return nil, fmt.Errorf("index: segments of different models (%s and %s) cannot be searched together", id, v.Seg.model.ID())
		}
	}
	for _, v := range views {
		if v.Deleted != nil && len(v.Deleted) != v.Seg.n {
			return nil, fmt.Errorf("index: %d tombstone flags for %d episodes", len(v.Deleted), v.Seg.n)
		}
	}
	s := &Searcher{model: m, views: views, op: OperatingPoint{NProbe: defaultNProbe, RerankFactor: defaultRerankFactor}}
	for _, v := range views {
		s.nativeScan = s.nativeScan || v.Kernel == nil
		s.nativeRerank = s.nativeRerank || v.Kernel == nil || !v.Kernel.Reranks()
	}
	s.scorers.New = func() any {
		bv := make([]bm25.View, len(views))
		for i, v := range views {
			bv[i] = bm25View(v)
		}
		return bm25.NewScorerWithStats(bv, bm25.DefaultParams, stats)
	}
	return s, nil
}

// bm25View is v's keyword index with v's tombstones.
func bm25View(v View) bm25.View {
	bv := bm25.View{Seg: v.Seg.bm}
	if del := v.Deleted; del != nil {
		bv.Deleted = func(d uint32) bool { return del[d] }
	}
	return bv
}

// Model is the model of the searched segments.
func (s *Searcher) Model() *Model { return s.model }

// Views are the searched segments with their shards and tombstones (read only).
func (s *Searcher) Views() []View { return s.views }

// Len is the number of live (not deleted) episodes.
func (s *Searcher) Len() int {
	n := 0
	for _, v := range s.views {
		n += v.Seg.n
		for _, d := range v.Deleted {
			if d {
				n--
			}
		}
	}
	return n
}

type scratch struct {
	q      []float32
	qc     []float32
	coarse candidates
	lut    []float32
	qlut   []uint8
	pair   *pq.PairTable
	out16  []uint16
	outF   []float32
	cands  candidates
	final  topK
	filt   []viewFilter
	docs   []uint32
	dists  []float32
	ranges []Range
	lists  []int
	native nativeKernel
	calls  []KernelCall // per view, begun by call
	// seen marks, per view with spilled entries, the episodes pushed in this search
	// (seenBefore): seen[view][p].epoch == epoch, and the best distance pushed.
	seen  [][]seenMark
	epoch uint32
}

func (s *Searcher) getScratch() *scratch {
	if sc, ok := s.scratch.Get().(*scratch); ok {
		return sc
	}
	m := s.model
	sc := &scratch{q: make([]float32, m.D), lut: make([]float32, m.PQ.M*m.PQ.Ksub())}
	if m.PQ.Bits == 4 {
		sc.qlut = make([]uint8, m.PQ.M*16)
		sc.pair, _ = pq.NewPairTable(sc.qlut, m.PQ.M)
	}
	sc.filt = make([]viewFilter, len(s.views))
	sc.calls = make([]KernelCall, len(s.views))
	sc.seen = make([][]seenMark, len(s.views))
	return sc
}

// viewFilter is a Filter resolved against one segment's dictionaries.
type viewFilter struct {
	active   bool
	langOK   []bool
	showOK   []bool
	from, to int64
	dated    bool
}

func (f *viewFilter) resolve(flt *Filter, seg *Segment) {
	*f = viewFilter{}
	if flt.empty() {
		return
	}
	f.active = true
	if len(flt.Languages) > 0 {
		f.langOK = make([]bool, len(seg.langDict))
		for _, l := range flt.Languages {
			if i, ok := seg.langIndex[l]; ok {
				f.langOK[i] = true
			}
		}
	}
	if len(flt.ShowIDs) > 0 {
		f.showOK = make([]bool, len(seg.showDict))
		for _, id := range flt.ShowIDs {
			if i, ok := seg.showIndex[id]; ok {
				f.showOK[i] = true
			}
		}
	}
	f.from, f.to = math.MinInt64+1, math.MaxInt64
	if !flt.From.IsZero() {
		f.from, f.dated = flt.From.Unix(), true
	}
	if !flt.To.IsZero() {
		f.to, f.dated = flt.To.Unix(), true
	}
}

func (f *viewFilter) pass(seg *Segment, p int) bool {
	if !f.active {
		return true
	}
	if f.langOK != nil && !f.langOK[seg.langs[p]] {
		return false
	}
	if f.showOK != nil && !f.showOK[seg.shows[p]] {
		return false
	}
	if f.dated {
		d := seg.dates[p]
		if d == noDate || d < f.from || d > f.to {
			return false
		}
	}
	return true
}

// Search returns the opts.K episodes closest to query. A Kernel that runs the scan in
// bounded steps (the WebAssembly one) stops with ctx's error once ctx is done.
func (s *Searcher) Search(ctx context.Context, query []float32, opts SearchOptions) ([]Hit, error) {
	sc := s.getScratch()
	defer s.scratch.Put(sc)
	es, err := s.search(ctx, sc, query, opts)
	if err != nil {
		return nil, err
	}
	return s.hits(es, func(e entry) float32 { return -e.dist }), nil
}

func (s *Searcher) hits(es []entry, score func(entry) float32) []Hit {
	out := make([]Hit, len(es))
	for i, e := range es {
		v := s.views[e.view]
		out[i] = Hit{Doc: v.Seg.doc(int(e.doc)), Score: score(e), Shard: v.Shard}
	}
	return out
}

func (s *Searcher) search(ctx context.Context, sc *scratch, query []float32, opts SearchOptions) ([]entry, error) {
	m := s.model
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(query) != m.D {
		return nil, fmt.Errorf("index: query has %d values, the index holds %d-d vectors", len(query), m.D)
	}
	if err := checkFinite(query); err != nil {
		return nil, err
	}
	opts = opts.withDefaults(m.NList, s.op)
	q := sc.q
	copy(q, query)
	if m.Metric == Cosine {
		vec.Normalize(q)
	}
	for i := range s.views {
		sc.filt[i].resolve(opts.Filter, s.views[i].Seg)
	}
	// Coarse step: lists to probe. With q.c computed once per list, L2 uses
	// |q - c|^2 = |q|^2 + |c|^2 - 2 q.c and inner products -q.c.
	var qq float32
	if m.Metric == L2 {
		qq = vec.Dot(q, q)
	}
	if cap(sc.qc) < m.NList {
		sc.qc = make([]float32, m.NList)
	}
	qc := sc.qc[:m.NList]
	filtered := !opts.Filter.empty()
	defer sc.endCalls()
	m.centroidProducts(q, qc)
probe:
	sc.coarse.reset(opts.NProbe)
	for l := 0; l < m.NList; l++ {
		d := m.listDistance(l, qc[l])
		if sc.coarse.admits(d) {
			sc.coarse.push(entry{dist: d, key: uint64(l)})
		}
	}
	probes := sc.coarse.sorted()
	// LUT: IP: -<q_j, centroid>; L2: -2<q_j, centroid>, the residual part of
	// |q - c - r|^2 = |q|^2 + |c + r|^2 - 2<q, c> - 2<q, r> with |c + r|^2 stored per episode.
	lutScale := float32(-1)
	if m.Metric == L2 {
		lutScale = -2
	}
	m.PQ.InnerProductLUT(q, lutScale, sc.lut)
	var bias, inv float32
	usePair := false
	if m.PQ.Bits == 4 {
		var scale float32
		bias, scale = pq.QuantizeLUT(sc.lut, m.PQ.M, 16, sc.qlut)
		inv = 1 / scale
		// Expanding the pair table costs M*256 writes and saves M*16 lookups per block:
		// worth it from 16 blocks on; below, the reference scan is cheaper (same results).
		blocks := 0
		for _, pr := range probes {
			for vi := range s.views {
				bs := s.views[vi].Seg.blockStart
				blocks += int(bs[pr.key+1] - bs[pr.key])
			}
		}
		// Only the native kernel reads the pair table: skip it when every view has a Kernel.
		if usePair = blocks >= 16 && s.nativeScan; usePair {
			sc.pair.Reset(sc.qlut)
		}
	}
	useRerank := m.RerankBits() > 0 && opts.RerankFactor > 1
	nc := opts.K
	if useRerank {
		nc = opts.K * opts.RerankFactor
	}
	tables := &QueryTables{Query: q, L2: m.Metric == L2}
	if m.PQ.Bits == 4 {
		tables.QLUT = sc.qlut
	} else {
		tables.LUT = sc.lut
	}
	rq := sc.native.rq
	sc.native = nativeKernel{sc: sc, usePair: usePair, q: q}
	if useRerank && !m.Exact && s.nativeRerank {
		sc.native.rq = m.prepareRerank(q, rq)
	}
	sc.cands.reset(nc)
	sc.nextEpoch()
	pass := scanPass{tables: tables, probes: probes, qq: qq, qc: qc, bias: bias, inv: inv}
	for vi := range s.views {
		err := s.scanView(ctx, sc, vi, &pass)
		if err != nil {
			return nil, err
		}
	}
	if filtered && len(sc.cands.e) < opts.K && opts.NProbe < m.NList {
		// Too few matching episodes in the probed lists: probe wider (up to every list), so
		// a selective filter still fills K whenever K live episodes match.
		sc.endCalls()
		opts.NProbe = min(m.NList, opts.NProbe*4)
		goto probe
	}
	if !useRerank {
		return sc.cands.sorted(), nil
	}
	// The re-rank needs the candidates, not their order: the final heap orders them.
	cands := sc.cands.top()
	sc.final.reset(opts.K)
	// Re-rank view by view (a kernel is leased per view).
	for vi := range s.views {
		sc.docs = sc.docs[:0]
		for _, e := range cands {
			if int(e.view) == vi {
				sc.docs = append(sc.docs, e.doc)
			}
		}
		if len(sc.docs) == 0 {
			continue
		}
		if cap(sc.dists) < len(sc.docs) {
			sc.dists = make([]float32, len(sc.docs))
		}
		dists := sc.dists[:len(sc.docs)]
		if err := s.rerankView(ctx, sc, vi, tables, dists); err != nil {
			return nil, err
		}
		for _, e := range cands {
			if int(e.view) != vi {
				continue
			}
			e.dist = dists[0]
			dists = dists[1:]
			sc.final.push(e)
		}
	}
	return sc.final.sorted(), nil
}

// scanPass is what one query's scan of the probed lists needs, the same for every view.
type scanPass struct {
	// tables are the query's lookup tables (and the query) handed to the kernels.
	tables *QueryTables
	// probes are the probed lists (entry.key the list number), closest first.
	probes []entry
	// qq is |q|^2 (L2 only) and qc[l] is <q, centroid l>: they give a list's distance
	// offset.
	qq float32
	qc []float32
	// bias and inv undo the 4-bit tables' quantization: dist = bias + sum*inv.
	bias, inv float32
}

// scanView scans the probed lists of view vi into the candidate heap: one kernel call for
// all of the segment's probed lists, then the offsets, filters and tombstones in Go.
func (s *Searcher) scanView(ctx context.Context, sc *scratch, vi int, p *scanPass) error {
	t, probes, qq, qc, bias, inv := p.tables, p.probes, p.qq, p.qc, p.bias, p.inv
	m := s.model
	v := &s.views[vi]
	seg := v.Seg
	four := m.PQ.Bits == 4
	sc.ranges, sc.lists = sc.ranges[:0], sc.lists[:0]
	total := 0
	for _, pr := range probes {
		l := int(pr.key)
		a, b := int(seg.listStart[l]), int(seg.listStart[l+1])
		if a == b {
			continue
		}
		r := Range{a, b}
		if four {
			r = Range{int(seg.blockStart[l]), int(seg.blockStart[l+1])}
			total += (r.End - r.Start) * pq.BlockSize
		} else {
			total += b - a
		}
		sc.ranges = append(sc.ranges, r)
		sc.lists = append(sc.lists, l)
	}
	if len(sc.ranges) == 0 {
		return nil
	}
	kc, err := s.call(ctx, sc, vi, t)
	if err != nil {
		return err
	}
	if four {
		if cap(sc.out16) < total {
			sc.out16 = make([]uint16, total)
		}
		err = kc.FastScan4(sc.ranges, sc.out16[:total])
	} else {
		if cap(sc.outF) < total {
			sc.outF = make([]float32, total)
		}
		err = kc.Scan8(sc.ranges, sc.outF[:total])
	}
	if err != nil {
		return err
	}
	f := &sc.filt[vi]
	pos := 0
	for i, l := range sc.lists {
		off := -qc[l]
		if m.Metric == L2 {
			off = qq - 2*qc[l]
		}
		a, b := int(seg.listStart[l]), int(seg.listStart[l+1])
		if four {
			out := sc.out16[pos : pos+seg.listEntries(l)]
			pos += (sc.ranges[i].End - sc.ranges[i].Start) * pq.BlockSize
			base := off + bias
			if seg.norms == nil {
				// Most entries cannot enter the heap: check that inline before the call.
				for j, sum := range out[:b-a] {
					if d := base + float32(sum)*inv; sc.cands.admits(d) {
						s.offer(sc, v, vi, f, a+j, d)
					}
				}
			} else {
				for j, sum := range out[:b-a] {
					s.offer(sc, v, vi, f, a+j, base+float32(sum)*inv+seg.norms[a+j])
				}
			}
			if len(out) > b-a { // spilled entries (no L2 norms: spilling refuses L2)
				spilled := seg.spillDoc[seg.spillStart[l]:seg.spillStart[l+1]]
				for j, sum := range out[b-a:] {
					if d := base + float32(sum)*inv; sc.cands.admits(d) {
						s.offer(sc, v, vi, f, int(spilled[j]), d)
					}
				}
			}
			continue
		}
		out := sc.outF[pos : pos+b-a]
		pos += b - a
		for j, d := range out {
			dist := off + d
			if seg.norms != nil {
				dist += seg.norms[a+j]
			}
			s.offer(sc, v, vi, f, a+j, dist)
		}
	}
	return nil
}

// rerankView writes the re-rank distances of sc.docs (episodes of view vi) to out.
func (s *Searcher) rerankView(ctx context.Context, sc *scratch, vi int, t *QueryTables, out []float32) error {
	if k := s.views[vi].Kernel; k == nil || !k.Reranks() {
		sc.native.seg = s.views[vi].Seg
		return sc.native.Rerank(sc.docs, out)
	}
	kc, err := s.call(ctx, sc, vi, t)
	if err != nil {
		return err
	}
	return kc.Rerank(sc.docs, out)
}

// call returns the kernel call of view vi for this query: the native kernel pointed at the
// view's segment, or the view's Kernel, begun on first use and ended by endCalls, so the
// scan and the re-rank of a view share one lease.
func (s *Searcher) call(ctx context.Context, sc *scratch, vi int, t *QueryTables) (KernelCall, error) {
	v := &s.views[vi]
	if v.Kernel == nil {
		sc.native.seg = v.Seg
		return &sc.native, nil
	}
	if sc.calls[vi] == nil {
		kc, err := v.Kernel.Begin(ctx, t)
		if err != nil {
			return nil, err
		}
		sc.calls[vi] = kc
	}
	return sc.calls[vi], nil
}

// endCalls ends the kernel calls call began.
func (sc *scratch) endCalls() {
	for i, kc := range sc.calls {
		if kc != nil {
			kc.End()
			sc.calls[i] = nil
		}
	}
}

// offer puts episode p of view vi among the candidates if it is live, passes the filter and
// is close enough.
func (s *Searcher) offer(sc *scratch, v *View, vi int, f *viewFilter, p int, dist float32) {
	if !sc.cands.admits(dist) {
		return
	}
	if v.Deleted != nil && v.Deleted[p] {
		return
	}
	if !f.pass(v.Seg, p) {
		return
	}
	if v.Seg.spillDoc != nil && sc.seenBefore(vi, v.Seg.n, p, dist) {
		return
	}
	sc.cands.push(entry{dist: dist, key: v.Seg.hashes[p], view: int32(vi), doc: uint32(p)})
}

// seenBefore keeps an episode of a segment with spilled entries (found in several lists)
// among the candidates once: when episode p of view vi was pushed before in this search, a
// distance no better is dropped at once (the earlier entry is in the heap, or was evicted
// by better ones and this one could not enter either); a better one replaces the earlier
// entry's distance when that is still in the heap, and seenBefore reports true. Otherwise
// p is marked and the caller pushes it.
func (sc *scratch) seenBefore(vi, n, p int, dist float32) bool {
	if len(sc.seen[vi]) != n {
		sc.seen[vi] = make([]seenMark, n)
	}
	mark := &sc.seen[vi][p]
	if mark.epoch == sc.epoch {
		if dist >= mark.dist {
			return true
		}
		mark.dist = dist
		for i, e := range sc.cands.e {
			if int(e.view) == vi && int(e.doc) == p {
				sc.cands.e[i].dist = dist
				return true
			}
		}
		return false
	}
	*mark = seenMark{epoch: sc.epoch, dist: dist}
	return false
}

// seenMark is seenBefore's note of one episode: the search (epoch) that pushed it and its
// best distance there, side by side so one cache line holds both.
type seenMark struct {
	epoch uint32
	dist  float32
}

// nextEpoch starts a search's marks for seenBefore.
func (sc *scratch) nextEpoch() {
	sc.epoch++
	if sc.epoch == 0 { // wrapped: old marks could collide
		for _, s := range sc.seen {
			clear(s)
		}
		sc.epoch = 1
	}
}

// SearchKeyword returns the k episodes with the best BM25 scores for text, filtered.
func (s *Searcher) SearchKeyword(text string, k int, filter *Filter) []Hit {
	es := s.keyword(text, k, filter)
	return s.hits(es, func(e entry) float32 { return -e.dist })
}

func (s *Searcher) keyword(text string, k int, filter *Filter) []entry {
	if k <= 0 {
		k = 10
	}
	filt := make([]viewFilter, len(s.views))
	for i := range s.views {
		filt[i].resolve(filter, s.views[i].Seg)
	}
	var h topK
	h.reset(k)
	scorer := s.scorers.Get().(*bm25.Scorer)
	defer s.scorers.Put(scorer)
	scorer.Score(text, func(vi int, doc uint32, score float32) {
		seg := s.views[vi].Seg
		if !h.admits(-score) || !filt[vi].pass(seg, int(doc)) {
			return
		}
		h.push(entry{dist: -score, key: seg.hashes[doc], view: int32(vi), doc: doc})
	})
	return h.sorted()
}

// SearchHybrid fuses a dense search for query with a BM25 search for text; ctx stops the
// dense scan as in Search.
func (s *Searcher) SearchHybrid(ctx context.Context, query []float32, text string, opts HybridOptions) ([]Hit, error) {
	k := opts.Dense.K
	if k <= 0 {
		k = 10
	}
	opts, err := s.fusion.Apply(opts).withDefaults(k)
	if err != nil {
		return nil, err
	}
	dopts := opts.Dense
	dopts.K = opts.Depth
	sc := s.getScratch()
	dense, err := s.search(ctx, sc, query, dopts)
	s.scratch.Put(sc)
	if err != nil {
		return nil, err
	}
	kw := s.keyword(text, opts.Depth, opts.Dense.Filter)
	type ref struct {
		view int32
		doc  uint32
	}
	ranked := func(es []entry) []Ranked[ref] {
		out := make([]Ranked[ref], len(es))
		for i, e := range es {
			out[i] = Ranked[ref]{Key: ref{e.view, e.doc}, Score: -e.dist, Tie: e.key}
		}
		return out
	}
	fused, err := Fuse(ranked(dense), ranked(kw), k, opts)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(fused))
	for i, f := range fused {
		v := s.views[f.Key.view]
		out[i] = Hit{Doc: v.Seg.doc(int(f.Key.doc)), Score: f.Score, Shard: v.Shard}
	}
	return out, nil
}
