//go:build wasip1

// Command goscan is the native Go scan pipeline (wasm/scanref, over core/pq and core/sq)
// compiled to wasip1, the "Go in wasm" side of `podsearch bench wasm`. It owns its memory, so
// the host copies a shard's codes into each instance: a benchmark comparison, not the serving
// path (which is the C kernel over a shared memory). Exports:
//
//	alloc(n) ptr                                   a buffer of n bytes kept for the instance's life
//	scan8(codes, n, m, lut, k, out) count           pq.Scan8 top-k into out as (id, dist) pairs
//	fastscan4(packed, n, m, qlut, k, out) count     the 4-bit fast-scan top-k
//	sq_init(d, min, scale) status                   the 8-bit re-rank quantizer
//	rerank(codes, n, query, l2, cands, nc, k, out)  the sq re-rank top-k
package main

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/podsearch/podsearch/core/sq"
	"github.com/podsearch/podsearch/wasm/scanref"
)

var (
	buffers [][]byte
	scanner scanref.Scanner
	quant   *sq.Quantizer
)

func main() {}

//go:wasmexport alloc
func alloc(n uint32) uint32 {
	b := make([]byte, n+16)
	buffers = append(buffers, b)
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// bytesAt returns the n bytes at ptr inside a buffer made by alloc (nil when outside all).
func bytesAt(ptr, n uint32) []byte {
	for _, b := range buffers {
		start := uint32(uintptr(unsafe.Pointer(&b[0])))
		if ptr >= start && uint64(ptr)+uint64(n) <= uint64(start)+uint64(len(b)) {
			return b[ptr-start : ptr-start+n]
		}
	}
	return nil
}

func floatsAt(ptr, n uint32) []float32 {
	b := bytesAt(ptr, 4*n)
	if b == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

func put(out uint32, res []scanref.Result, err error) int32 {
	if err != nil {
		return -1
	}
	b := bytesAt(out, uint32(8*len(res)))
	if b == nil {
		return -1
	}
	for i, r := range res {
		binary.LittleEndian.PutUint32(b[8*i:], r.ID)
		binary.LittleEndian.PutUint32(b[8*i+4:], math.Float32bits(r.Dist))
	}
	return int32(len(res))
}

//go:wasmexport scan8
func scan8(codes, n, m, lut, k, out uint32) int32 {
	c, l := bytesAt(codes, n*m), floatsAt(lut, m*256)
	if c == nil || l == nil {
		return -1
	}
	res, err := scanner.Scan8(c, int(n), int(m), l, int(k), 0)
	return put(out, res, err)
}

//go:wasmexport fastscan4
func fastscan4(packed, n, m, qlut, k, out uint32) int32 {
	nb := (n + 31) / 32
	c, q := bytesAt(packed, nb*m*16), bytesAt(qlut, m*16)
	if c == nil || q == nil {
		return -1
	}
	res, err := scanner.FastScan4(c, int(n), int(m), q, int(k), 0)
	return put(out, res, err)
}

//go:wasmexport sq_init
func sqInit(d, minPtr, scalePtr uint32) int32 {
	lo, sc := floatsAt(minPtr, d), floatsAt(scalePtr, d)
	if lo == nil || sc == nil {
		return -1
	}
	q, err := sq.New(int(d), 8, append([]float32(nil), lo...), append([]float32(nil), sc...))
	if err != nil {
		return -1
	}
	quant = q
	return 0
}

//go:wasmexport rerank
func rerank(codes, n, query, l2, cands, nc, k, out uint32) int32 {
	if quant == nil {
		return -1
	}
	d := uint32(quant.D)
	c, q, cb := bytesAt(codes, n*d), floatsAt(query, d), bytesAt(cands, 4*nc)
	if c == nil || q == nil || cb == nil {
		return -1
	}
	ids := unsafe.Slice((*uint32)(unsafe.Pointer(&cb[0])), nc)
	var p *sq.Query
	if l2 != 0 {
		p = quant.PrepareL2(q)
	} else {
		p = quant.PrepareIP(q)
	}
	res, err := scanner.Rerank(c, int(d), p, ids, int(k))
	return put(out, res, err)
}
