package pq

import "fmt"

// BlockSize is the number of vectors interleaved in one fast-scan block.
const BlockSize = 32

// MaxFastScanM is the largest number of 4-bit sub-quantizers a fast-scan sum can hold
// without overflow: each table entry is at most 255 and 256 * 255 = 65280 < 65536.
const MaxFastScanM = 256

// FastScanBytes is the size of the packed fast-scan codes of n vectors with m sub-quantizers:
// ceil(n/32) blocks of m*16 bytes.
func FastScanBytes(n, m int) int { return (n + BlockSize - 1) / BlockSize * m * 16 }

// PackFastScan4 interleaves n vectors of m 4-bit codes into the fast-scan layout.
// codes is row-major, one code per byte (vector i, sub-quantizer j at codes[i*m+j], each
// value < 16). The result has ceil(n/32) blocks; the tail of the last block is padded with
// code 0 (its scan results are meaningless and must be ignored by the caller).
//
// Layout, all offsets in bytes:
//
//	block b (vectors 32b .. 32b+31) starts at b*m*16 and is m*16 bytes long;
//	inside it, sub-quantizer j's 16 bytes start at j*16;
//	byte t (0..15) of that group = code(32b+t, j) | code(32b+16+t, j) << 4.
//
// So a 16-byte load at b*m*16 + j*16 gives, after "& 0x0f", the codes of vectors 0..15 of
// the block and, after ">> 4", the codes of vectors 16..31, each ready to index the 16-entry
// table of sub-quantizer j with one byte shuffle.
func PackFastScan4(codes []byte, n, m int) ([]byte, error) {
	if m <= 0 || len(codes) < n*m {
		return nil, fmt.Errorf("pq: PackFastScan4 got %d code bytes for %d vectors of m=%d", len(codes), n, m)
	}
	out := make([]byte, FastScanBytes(n, m))
	for i := 0; i < n; i++ {
		b, t := i/BlockSize, i%BlockSize
		shift := uint(0)
		if t >= 16 {
			t -= 16
			shift = 4
		}
		for j := 0; j < m; j++ {
			c := codes[i*m+j]
			if c > 15 {
				return nil, fmt.Errorf("pq: code %d of vector %d sub-quantizer %d does not fit 4 bits", c, i, j)
			}
			out[b*m*16+j*16+t] |= c << shift
		}
	}
	return out, nil
}

// UnpackFastScan4 is the inverse of PackFastScan4: it returns n*m row-major codes.
func UnpackFastScan4(packed []byte, n, m int) ([]byte, error) {
	if m <= 0 || len(packed) < FastScanBytes(n, m) {
		return nil, fmt.Errorf("pq: UnpackFastScan4 got %d bytes for %d vectors of m=%d", len(packed), n, m)
	}
	out := make([]byte, n*m)
	for i := 0; i < n; i++ {
		b, t := i/BlockSize, i%BlockSize
		shift := uint(0)
		if t >= 16 {
			t -= 16
			shift = 4
		}
		for j := 0; j < m; j++ {
			out[i*m+j] = packed[b*m*16+j*16+t] >> shift & 0x0f
		}
	}
	return out, nil
}

// ScanFastScan4 is the reference 4-bit fast-scan. packed holds nblocks = len(out)/32 blocks
// in the PackFastScan4 layout, m sub-quantizers each; qlut holds m tables of 16 uint8
// entries (table j at qlut[j*16:], as QuantizeLUT makes them). For every vector v = 32b+t of
// the scanned blocks it sets
//
//	out[v] = qlut[0*16+code(v,0)] + qlut[1*16+code(v,1)] + ... + qlut[(m-1)*16+code(v,m-1)]
//
// as an exact integer sum (no saturation: m <= 256 keeps it below 65536). len(out) must be a
// multiple of 32. A SIMD kernel accumulating in uint16 lanes, in any order, gets the same
// values.
func ScanFastScan4(packed []byte, m int, qlut []uint8, out []uint16) error {
	if err := checkFastScan(packed, m, len(qlut), out); err != nil {
		return err
	}
	nblocks := len(out) / BlockSize
	for b := 0; b < nblocks; b++ {
		blk := packed[b*m*16 : (b+1)*m*16]
		acc := out[b*BlockSize : (b+1)*BlockSize]
		clear(acc)
		for j := 0; j < m; j++ {
			table := qlut[j*16 : j*16+16]
			group := blk[j*16 : j*16+16]
			for t := 0; t < 16; t++ {
				acc[t] += uint16(table[group[t]&0x0f])
				acc[t+16] += uint16(table[group[t]>>4])
			}
		}
	}
	return nil
}

func checkFastScan(packed []byte, m, qlutLen int, out []uint16) error {
	if m <= 0 || m > MaxFastScanM {
		return fmt.Errorf("pq: fast-scan m=%d outside 1..%d", m, MaxFastScanM)
	}
	if len(out)%BlockSize != 0 {
		return fmt.Errorf("pq: fast-scan output length %d is not a multiple of %d", len(out), BlockSize)
	}
	if len(packed) < len(out)/BlockSize*m*16 || qlutLen < m*16 {
		return fmt.Errorf("pq: fast-scan got %d code bytes and %d table bytes for %d vectors of m=%d",
			len(packed), qlutLen, len(out), m)
	}
	return nil
}

// PairTable is a per-query expansion of a fast-scan qlut for a faster pure-Go scan: for
// sub-quantizer j and a whole code byte x it holds qlut[j][x&15] | qlut[j][x>>4] << 16, so one
// lookup adds the terms of two vectors (t and t+16) into one uint32 holding two uint16 sums.
type PairTable struct {
	m     int
	table []uint32 // m * 256
}

// NewPairTable expands qlut (m tables of 16 entries) into a PairTable.
func NewPairTable(qlut []uint8, m int) (*PairTable, error) {
	if m <= 0 || m > MaxFastScanM || len(qlut) < m*16 {
		return nil, fmt.Errorf("pq: pair table needs m in 1..%d and %d table bytes, got m=%d and %d", MaxFastScanM, m*16, m, len(qlut))
	}
	p := &PairTable{m: m, table: make([]uint32, m*256)}
	p.Reset(qlut)
	return p, nil
}

// Reset refills the table from a new qlut of the same m, reusing its memory.
func (p *PairTable) Reset(qlut []uint8) {
	for j := 0; j < p.m; j++ {
		t := qlut[j*16 : j*16+16]
		dst := p.table[j*256 : j*256+256]
		for x := 0; x < 256; x++ {
			dst[x] = uint32(t[x&15]) | uint32(t[x>>4])<<16
		}
	}
}

// Scan gives exactly ScanFastScan4's outputs for the same qlut.
func (p *PairTable) Scan(packed []byte, out []uint16) error {
	m := p.m
	if err := checkFastScan(packed, m, m*16, out); err != nil {
		return err
	}
	nblocks := len(out) / BlockSize
	for b := 0; b < nblocks; b++ {
		blk := packed[b*m*16 : (b+1)*m*16]
		var acc [16]uint32
		for j := 0; j < m; j++ {
			tab := (*[256]uint32)(p.table[j*256 : j*256+256])
			g := (*[16]byte)(blk[j*16 : j*16+16])
			acc[0] += tab[g[0]]
			acc[1] += tab[g[1]]
			acc[2] += tab[g[2]]
			acc[3] += tab[g[3]]
			acc[4] += tab[g[4]]
			acc[5] += tab[g[5]]
			acc[6] += tab[g[6]]
			acc[7] += tab[g[7]]
			acc[8] += tab[g[8]]
			acc[9] += tab[g[9]]
			acc[10] += tab[g[10]]
			acc[11] += tab[g[11]]
			acc[12] += tab[g[12]]
			acc[13] += tab[g[13]]
			acc[14] += tab[g[14]]
			acc[15] += tab[g[15]]
		}
		o := (*[32]uint16)(out[b*BlockSize : (b+1)*BlockSize])
		for t := 0; t < 16; t++ {
			o[t] = uint16(acc[t])
			o[t+16] = uint16(acc[t] >> 16)
		}
	}
	return nil
}
