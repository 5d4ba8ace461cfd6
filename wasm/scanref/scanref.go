package scanref

import (
	"fmt"
	"math"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
)

// Result is one scored vector: its number in the shard and its distance (smaller is closer).
// Fast-scan distances are the exact uint16 sums of the quantized tables, as float32.
type Result struct {
	ID   uint32
	Dist float32
}

// worse reports whether a ranks after b: a larger distance, or the same and a larger id.
func worse(a, b Result) bool { return a.Dist > b.Dist || (a.Dist == b.Dist && a.ID > b.ID) }

// TopK keeps the k best results offered (a max-heap: the root is the worst kept).
type TopK struct {
	k int
	h []Result
}

// Reset empties the heap and sets its capacity.
func (t *TopK) Reset(k int) {
	t.k = k
	t.h = t.h[:0]
}

// Bound is the distance a result must not exceed to be kept.
func (t *TopK) Bound() float32 {
	if len(t.h) < t.k {
		return float32(math.Inf(1))
	}
	return t.h[0].Dist
}

// Push offers r.
func (t *TopK) Push(r Result) {
	if len(t.h) < t.k {
		t.h = append(t.h, r)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !worse(t.h[i], t.h[p]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if t.k == 0 || !worse(t.h[0], r) {
		return
	}
	t.h[0] = r
	siftDown(t.h, 0)
}

func siftDown(h []Result, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && worse(h[c+1], h[c]) {
			c++
		}
		if !worse(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// Sorted appends the kept results to dst, best first, and empties the heap.
func (t *TopK) Sorted(dst []Result) []Result {
	start := len(dst)
	dst = append(dst, make([]Result, len(t.h))...)
	for i := len(t.h) - 1; i >= 0; i-- {
		dst[start+i] = t.h[0]
		last := len(t.h) - 1
		t.h[0] = t.h[last]
		t.h = t.h[:last]
		siftDown(t.h, 0)
	}
	return dst
}

// chunk is the number of vectors scored per pass before they are offered to the heap.
const chunk = 1024

// Scanner holds the scratch of one search at a time.
type Scanner struct {
	top   TopK
	outF  []float32
	out16 []uint16
	pair  *pq.PairTable
	pairM int
}

// Scan8 returns the k smallest pq.Scan8 distances over n vectors of m one-byte codes
// (row-major), the ids counted from firstID.
func (s *Scanner) Scan8(codes []byte, n, m int, lut []float32, k int, firstID uint32) ([]Result, error) {
	if len(codes) < n*m {
		return nil, fmt.Errorf("scanref: %d code bytes for %d vectors of m=%d", len(codes), n, m)
	}
	s.top.Reset(k)
	if cap(s.outF) < chunk {
		s.outF = make([]float32, chunk)
	}
	for a := 0; a < n; a += chunk {
		b := min(a+chunk, n)
		out := s.outF[:b-a]
		if err := pq.Scan8(codes[a*m:b*m], m, lut, out); err != nil {
			return nil, err
		}
		bound := s.top.Bound()
		for i, d := range out {
			if d <= bound {
				s.top.Push(Result{ID: firstID + uint32(a+i), Dist: d})
				bound = s.top.Bound()
			}
		}
	}
	return s.top.Sorted(nil), nil
}

// FastScan4 returns the k smallest fast-scan sums over n vectors packed by
// pq.PackFastScan4 with m sub-quantizers, scanned with the quantized tables qlut.
func (s *Scanner) FastScan4(packed []byte, n, m int, qlut []uint8, k int, firstID uint32) ([]Result, error) {
	if s.pair == nil || s.pairM != m {
		p, err := pq.NewPairTable(qlut, m)
		if err != nil {
			return nil, err
		}
		s.pair, s.pairM = p, m
	} else {
		s.pair.Reset(qlut)
	}
	if len(packed) < pq.FastScanBytes(n, m) {
		return nil, fmt.Errorf("scanref: %d packed bytes for %d vectors of m=%d", len(packed), n, m)
	}
	s.top.Reset(k)
	if cap(s.out16) < chunk {
		s.out16 = make([]uint16, chunk)
	}
	nblocks := (n + pq.BlockSize - 1) / pq.BlockSize
	const blocksPerChunk = chunk / pq.BlockSize
	for b0 := 0; b0 < nblocks; b0 += blocksPerChunk {
		b1 := min(b0+blocksPerChunk, nblocks)
		out := s.out16[:(b1-b0)*pq.BlockSize]
		if err := s.pair.Scan(packed[b0*m*16:b1*m*16], out); err != nil {
			return nil, err
		}
		base := b0 * pq.BlockSize
		valid := min(len(out), n-base) // the tail of the last block is padding
		bound := s.top.Bound()
		for i, d := range out[:valid] {
			if f := float32(d); f <= bound {
				s.top.Push(Result{ID: firstID + uint32(base+i), Dist: f})
				bound = s.top.Bound()
			}
		}
	}
	return s.top.Sorted(nil), nil
}

// Rerank returns the k candidates closest by the scalar-quantized distance q.Distance,
// reading each candidate's code (codeSize bytes) at codes[id*codeSize:].
func (s *Scanner) Rerank(codes []byte, codeSize int, q *sq.Query, cands []uint32, k int) ([]Result, error) {
	s.top.Reset(k)
	for _, id := range cands {
		off := int(id) * codeSize
		if off+codeSize > len(codes) {
			return nil, fmt.Errorf("scanref: candidate %d outside the %d re-rank codes", id, len(codes)/codeSize)
		}
		s.top.Push(Result{ID: id, Dist: q.Distance(codes[off : off+codeSize])})
	}
	return s.top.Sorted(nil), nil
}
