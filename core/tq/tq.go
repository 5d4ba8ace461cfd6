package tq

import (
	"encoding/binary"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/podsearch/podsearch/core/vec"
)

// MaxBits is the widest code of one rotated dimension.
const MaxBits = 16

// Quantizer is a trained transform quantizer. Its fields are read-only once trained.
type Quantizer struct {
	// D is the input vector width; R is the number of rotated dimensions that get at least
	// one bit (the others decode as the training mean).
	D, R int
	// Mean is the training mean (length D).
	Mean []float32
	// Rot holds R unit rows of length D (row-major): the principal axes kept, in code order.
	Rot []float32
	// Bits, Min and Scale (length R each) give rotated dimension i its width (1..MaxBits),
	// its lowest level and its step: code c decodes as Min[i] + Scale[i]*c.
	Bits       []uint8
	Min, Scale []float32

	lanes    []lane
	groups   []group
	codeSize int
	// rot is Rot as queries read it (half precision where the CPU converts it: queryAxes).
	rot vec.QueryRows
}

// clipping lists the candidate ranges of an axis, mean +- k standard deviations (0 means
// min..max); each width keeps the one of least training error.
var clipping = []float64{0, 0.8, 1, 1.25, 1.5, 2, 2.5, 3, 3.5, 4, 5}

// rangeRows bounds the training rows used to choose the ranges and widths, pcaRows those
// of the covariance (strided subsamples).
const (
	rangeRows = 4096
	pcaRows   = 65536
)

// Train learns a quantizer from the n = len(data)/d rows of data whose codes take at most
// budgetBytes bytes. It is deterministic.
func Train(data []float32, d, budgetBytes int) (*Quantizer, error) {
	if d <= 0 {
		return nil, fmt.Errorf("tq: d=%d must be positive", d)
	}
	if len(data) == 0 || len(data)%d != 0 {
		return nil, fmt.Errorf("tq: %d values are not a positive number of %d-d vectors", len(data), d)
	}
	n := len(data) / d
	if n < 2 {
		return nil, fmt.Errorf("tq: %d training vector, want at least 2", n)
	}
	if budgetBytes < 1 || budgetBytes > d*MaxBits/8 {
		return nil, fmt.Errorf("tq: budget %d bytes outside 1..%d for d=%d", budgetBytes, d*MaxBits/8, d)
	}
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tq: value %d of the training data is %v", i, v)
		}
	}
	mean, axes, variance := pca(data, d)
	// Rotated, centred training rows (a strided subsample for choosing ranges).
	rows := min(n, rangeRows)
	y := make([]float64, rows*d)
	cen := make([]float32, d)
	for r := 0; r < rows; r++ {
		vec.Sub(cen, vec.Row(data, d, r*n/rows), mean)
		for j := 0; j < d; j++ {
			y[r*d+j] = float64(vec.Dot(vec.Row(axes, d, j), cen))
		}
	}
	// weight[j]: E[q_j^2] of an uncentred query along axis j (the IP score's error is
	// sum_j q_j e_j), estimated from the training vectors.
	weight := make([]float64, d)
	for j := range weight {
		m := float64(vec.Dot(vec.Row(axes, d, j), mean))
		weight[j] = variance[j] + m*m
	}
	// dist[j][b]: the least training error of axis j at width b over the candidate ranges.
	dist := make([][]float64, d)
	lo := make([][]float64, d)
	hi := make([][]float64, d)
	vec.ParallelRows(d, func(j int) {
		col := make([]float64, rows)
		for r := range col {
			col[r] = y[r*d+j]
		}
		dist[j], lo[j], hi[j] = bestRanges(col)
	})
	bits := allocate(dist, weight, budgetBytes)
	order := make([]int, 0, d) // the axes that get bits, by decreasing variance
	for j := 0; j < d; j++ {
		if bits[j] > 0 {
			order = append(order, j)
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("tq: the %d training vectors do not vary: nothing to encode", n)
	}
	q := &Quantizer{D: d, R: len(order), Mean: mean, Rot: make([]float32, len(order)*d),
		Bits: make([]uint8, len(order)), Min: make([]float32, len(order)), Scale: make([]float32, len(order))}
	for i, j := range order {
		copy(vec.Row(q.Rot, d, i), vec.Row(axes, d, j))
		b := bits[j]
		q.Bits[i] = uint8(b)
		q.Min[i] = float32(lo[j][b])
		q.Scale[i] = float32((hi[j][b] - lo[j][b]) / float64(int(1)<<b-1))
		if !(q.Scale[i] > 0) {
			q.Scale[i] = 1
		}
	}
	q.layout()
	return q, nil
}

// pca returns the mean of the rows of data and the d principal axes (row-major, unit
// length, by decreasing variance, sign fixed so the largest component is positive) with
// their variances.
func pca(data []float32, d int) (mean, axes []float32, variance []float64) {
	n := len(data) / d
	mean64 := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range vec.Row(data, d, i) {
			mean64[j] += float64(v)
		}
	}
	mean = make([]float32, d)
	for j := range mean64 {
		mean64[j] /= float64(n)
		mean[j] = float32(mean64[j])
	}
	// Covariance of a strided subsample, accumulated a chunk of rows at a time.
	rows := min(n, pcaRows)
	cov := mat.NewSymDense(d, nil)
	const chunk = 2048
	x := mat.NewDense(min(rows, chunk), d, nil)
	for s := 0; s < rows; s += chunk {
		m := min(chunk, rows-s)
		xs := x.Slice(0, m, 0, d).(*mat.Dense)
		for r := 0; r < m; r++ {
			row := xs.RawRowView(r)
			for j, v := range vec.Row(data, d, (s+r)*n/rows) {
				row[j] = float64(v) - mean64[j]
			}
		}
		cov.SymRankK(cov, 1/float64(rows-1), xs.T())
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		// The symmetric eigensolver converges on finite input; fall back to the identity.
		axes = make([]float32, d*d)
		variance = make([]float64, d)
		for j := 0; j < d; j++ {
			axes[j*d+j] = 1
			variance[j] = cov.At(j, j)
		}
		return mean, axes, variance
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	axes = make([]float32, d*d)
	variance = make([]float64, d)
	for k := 0; k < d; k++ {
		c := d - 1 - k // ascending eigenvalues: largest last
		variance[k] = max(vals[c], 0)
		big := 0
		for j := 0; j < d; j++ {
			if math.Abs(vecs.At(j, c)) > math.Abs(vecs.At(big, c)) {
				big = j
			}
		}
		sign := 1.0
		if vecs.At(big, c) < 0 {
			sign = -1
		}
		for j := 0; j < d; j++ {
			axes[k*d+j] = float32(sign * vecs.At(j, c))
		}
	}
	return mean, axes, variance
}

// bestRanges returns, per width b (index 0..MaxBits), the least mean squared error of a
// uniform quantizer of col over the candidate ranges, and that range. Width 0 decodes as 0
// (the centred mean).
func bestRanges(col []float64) (dist, lo, hi []float64) {
	dist = make([]float64, MaxBits+1)
	lo = make([]float64, MaxBits+1)
	hi = make([]float64, MaxBits+1)
	var mu, ss float64
	cmin, cmax := col[0], col[0]
	for _, v := range col {
		mu += v
		ss += v * v
		cmin = min(cmin, v)
		cmax = max(cmax, v)
	}
	mu /= float64(len(col))
	dist[0] = ss / float64(len(col))
	sigma := math.Sqrt(max(dist[0]-mu*mu, 0))
	for b := 1; b <= MaxBits; b++ {
		dist[b] = math.Inf(1)
		for _, k := range clipping {
			l, h := cmin, cmax
			if k > 0 {
				l, h = max(cmin, mu-k*sigma), min(cmax, mu+k*sigma)
			}
			e := uniformError(col, l, h, b)
			if e < dist[b] {
				dist[b], lo[b], hi[b] = e, l, h
			}
		}
	}
	return dist, lo, hi
}

func uniformError(col []float64, l, h float64, b int) float64 {
	levels := float64(int(1)<<b - 1)
	step := (h - l) / levels
	if step <= 0 {
		step = 1
	}
	var e float64
	for _, v := range col {
		c := math.Round((v - l) / step)
		c = max(0, min(levels, c))
		diff := v - (l + step*c)
		e += diff * diff
	}
	return e / float64(len(col))
}

// allocate gives each axis a width from 0 to MaxBits, greedily taking the step with the
// largest weighted error reduction per bit while the packed code fits in budgetBytes.
func allocate(dist [][]float64, weight []float64, budgetBytes int) []int {
	d := len(dist)
	bits := make([]int, d)
	var lanes [9]int // lanes per width, as layout packs them
	fits := func(from, to int) bool {
		c := lanes
		for _, w := range laneWidths(from) {
			c[w]--
		}
		for _, w := range laneWidths(to) {
			c[w]++
		}
		return packedBytes(c) <= budgetBytes
	}
	gain := func(j, w int) float64 {
		return weight[j] * (dist[j][bits[j]] - dist[j][w]) / float64(w-bits[j])
	}
	for {
		// The best gain per bit over every axis and every wider width that still fits
		// (error curves need not be convex, so a longer step may pay more per bit).
		best, target, bestGain := -1, 0, 0.0
		for j := 0; j < d; j++ {
			for w := bits[j] + 1; w <= MaxBits; w++ {
				if !fits(bits[j], w) {
					continue
				}
				if g := gain(j, w); g > bestGain {
					best, target, bestGain = j, w, g
				}
			}
		}
		if best < 0 {
			return bits
		}
		for _, w := range laneWidths(bits[best]) {
			lanes[w]--
		}
		for _, w := range laneWidths(target) {
			lanes[w]++
		}
		bits[best] = target
	}
}

// packedBytes is the code size of the given number of lanes per width.
func packedBytes(lanes [9]int) int {
	size := 0
	for w := 1; w <= 8; w++ {
		size += (lanes[w]*w + 7) / 8
	}
	return size
}

// laneWidths splits a width into the lanes that store it: widths up to 8 are one lane; a
// wider code c is stored as its low 8 bits (c & 255) and its high bits (c >> 8).
func laneWidths(b int) []int {
	switch {
	case b == 0:
		return nil
	case b <= 8:
		return []int{b}
	}
	return []int{8, b - 8}
}

// lane is one stored field of a code: axis dim's level, or its low or high byte part.
type lane struct {
	dim   int
	shift uint // the field holds bits shift.. of the level (0 or 8)
}

// group is a run of lanes of one width, packed little-endian from a byte boundary.
type group struct {
	start, n, bits, off int
}

// layout orders the lanes by decreasing width (axis order within a width), groups them and
// computes the code size.
func (q *Quantizer) layout() {
	q.rot = vec.NewQueryRows(q.Rot, q.D)
	q.lanes = q.lanes[:0]
	q.groups = q.groups[:0]
	off := 0
	for w := 8; w >= 1; w-- {
		start := len(q.lanes)
		for i, b := range q.Bits {
			for k, lw := range laneWidths(int(b)) {
				if lw == w {
					q.lanes = append(q.lanes, lane{dim: i, shift: uint(8 * k)})
				}
			}
		}
		if n := len(q.lanes) - start; n > 0 {
			q.groups = append(q.groups, group{start: start, n: n, bits: w, off: off})
			off += (n*w + 7) / 8
		}
	}
	q.codeSize = off
}

// CodeSize is the number of bytes of one encoded vector.
func (q *Quantizer) CodeSize() int { return q.codeSize }

// rotate writes the R rotated coordinates of x - Mean into y.
func (q *Quantizer) rotate(x []float32, y []float32) {
	cen := make([]float32, q.D)
	vec.Sub(cen, x[:q.D], q.Mean)
	for i := 0; i < q.R; i++ {
		y[i] = vec.Dot(vec.Row(q.Rot, q.D, i), cen)
	}
}

// queryAxes writes the query's R coordinates along the kept axes (not centred) into r, for
// inner-product queries. The rotation is read through vec.QueryRows: in half precision
// where the CPU converts it (the R x D matrix, 1 MB at 512 x 512 in float32, is read once
// per query; docs/bench/index.md), whose rounding (relative error <= 2^-11) is far below
// the codes' own. Codes, and L2 queries (rotate), use the float32 rows.
func (q *Quantizer) queryAxes(query, r []float32) { q.rot.MulVec(query, r[:q.R]) }

// Encode writes the CodeSize() bytes of x (length D) into code.
func (q *Quantizer) Encode(x []float32, code []byte) {
	y := make([]float32, q.R)
	q.rotate(x, y)
	c := make([]uint32, q.R)
	for i, v := range y {
		levels := float64(int(1)<<q.Bits[i] - 1)
		c[i] = uint32(max(0, min(levels, math.Round(float64((v-q.Min[i])/q.Scale[i])))))
	}
	code = code[:q.codeSize]
	clear(code)
	for _, g := range q.groups {
		mask := uint32(1)<<g.bits - 1
		for k, l := range q.lanes[g.start : g.start+g.n] {
			v := c[l.dim] >> l.shift & mask
			pos := k * g.bits
			for b := 0; b < g.bits; b++ {
				code[g.off+(pos+b)/8] |= byte(v>>b&1) << ((pos + b) % 8)
			}
		}
	}
}

// EncodeAll encodes the rows of data into one slice of n*CodeSize() bytes.
func (q *Quantizer) EncodeAll(data []float32) []byte {
	n := len(data) / q.D
	cs := q.codeSize
	out := make([]byte, n*cs)
	vec.ParallelRows(n, func(i int) {
		q.Encode(vec.Row(data, q.D, i), out[i*cs:(i+1)*cs])
	})
	return out
}

// levels unpacks the integer levels of the R rotated dimensions into c.
func (q *Quantizer) levels(code []byte, c []uint32) {
	clear(c)
	for _, g := range q.groups {
		lanes := q.lanes[g.start : g.start+g.n]
		w := uint(g.bits)
		mask := uint64(1)<<w - 1
		for k, pos := 0, g.off; k < len(lanes); k, pos = k+8, pos+g.bits {
			v := load(code, pos, g.bits)
			for _, l := range lanes[k:min(k+8, len(lanes))] {
				c[l.dim] |= uint32(v&mask) << (l.shift & 31)
				v >>= w & 63
			}
		}
	}
}

// Decode writes the reconstruction of code (length D) into x.
func (q *Quantizer) Decode(code []byte, x []float32) {
	c := make([]uint32, q.R)
	q.levels(code[:q.codeSize], c)
	copy(x[:q.D], q.Mean)
	for i := 0; i < q.R; i++ {
		y := q.Min[i] + q.Scale[i]*float32(c[i])
		row := vec.Row(q.Rot, q.D, i)
		for j := range row {
			x[j] += y * row[j]
		}
	}
}

// Query is a query prepared for fast distances to encoded vectors. One Query serves one
// goroutine at a time; distinct Query values may be used concurrently.
type Query struct {
	q  *Quantizer
	l2 bool
	a  []float32 // IP: per lane, q_i * scale_i * 2^shift; L2: per axis, q_i - min_i
	c  float32   // the constant term
	lv []uint32  // L2: the levels of the code being scored
	// IP: the code's bytes from wide on are scored by lookup: nib holds 16 sums per half
	// byte (low half first), the weights of the bits set in that nibble value.
	wide int
	nib  []float32
	r    []float32 // IP: the query's coordinates along the kept axes (PrepareIPTo's buffer)
}

// PrepareIP prepares query for Distance = -<query, decoded vector> (smaller is closer).
func (q *Quantizer) PrepareIP(query []float32) *Query { return q.PrepareIPTo(nil, query) }

// PrepareIPTo is PrepareIP that reuses the buffers of p, a Query this Quantizer prepared
// before (nil, or one of another Quantizer, allocates a new one), and returns it: a searcher
// that prepares one query after another allocates nothing (the lookup tables of a 224-byte
// code are about 20 KB a query).
func (q *Quantizer) PrepareIPTo(p *Query, query []float32) *Query {
	if p == nil || p.q != q {
		p = &Query{q: q}
	}
	p.l2, p.lv = false, nil
	p.r = grow(p.r, q.R)
	q.queryAxes(query, p.r)
	c := vec.Dot(query[:q.D], q.Mean)
	for i, v := range p.r {
		c += v * q.Min[i]
	}
	p.c = c
	p.a = grow(p.a, len(q.lanes))
	for k, l := range q.lanes {
		p.a[k] = p.r[l.dim] * q.Scale[l.dim] * float32(uint32(1)<<l.shift)
	}
	p.nibbleTables()
	return p
}

// grow returns b resliced to length n, reallocated when its capacity is short (the
// contents are not kept).
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// nibbleTables fills p.nib for the bytes of the groups narrower than 8 bits. A packed
// field's value is the sum of its bits times their powers of two, so the inner product
// over a group is a sum over the group's bits of (lane coefficient x 2^bit) for each bit
// set, whatever the width: each half byte of the code adds one of 16 precomputed sums.
// This replaces a shift, a mask, a conversion and a multiply-add per lane with two table
// reads per byte.
func (p *Query) nibbleTables() {
	q := p.q
	p.wide = q.codeSize
	for _, g := range q.groups {
		if g.bits < 8 {
			p.wide = g.off
			break
		}
	}
	p.nib = grow(p.nib, 32*(q.codeSize-p.wide)) // every entry is written below
	var w [4]float32
	for _, g := range q.groups {
		if g.bits == 8 {
			continue
		}
		nbytes := (g.n*g.bits + 7) / 8
		a := p.a[g.start : g.start+g.n]
		k, b := 0, 0                // the lane and bit of the group's next bit, in packing order
		for j := range 2 * nbytes { // half bytes of the group
			for t := range w {
				w[t] = 0
				if k < len(a) {
					w[t] = a[k] * float32(uint32(1)<<b)
				}
				if b++; b == g.bits {
					k, b = k+1, 0
				}
			}
			o := 16 * (2*(g.off-p.wide) + j)
			fill16((*[16]float32)(p.nib[o:o+16]), w[0], w[1], w[2], w[3])
		}
	}
}

// PrepareL2 prepares query for Distance = squared L2 distance to the decoded vector.
func (q *Quantizer) PrepareL2(query []float32) *Query {
	p := &Query{q: q, l2: true, a: make([]float32, q.R), lv: make([]uint32, q.R)}
	y := make([]float32, q.R)
	q.rotate(query, y)
	// |query - Mean|^2 minus its part along the kept axes: the error along the others.
	c := vec.L2Sq(query[:q.D], q.Mean)
	for i, v := range y {
		c -= v * v
		p.a[i] = v - q.Min[i]
	}
	p.c = max(c, 0)
	return p
}

// Distance returns the prepared distance between the query and the vector encoded in code.
func (p *Query) Distance(code []byte) float32 {
	code = code[:p.q.codeSize]
	if p.l2 {
		p.q.levels(code, p.lv)
		s := p.c
		for i, v := range p.lv {
			diff := p.a[i] - p.q.Scale[i]*float32(v)
			s += diff * diff
		}
		return s
	}
	var s float32
	for _, g := range p.q.groups {
		if g.off >= p.wide {
			break
		}
		s += dotGroup(p.a[g.start:g.start+g.n], code[g.off:], g.bits)
	}
	return -(p.c + s + nibbleSum(p.nib, code[p.wide:]))
}

// fill16 writes to tab[v] the sum of the w[t] whose bit t is set in v, for v = 0..15.
func fill16(tab *[16]float32, w0, w1, w2, w3 float32) {
	w01, w23 := w0+w1, w2+w3
	tab[0], tab[1], tab[2], tab[3] = 0, w0, w1, w01
	tab[4], tab[5], tab[6], tab[7] = w2, w2+w0, w2+w1, w2+w01
	tab[8], tab[9], tab[10], tab[11] = w3, w3+w0, w3+w1, w3+w01
	tab[12], tab[13], tab[14], tab[15] = w23, w23+w0, w23+w1, w23+w01
}

// nibbleSum adds the table entries of code's half bytes: nib holds 16 entries per half
// byte, low half first. Eight code bytes are read at once.
func nibbleSum(nib []float32, code []byte) float32 {
	nib = nib[:32*len(code)]
	var s0, s1, s2, s3 float32 // independent sums: no add latency chain
	j := 0
	for ; j+8 <= len(code); j += 8 {
		v := binary.LittleEndian.Uint64(code[j:])
		t := nib[32*j : 32*j+256 : 32*j+256]
		s0 += t[v&15]
		s1 += t[16+v>>4&15]
		s2 += t[32+v>>8&15]
		s3 += t[48+v>>12&15]
		s0 += t[64+v>>16&15]
		s1 += t[80+v>>20&15]
		s2 += t[96+v>>24&15]
		s3 += t[112+v>>28&15]
		s0 += t[128+v>>32&15]
		s1 += t[144+v>>36&15]
		s2 += t[160+v>>40&15]
		s3 += t[176+v>>44&15]
		s0 += t[192+v>>48&15]
		s1 += t[208+v>>52&15]
		s2 += t[224+v>>56&15]
		s3 += t[240+v>>60]
	}
	for ; j < len(code); j++ {
		t := nib[32*j : 32*j+32 : 32*j+32]
		s0 += t[code[j]&15]
		s1 += t[16+code[j]>>4]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotGroup returns sum_k a[k] * field_k over the len(a) fields of the given width packed
// little-endian at the start of code.
func dotGroup(a []float32, code []byte, bits int) float32 {
	switch bits {
	case 8:
		return vec.DotBytes(a, code)
	case 4:
		code = code[:(len(a)+1)/2]
		var s0, s1 float32
		k := 0
		for ; k+2 <= len(a); k += 2 {
			b := code[k/2]
			s0 += a[k] * float32(b&15)
			s1 += a[k+1] * float32(b>>4)
		}
		if k < len(a) {
			s0 += a[k] * float32(code[k/2]&15)
		}
		return s0 + s1
	}
	// Eight fields of w bits fill exactly w bytes: one 64-bit load per eight fields (the
	// int32 conversions are cheaper than uint64 ones).
	w := uint(bits)
	mask := uint64(1)<<w - 1
	var s0, s1, s2, s3, s4, s5, s6, s7 float32 // independent sums: no add latency chain
	k, pos := 0, 0
	for ; k+8 <= len(a); k, pos = k+8, pos+bits {
		v := load(code, pos, bits)
		f := a[k : k+8 : k+8]
		s0 += f[0] * float32(int32(v&mask))
		v >>= w & 63 // & 63: no check for shifts past 63
		s1 += f[1] * float32(int32(v&mask))
		v >>= w & 63
		s2 += f[2] * float32(int32(v&mask))
		v >>= w & 63
		s3 += f[3] * float32(int32(v&mask))
		v >>= w & 63
		s4 += f[4] * float32(int32(v&mask))
		v >>= w & 63
		s5 += f[5] * float32(int32(v&mask))
		v >>= w & 63
		s6 += f[6] * float32(int32(v&mask))
		v >>= w & 63
		s7 += f[7] * float32(int32(v&mask))
	}
	if k < len(a) {
		v := load(code, pos, bits)
		for ; k < len(a); k++ {
			s0 += a[k] * float32(int32(v&mask))
			v >>= w & 63
		}
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// load returns the n <= 8 bytes of code from pos as a little-endian integer (fewer where
// code ends first).
func load(code []byte, pos, n int) uint64 {
	if pos+8 <= len(code) {
		return binary.LittleEndian.Uint64(code[pos:])
	}
	var v uint64
	for i := 0; i < n && pos+i < len(code); i++ {
		v |= uint64(code[pos+i]) << (8 * i)
	}
	return v
}
