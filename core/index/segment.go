package index

import (
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/vec"
)

// Doc is one episode as the index stores it: its vector comes separately.
type Doc struct {
	// ID is the episode id (unique in an index; shard assignment hashes it).
	ID string
	// ShowID and ShowTitle name the show; Title the episode.
	ShowID, ShowTitle, Title string
	// Language is an ISO 639-1 code ("en"), "und" or empty when unknown.
	Language string
	// Date is the publication time; the zero time means unknown.
	Date time.Time
	// Text feeds the BM25 keyword index (it is not stored).
	Text string
}

// noDate marks an unknown date in the dates array.
const noDate = math.MinInt64

// Segment is an immutable, searchable set of encoded episodes: inverted lists of PQ codes,
// re-rank codes, per-episode attributes for filters, metadata, and a BM25 index. Episodes
// are numbered 0..Len()-1 in list order (all of list 0, then list 1, ...).
type Segment struct {
	model *Model
	n     int

	listStart  []uint32 // NList+1: episodes of list l are [listStart[l], listStart[l+1])
	blockStart []uint32 // NList+1, 4-bit only: list l's fast-scan blocks are [blockStart[l], blockStart[l+1])
	codes      []byte   // 8-bit: n*M row-major; 4-bit: fast-scan blocks
	norms      []float32
	sqCodes    []byte    // re-rank codes (scalar- or transform-quantized), n*code size
	vectors    []float32 // exact re-rank: n*D, list order (Model.Exact only)

	// Spilled entries (secondary list assignments, spill.go): list l holds its own episodes
	// listStart[l]..listStart[l+1] first, then spill entries spillStart[l]..spillStart[l+1]
	// whose episodes are spillDoc[...] (each episode is stored once; only its PQ code,
	// relative to the secondary list's centroid, repeats). Both nil without spilling.
	spillStart []uint32
	spillDoc   []uint32

	dates  []int64 // unix seconds, noDate when unknown
	hashes []uint64
	shows  []uint32
	langs  []uint16

	ids, titles, showTitles []string
	showDict, langDict      []string
	bm                      *bm25.Segment

	// derived at build or open
	byID      map[string]uint32
	showIndex map[string]uint32
	langIndex map[string]uint16
	file      *mappedFile
}

// Len is the number of episodes.
func (s *Segment) Len() int { return s.n }

// Model is the model the segment was encoded with.
func (s *Segment) Model() *Model { return s.model }

// Close releases the file mapping behind the segment, if any.
func (s *Segment) Close() error {
	if s.file != nil {
		return s.file.close()
	}
	return nil
}

// HashID is the 64-bit FNV-1a hash of an episode id, used for shard assignment and as the
// tie-breaker between equal distances.
func HashID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// BuildSegment encodes docs and their vectors (row-major, len(docs)*D values) with model.
func BuildSegment(model *Model, docs []Doc, vectors []float32) (*Segment, error) {
	return BuildSegmentSpill(model, docs, vectors, nil)
}

// BuildSegmentSpill is BuildSegment with secondary list assignments: extra[i] (nil, or one
// slice per doc) names lists besides its nearest one that docs[i] is also found in (Spill
// computes them). Spilling needs 4-bit PQ and the cosine or inner-product metric.
func BuildSegmentSpill(model *Model, docs []Doc, vectors []float32, extra [][]int32) (*Segment, error) {
	d := model.D
	if len(vectors) != len(docs)*d {
		return nil, fmt.Errorf("index: %d vector values for %d docs of width %d", len(vectors), len(docs), d)
	}
	if err := checkFinite(vectors); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(docs))
	for i, doc := range docs {
		if doc.ID == "" {
			return nil, fmt.Errorf("index: doc %d has an empty id", i)
		}
		if seen[doc.ID] {
			return nil, fmt.Errorf("index: episode id %q appears twice", doc.ID)
		}
		seen[doc.ID] = true
	}
	if model.Metric == Cosine {
		vectors = slices.Clone(vectors)
		normalizeRows(vectors, d)
	}
	n := len(docs)
	assign := make([]int32, n)
	if n > 0 {
		kmeans.Assign(vectors, d, model.Coarse, assign, make([]float32, n), runtime.GOMAXPROCS(0))
	}
	// Stable counting sort by list.
	order := make([]int, 0, n)
	listStart := make([]uint32, model.NList+1)
	for _, a := range assign {
		listStart[a+1]++
	}
	for l := 0; l < model.NList; l++ {
		listStart[l+1] += listStart[l]
	}
	pos := slices.Clone(listStart[:model.NList])
	order = order[:n]
	for i, a := range assign {
		order[pos[a]] = i
		pos[a]++
	}
	M := model.PQ.M
	raw := make([]byte, n*M) // row-major codes in list order
	var norms []float32
	if model.Metric == L2 {
		norms = make([]float32, n)
	}
	var sqCodes []byte
	cs := model.rerankCodeSize()
	if cs > 0 {
		sqCodes = make([]byte, n*cs)
	}
	var exact []float32
	if model.Exact {
		exact = make([]float32, n*d)
	}
	vec.ParallelRows(n, func(p int) {
		i := order[p]
		x := vec.Row(vectors, d, i)
		c := vec.Row(model.Coarse, d, int(assign[i]))
		r := make([]float32, d)
		vec.Sub(r, x, c)
		code := raw[p*M : (p+1)*M]
		model.PQ.Encode(r, code)
		if norms != nil {
			model.PQ.Decode(code, r)
			for j := range r {
				r[j] += c[j]
			}
			norms[p] = vec.Dot(r, r)
		}
		if cs > 0 {
			model.encodeRerank(x, sqCodes[p*cs:(p+1)*cs])
		}
		if exact != nil {
			copy(vec.Row(exact, d, p), x)
		}
	})
	ordered := make([]Doc, n)
	for p, i := range order {
		ordered[p] = docs[i]
	}
	sp, err := buildSpill(model, vectors, assign, order, extra)
	if err != nil {
		return nil, err
	}
	return assemble(model, ordered, listStart, raw, norms, sqCodes, exact, nil, sp)
}

// assemble packs row-major codes (the episodes' own, in list order; sp's for the spilled
// entries, nil without) into the segment layout and fills the metadata. bm is the BM25
// segment when already built (merging), else it is built from the docs' texts.
func assemble(model *Model, docs []Doc, listStart []uint32, raw []byte, norms []float32, sqCodes []byte, exact []float32, bm *bm25.Segment, sp *spillEntries) (*Segment, error) {
	n := len(docs)
	if model.Exact && exact == nil {
		exact = []float32{}
	}
	s := &Segment{model: model, n: n, listStart: listStart, norms: norms, sqCodes: sqCodes, vectors: exact}
	if sp != nil && len(sp.doc) > 0 {
		s.spillStart, s.spillDoc = sp.start, sp.doc
	}
	M := model.PQ.M
	if model.PQ.Bits == 8 {
		if s.spillStart != nil {
			return nil, fmt.Errorf("index: spilling needs 4-bit (fast-scan) PQ codes")
		}
		s.codes = raw
	} else {
		s.blockStart = make([]uint32, model.NList+1)
		for l := 0; l < model.NList; l++ {
			s.blockStart[l+1] = s.blockStart[l] + uint32((s.listEntries(l)+pq.BlockSize-1)/pq.BlockSize)
		}
		s.codes = make([]byte, int(s.blockStart[model.NList])*M*16)
		var rows []byte
		for l := 0; l < model.NList; l++ {
			a, b := int(listStart[l]), int(listStart[l+1])
			rows = append(rows[:0], raw[a*M:b*M]...)
			if s.spillStart != nil {
				rows = append(rows, sp.raw[int(s.spillStart[l])*M:int(s.spillStart[l+1])*M]...)
			}
			if len(rows) == 0 {
				continue
			}
			packed, err := pq.PackFastScan4(rows, len(rows)/M, M)
			if err != nil {
				return nil, err
			}
			copy(s.codes[int(s.blockStart[l])*M*16:], packed)
		}
	}
	s.dates = make([]int64, n)
	s.hashes = make([]uint64, n)
	s.shows = make([]uint32, n)
	s.langs = make([]uint16, n)
	s.ids = make([]string, n)
	s.titles = make([]string, n)
	s.showTitles = make([]string, n)
	s.showIndex = map[string]uint32{}
	s.langIndex = map[string]uint16{}
	var bb *bm25.Builder
	if bm == nil {
		bb = bm25.NewBuilder()
	}
	for p, doc := range docs {
		s.ids[p], s.titles[p], s.showTitles[p] = doc.ID, doc.Title, doc.ShowTitle
		s.hashes[p] = HashID(doc.ID)
		s.dates[p] = noDate
		if !doc.Date.IsZero() {
			s.dates[p] = doc.Date.Unix()
		}
		si, ok := s.showIndex[doc.ShowID]
		if !ok {
			si = uint32(len(s.showDict))
			s.showIndex[doc.ShowID] = si
			s.showDict = append(s.showDict, doc.ShowID)
		}
		s.shows[p] = si
		li, ok := s.langIndex[doc.Language]
		if !ok {
			if len(s.langDict) == math.MaxUint16 {
				return nil, fmt.Errorf("index: more than %d languages", math.MaxUint16)
			}
			li = uint16(len(s.langDict))
			s.langIndex[doc.Language] = li
			s.langDict = append(s.langDict, doc.Language)
		}
		s.langs[p] = li
		if bb != nil {
			bb.Add(doc.Text)
		}
	}
	if bb != nil {
		bm = bb.Build()
	}
	s.bm = bm
	s.buildIDIndex()
	return s, nil
}

func (s *Segment) buildIDIndex() {
	s.byID = make(map[string]uint32, s.n)
	for p, id := range s.ids {
		s.byID[id] = uint32(p)
	}
}

// listEntries is the number of codes list l holds: its own episodes and spilled ones.
func (s *Segment) listEntries(l int) int {
	n := int(s.listStart[l+1] - s.listStart[l])
	if s.spillStart != nil {
		n += int(s.spillStart[l+1] - s.spillStart[l])
	}
	return n
}

// entryDoc is the episode of the j-th entry of list l.
func (s *Segment) entryDoc(l, j int) int {
	own := int(s.listStart[l+1] - s.listStart[l])
	if j < own {
		return int(s.listStart[l]) + j
	}
	return int(s.spillDoc[int(s.spillStart[l])+j-own])
}

// rawCode copies the M codes of the j-th entry of list l into dst (j = p - listStart[l]
// for episode p's own entry).
func (s *Segment) rawCode(l, j int, dst []byte) {
	M := s.model.PQ.M
	if s.model.PQ.Bits == 8 {
		p := int(s.listStart[l]) + j
		copy(dst, s.codes[p*M:(p+1)*M])
		return
	}
	off := j
	blk := int(s.blockStart[l]) + off/pq.BlockSize
	t := off % pq.BlockSize
	shift := uint(0)
	if t >= 16 {
		t -= 16
		shift = 4
	}
	base := blk * M * 16
	for j := 0; j < M; j++ {
		dst[j] = s.codes[base+j*16+t] >> shift & 15
	}
}

// doc returns the stored metadata of episode p (Text is not stored).
func (s *Segment) doc(p int) Doc {
	d := Doc{ID: s.ids[p], Title: s.titles[p], ShowTitle: s.showTitles[p],
		ShowID: s.showDict[s.shows[p]], Language: s.langDict[s.langs[p]]}
	if s.dates[p] != noDate {
		d.Date = time.Unix(s.dates[p], 0).UTC()
	}
	return d
}

// MergeSegments concatenates segments encoded with the same model into one, list by list,
// dropping the episodes keep rejects. Codes are copied, not re-encoded, so the result is
// the segment a fresh BuildSegment of the kept episodes would give (up to the order of
// episodes inside a list).
func MergeSegments(segs []*Segment, keep func(seg int, p uint32) bool) (*Segment, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("index: nothing to merge")
	}
	model := segs[0].model
	for _, s := range segs[1:] {
		if s.model.ID() != model.ID() {
			return nil, fmt.Errorf("index: cannot merge segments of different models (%s, %s)", model.ID(), s.model.ID())
		}
	}
	M := model.PQ.M
	cs := model.rerankCodeSize()
	listStart := make([]uint32, model.NList+1)
	var docs []Doc
	var raw, sqCodes []byte
	var norms, exact []float32
	newNum := make([][]int64, len(segs))
	for si, s := range segs {
		newNum[si] = make([]int64, s.n)
		for i := range newNum[si] {
			newNum[si][i] = -1
		}
	}
	code := make([]byte, M)
	for l := 0; l < model.NList; l++ {
		for si, s := range segs {
			for p := int(s.listStart[l]); p < int(s.listStart[l+1]); p++ {
				if !keep(si, uint32(p)) {
					continue
				}
				newNum[si][p] = int64(len(docs))
				docs = append(docs, s.doc(p))
				s.rawCode(l, p-int(s.listStart[l]), code)
				raw = append(raw, code...)
				if cs > 0 {
					sqCodes = append(sqCodes, s.sqCodes[p*cs:(p+1)*cs]...)
				}
				if model.Metric == L2 {
					norms = append(norms, s.norms[p])
				}
				if model.Exact {
					exact = append(exact, vec.Row(s.vectors, model.D, p)...)
				}
			}
		}
		listStart[l+1] = uint32(len(docs))
	}
	// Spilled entries of kept episodes, list by list, renumbered.
	var sp *spillEntries
	for _, s := range segs {
		if s.spillStart != nil {
			sp = &spillEntries{start: make([]uint32, model.NList+1)}
			break
		}
	}
	if sp != nil {
		for l := 0; l < model.NList; l++ {
			for si, s := range segs {
				if s.spillStart == nil {
					continue
				}
				own := int(s.listStart[l+1] - s.listStart[l])
				for j := own; j < s.listEntries(l); j++ {
					nd := newNum[si][s.entryDoc(l, j)]
					if nd < 0 {
						continue
					}
					s.rawCode(l, j, code)
					sp.raw = append(sp.raw, code...)
					sp.doc = append(sp.doc, uint32(nd))
				}
			}
			sp.start[l+1] = uint32(len(sp.doc))
		}
	}
	bms := make([]*bm25.Segment, len(segs))
	for si, s := range segs {
		bms[si] = s.bm
	}
	bm, err := bm25.Merge(bms, len(docs), func(si int, doc uint32) (uint32, bool) {
		nd := newNum[si][doc]
		return uint32(nd), nd >= 0
	})
	if err != nil {
		return nil, err
	}
	if model.Metric == L2 && norms == nil {
		norms = []float32{}
	}
	return assemble(model, docs, listStart, raw, norms, sqCodes, exact, bm, sp)
}
