package vec

import "github.com/x448/float16"

// Half is a slice of IEEE 754 half-precision (binary16) values: half the bytes of float32,
// with 11 significant bits (relative error at most 2^-11 for values of normal size).
type Half []uint16

// ToHalf rounds each value of x to the nearest half-precision value.
func ToHalf(x []float32) Half {
	h := make(Half, len(x))
	for i, v := range x {
		h[i] = uint16(float16.Fromfloat32(v))
	}
	return h
}

// DotHalf returns the inner product of a and the half-precision values b (same length), in
// float32. Where the CPU converts half precision in hardware (amd64 with F16C, AVX2 and
// FMA) an assembly kernel reads eight values at a time; elsewhere a Go loop converts each.
// A matrix-vector product over half-precision rows reads half the bytes of float32 rows,
// which is what counts when the matrix does not stay in the cache.
func DotHalf(a []float32, b Half) float32 {
	return dotWith(a, []uint16(b), HalfKernel, dotHalfKernel, halfToFloat)
}

func halfToFloat(h uint16) float32 { return float16.Frombits(h).Float32() }

// dotWith returns sum_i a[i]*conv(b[i]) over len(a) values of b: the longest prefix of a
// multiple of 8 through kernel where use is true, the rest in Go.
func dotWith[T byte | uint16](a []float32, b []T, use bool, kernel func([]float32, []T) float32, conv func(T) float32) float32 {
	b = b[:len(a)]
	n := 0
	var s float32
	if use && len(a) >= 8 {
		n = len(a) &^ 7
		s = kernel(a[:n], b[:n])
	}
	for i := n; i < len(a); i++ {
		s += a[i] * conv(b[i])
	}
	return s
}

// QueryRows is a row-major matrix that each query is multiplied with once (the IVF
// centroids, a quantizer's rotation). Where HalfKernel is true it keeps a half-precision
// copy and the products read that: such a matrix has left the cache by the next query, so
// its bytes, not the arithmetic, set the cost. Elsewhere the float32 rows are read. Build
// it with NewQueryRows; the zero value has no rows.
type QueryRows struct {
	rows []float32
	half Half
	d    int
}

// NewQueryRows wraps the len(rows)/d rows of width d (not copied; they must not change).
func NewQueryRows(rows []float32, d int) QueryRows {
	m := QueryRows{rows: rows, d: d}
	if HalfKernel {
		m.half = ToHalf(rows)
	}
	return m
}

// Half reports whether products read the half-precision copy.
func (m QueryRows) Half() bool { return m.half != nil }

// MulVec writes <row i, x> of each row i < len(out) into out; x has the rows' width.
func (m QueryRows) MulVec(x, out []float32) {
	x = x[:m.d]
	for i := range out {
		if m.half != nil {
			out[i] = DotHalf(x, m.half[i*m.d:(i+1)*m.d])
		} else {
			out[i] = Dot(Row(m.rows, m.d, i), x)
		}
	}
}
