package bm25

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Segment is an immutable inverted index over documents numbered 0..NumDocs()-1.
type Segment struct {
	terms   []string // sorted, distinct
	offsets []uint32 // len(terms)+1; postings of terms[i] are [offsets[i], offsets[i+1])
	docs    []uint32 // ascending within a term
	tfs     []uint16 // term frequency, saturated at 65535
	docLen  []uint32 // number of terms per document
}

// Builder collects documents for a Segment.
type Builder struct {
	postings map[string][]posting
	docLen   []uint32
}

type posting struct {
	doc uint32
	tf  uint16
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{postings: map[string][]posting{}} }

// Add analyzes text as the next document and returns its number.
func (b *Builder) Add(text string) uint32 {
	return b.AddTerms(Analyze(text))
}

// AddTerms adds an already analyzed document and returns its number.
func (b *Builder) AddTerms(terms []string) uint32 {
	doc := uint32(len(b.docLen))
	counts := map[string]int{}
	for _, t := range terms {
		counts[t]++
	}
	for t, c := range counts {
		b.postings[t] = append(b.postings[t], posting{doc, uint16(min(c, math.MaxUint16))})
	}
	b.docLen = append(b.docLen, uint32(len(terms)))
	return doc
}

// Build returns the Segment of the documents added so far.
func (b *Builder) Build() *Segment {
	s := &Segment{docLen: slices.Clone(b.docLen)}
	for t := range b.postings {
		s.terms = append(s.terms, t)
	}
	sort.Strings(s.terms)
	s.offsets = make([]uint32, 0, len(s.terms)+1)
	s.offsets = append(s.offsets, 0)
	for _, t := range s.terms {
		for _, p := range b.postings[t] { // docs were added in increasing order
			s.docs = append(s.docs, p.doc)
			s.tfs = append(s.tfs, p.tf)
		}
		s.offsets = append(s.offsets, uint32(len(s.docs)))
	}
	return s
}

// NumDocs is the number of documents in the segment.
func (s *Segment) NumDocs() int { return len(s.docLen) }

// DocLen is the number of terms of document doc.
func (s *Segment) DocLen(doc uint32) uint32 { return s.docLen[doc] }

// Postings returns the documents containing term and their term frequencies.
func (s *Segment) Postings(term string) (docs []uint32, tfs []uint16) {
	i := sort.SearchStrings(s.terms, term)
	if i == len(s.terms) || s.terms[i] != term {
		return nil, nil
	}
	a, b := s.offsets[i], s.offsets[i+1]
	return s.docs[a:b], s.tfs[a:b]
}

// Merge builds one segment of n documents from the documents of segs: remap(seg, doc)
// gives a kept document's new number (each of 0..n-1 exactly once) or false to drop it.
func Merge(segs []*Segment, n int, remap func(seg int, doc uint32) (uint32, bool)) (*Segment, error) {
	b := NewBuilder()
	b.docLen = make([]uint32, n)
	seen := make([]bool, n)
	maps := make([][]int64, len(segs))
	for si, s := range segs {
		maps[si] = make([]int64, s.NumDocs())
		for d := range s.docLen {
			nd, ok := remap(si, uint32(d))
			if !ok {
				maps[si][d] = -1
				continue
			}
			if int(nd) >= n || seen[nd] {
				return nil, fmt.Errorf("bm25: merge maps two documents, or one out of range, to %d", nd)
			}
			seen[nd] = true
			maps[si][d] = int64(nd)
			b.docLen[nd] = s.docLen[d]
		}
	}
	for nd, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("bm25: merge leaves document %d empty", nd)
		}
	}
	for si, s := range segs {
		for ti, t := range s.terms {
			for p := s.offsets[ti]; p < s.offsets[ti+1]; p++ {
				if nd := maps[si][s.docs[p]]; nd >= 0 {
					b.postings[t] = append(b.postings[t], posting{uint32(nd), s.tfs[p]})
				}
			}
		}
	}
	for _, ps := range b.postings {
		slices.SortFunc(ps, func(x, y posting) int { return int(x.doc) - int(y.doc) })
	}
	return b.Build(), nil
}

const segMagic = "BM25SEG1"

// MarshalBinary encodes the segment, little-endian:
//
//	"BM25SEG1", nterms u32, ndocs u32, npostings u32,
//	term byte lengths: nterms x u16, term bytes (concatenated),
//	posting offsets: (nterms+1) x u32, postings docs: npostings x u32, tfs: npostings x u16,
//	document lengths: ndocs x u32.
func (s *Segment) MarshalBinary() ([]byte, error) {
	var termBytes int
	for _, t := range s.terms {
		if len(t) > math.MaxUint16 {
			return nil, fmt.Errorf("bm25: term of %d bytes is too long", len(t))
		}
		termBytes += len(t)
	}
	out := make([]byte, 0, 20+2*len(s.terms)+termBytes+4*len(s.offsets)+6*len(s.docs)+4*len(s.docLen))
	out = append(out, segMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(s.terms)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(s.docLen)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(s.docs)))
	for _, t := range s.terms {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(t)))
	}
	for _, t := range s.terms {
		out = append(out, t...)
	}
	for _, v := range s.offsets {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	for _, v := range s.docs {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	for _, v := range s.tfs {
		out = binary.LittleEndian.AppendUint16(out, v)
	}
	for _, v := range s.docLen {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	return out, nil
}

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("bm25: corrupt segment")

// Unmarshal decodes a segment written by MarshalBinary, checking every count, offset and
// document number, so corrupt input gives an error, never a panic.
func Unmarshal(b []byte) (*Segment, error) {
	r := reader{b: b}
	if string(r.bytes(len(segMagic))) != segMagic {
		return nil, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	nterms, ndocs, npost := int(r.u32()), int(r.u32()), int(r.u32())
	if r.err != nil || nterms > len(b) || ndocs > len(b) || npost > len(b) {
		return nil, fmt.Errorf("%w: counts do not fit %d bytes", errCorrupt, len(b))
	}
	s := &Segment{terms: make([]string, nterms)}
	lens := make([]int, nterms)
	for i := range lens {
		lens[i] = int(r.u16())
	}
	for i := range s.terms {
		s.terms[i] = string(r.bytes(lens[i]))
		if r.err == nil && i > 0 && s.terms[i-1] >= s.terms[i] {
			return nil, fmt.Errorf("%w: terms not sorted at %d", errCorrupt, i)
		}
	}
	s.offsets = r.u32s(nterms + 1)
	s.docs = r.u32s(npost)
	s.tfs = make([]uint16, npost)
	for i := range s.tfs {
		s.tfs[i] = r.u16()
	}
	s.docLen = r.u32s(ndocs)
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	if s.offsets[0] != 0 || s.offsets[nterms] != uint32(npost) {
		return nil, fmt.Errorf("%w: posting offsets do not span the postings", errCorrupt)
	}
	for i := 0; i < nterms; i++ {
		a, e := s.offsets[i], s.offsets[i+1]
		if a >= e {
			return nil, fmt.Errorf("%w: term %d has no postings", errCorrupt, i)
		}
		for p := a; p < e; p++ {
			if int(s.docs[p]) >= ndocs || (p > a && s.docs[p] <= s.docs[p-1]) {
				return nil, fmt.Errorf("%w: posting %d of term %d is out of order or range", errCorrupt, p, i)
			}
		}
	}
	return s, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) || n < 0 {
		if r.err == nil {
			r.err = fmt.Errorf("%w: truncated", errCorrupt)
		}
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u32s(n int) []uint32 {
	if n < 0 || n > len(r.b)/4 {
		if r.err == nil {
			r.err = fmt.Errorf("%w: truncated", errCorrupt)
		}
		return make([]uint32, max(n, 0))
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.u32()
	}
	return out
}
