package sq

import (
	"fmt"
	"math"

	"github.com/podsearch/podsearch/core/vec"
)

// Quantizer is a trained scalar quantizer.
type Quantizer struct {
	// D is the vector width, Bits 8 or 4.
	D, Bits int
	// Min and Scale hold min_i and scale_i per dimension (length D each).
	Min, Scale []float32
}

// New checks and wraps existing parameters (as read from an index file).
func New(d, bits int, minv, scale []float32) (*Quantizer, error) {
	if err := checkShape(d, bits); err != nil {
		return nil, err
	}
	if len(minv) != d || len(scale) != d {
		return nil, fmt.Errorf("sq: %d minima and %d scales for d=%d", len(minv), len(scale), d)
	}
	return &Quantizer{D: d, Bits: bits, Min: minv, Scale: scale}, nil
}

func checkShape(d, bits int) error {
	if bits != 8 && bits != 4 {
		return fmt.Errorf("sq: bits=%d, want 8 or 4", bits)
	}
	if d <= 0 || (bits == 4 && d%2 != 0) {
		return fmt.Errorf("sq: d=%d must be positive (and even for 4 bits)", d)
	}
	return nil
}

// Train learns the per-dimension range of the n = len(data)/d rows of data.
func Train(data []float32, d, bits int) (*Quantizer, error) {
	if err := checkShape(d, bits); err != nil {
		return nil, err
	}
	if len(data) == 0 || len(data)%d != 0 {
		return nil, fmt.Errorf("sq: %d values are not a positive number of %d-d vectors", len(data), d)
	}
	lo := make([]float32, d)
	hi := make([]float32, d)
	copy(lo, data[:d])
	copy(hi, data[:d])
	for i := d; i < len(data); i += d {
		for j, v := range data[i : i+d] {
			lo[j] = min(lo[j], v)
			hi[j] = max(hi[j], v)
		}
	}
	levels := float32(int(1)<<bits - 1)
	scale := make([]float32, d)
	for j := range scale {
		if math.IsNaN(float64(lo[j])) || math.IsInf(float64(hi[j]-lo[j]), 0) {
			return nil, fmt.Errorf("sq: dimension %d holds NaN or Inf", j)
		}
		scale[j] = (hi[j] - lo[j]) / levels
		if scale[j] == 0 {
			scale[j] = 1
		}
	}
	return &Quantizer{D: d, Bits: bits, Min: lo, Scale: scale}, nil
}

// CodeSize is the number of bytes of one encoded vector.
func (q *Quantizer) CodeSize() int { return q.D * q.Bits / 8 }

func (q *Quantizer) level(x float32, j int) byte {
	v := math.Round(float64((x - q.Min[j]) / q.Scale[j]))
	return byte(max(0, min(float64(int(1)<<q.Bits-1), v)))
}

// Encode writes the CodeSize() bytes of x into code.
func (q *Quantizer) Encode(x []float32, code []byte) {
	if q.Bits == 8 {
		for j := 0; j < q.D; j++ {
			code[j] = q.level(x[j], j)
		}
		return
	}
	for j := 0; j < q.D; j += 2 {
		code[j/2] = q.level(x[j], j) | q.level(x[j+1], j+1)<<4
	}
}

// EncodeAll encodes the rows of data into one slice of n*CodeSize() bytes.
func (q *Quantizer) EncodeAll(data []float32) []byte {
	n := len(data) / q.D
	cs := q.CodeSize()
	out := make([]byte, n*cs)
	for i := 0; i < n; i++ {
		q.Encode(vec.Row(data, q.D, i), out[i*cs:(i+1)*cs])
	}
	return out
}

// Decode writes the reconstruction of code into x.
func (q *Quantizer) Decode(code []byte, x []float32) {
	for j := 0; j < q.D; j++ {
		x[j] = q.Min[j] + q.Scale[j]*float32(q.codeAt(code, j))
	}
}

func (q *Quantizer) codeAt(code []byte, j int) byte {
	if q.Bits == 8 {
		return code[j]
	}
	return code[j/2] >> (4 * uint(j&1)) & 15
}

// Query is a query prepared for fast distances to encoded vectors.
type Query struct {
	bits, d int
	l2      bool
	a       []float32 // IP: query_i * scale_i; L2: query_i - min_i
	scale   []float32 // L2 only
	c       float32   // IP: <query, min>
}

// PrepareIP prepares query for Distance = -<query, decoded vector> (smaller is closer).
func (q *Quantizer) PrepareIP(query []float32) *Query {
	p := &Query{bits: q.Bits, d: q.D, a: make([]float32, q.D)}
	for j := 0; j < q.D; j++ {
		p.a[j] = query[j] * q.Scale[j]
		p.c += query[j] * q.Min[j]
	}
	return p
}

// PrepareL2 prepares query for Distance = squared L2 distance to the decoded vector.
func (q *Quantizer) PrepareL2(query []float32) *Query {
	p := &Query{bits: q.Bits, d: q.D, l2: true, a: make([]float32, q.D), scale: q.Scale}
	for j := 0; j < q.D; j++ {
		p.a[j] = query[j] - q.Min[j]
	}
	return p
}

// Distance returns the prepared distance between the query and the vector encoded in code.
func (p *Query) Distance(code []byte) float32 {
	if p.l2 {
		var s float32
		if p.bits == 8 {
			code = code[:p.d]
			for j, c := range code {
				diff := p.a[j] - p.scale[j]*float32(c)
				s += diff * diff
			}
			return s
		}
		for j := 0; j < p.d; j += 2 {
			b := code[j/2]
			d0 := p.a[j] - p.scale[j]*float32(b&15)
			d1 := p.a[j+1] - p.scale[j+1]*float32(b>>4)
			s += d0*d0 + d1*d1
		}
		return s
	}
	if p.bits == 8 {
		// Four scalar accumulators in this exact order: the wasm scan guest (wasm/guest/scan)
		// sums the same way, so native and wasm distances are bit-identical.
		s0, s1, s2, s3 := vec.DotBytes4(p.a[:p.d], code)
		return -(p.c + (s0 + s1) + (s2 + s3))
	}
	code = code[:p.d/2]
	a := p.a[:2*len(code)]
	var s0, s1 float32
	for k, b := range code {
		s0 += a[2*k] * float32(b&15)
		s1 += a[2*k+1] * float32(b>>4)
	}
	return -(p.c + s0 + s1)
}
