package pq

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/vec"
)

// Quantizer is a trained product quantizer.
type Quantizer struct {
	// D is the vector width; M the number of sub-quantizers (D % M == 0); Bits is 4 or 8.
	D, M, Bits int
	// Centroids holds the codebooks: codebook j, centroid c starts at
	// (j*Ksub()+c)*Dsub() and is Dsub() floats long.
	Centroids []float32
}

// New checks the shape and wraps existing codebooks (as read from an index file).
func New(d, m, bits int, centroids []float32) (*Quantizer, error) {
	if err := checkShape(d, m, bits); err != nil {
		return nil, err
	}
	if len(centroids) != d<<bits {
		return nil, fmt.Errorf("pq: %d codebook values, want %d for d=%d bits=%d", len(centroids), d<<bits, d, bits)
	}
	return &Quantizer{D: d, M: m, Bits: bits, Centroids: centroids}, nil
}

func checkShape(d, m, bits int) error {
	if bits != 4 && bits != 8 {
		return fmt.Errorf("pq: bits=%d, want 4 or 8", bits)
	}
	if d <= 0 || m <= 0 || d%m != 0 {
		return fmt.Errorf("pq: d=%d is not a positive multiple of m=%d", d, m)
	}
	if bits == 4 && m > MaxFastScanM {
		return fmt.Errorf("pq: m=%d exceeds %d, the most a uint16 fast-scan sum holds", m, MaxFastScanM)
	}
	return nil
}

// Ksub is the number of centroids per codebook (2^Bits).
func (q *Quantizer) Ksub() int { return 1 << q.Bits }

// Dsub is the width of one sub-vector (D/M).
func (q *Quantizer) Dsub() int { return q.D / q.M }

// Train learns the M codebooks from the n = len(data)/d training vectors, running k-means
// per sub-space in parallel. opts.Workers bounds the parallel sub-spaces.
func Train(data []float32, d, m, bits int, opts kmeans.Options) (*Quantizer, error) {
	if err := checkShape(d, m, bits); err != nil {
		return nil, err
	}
	if len(data)%d != 0 {
		return nil, fmt.Errorf("pq: %d values are not a whole number of %d-d vectors", len(data), d)
	}
	n := len(data) / d
	ksub := 1 << bits
	if n < ksub {
		return nil, fmt.Errorf("pq: %d training vectors, need at least %d", n, ksub)
	}
	q := &Quantizer{D: d, M: m, Bits: bits, Centroids: make([]float32, d<<bits)}
	dsub := d / m
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sub := opts
	sub.Workers = 1
	jobs := make(chan int)
	errs := make([]error, m)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sd := make([]float32, n*dsub)
			for j := range jobs {
				for i := 0; i < n; i++ {
					copy(sd[i*dsub:(i+1)*dsub], data[i*d+j*dsub:i*d+(j+1)*dsub])
				}
				o := sub
				o.Seed = opts.Seed + uint64(j)*0x9e3779b97f4a7c15
				cent, err := kmeans.Train(sd, dsub, ksub, o)
				if err != nil {
					errs[j] = fmt.Errorf("pq: sub-space %d: %w", j, err)
					continue
				}
				copy(q.Centroids[j*ksub*dsub:(j+1)*ksub*dsub], cent)
			}
		}()
	}
	for j := 0; j < m; j++ {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return q, nil
}

// Encode writes the M codes of x (one byte each, value < Ksub) into code.
func (q *Quantizer) Encode(x []float32, code []byte) {
	dsub, ksub := q.Dsub(), q.Ksub()
	for j := 0; j < q.M; j++ {
		book := q.Centroids[j*ksub*dsub : (j+1)*ksub*dsub]
		code[j] = byte(kmeans.Nearest(x[j*dsub:(j+1)*dsub], book))
	}
}

// EncodeAll encodes the n = len(data)/D rows of data into n*M bytes, in parallel.
func (q *Quantizer) EncodeAll(data []float32) []byte {
	n := len(data) / q.D
	codes := make([]byte, n*q.M)
	vec.ParallelRows(n, func(i int) {
		q.Encode(vec.Row(data, q.D, i), codes[i*q.M:(i+1)*q.M])
	})
	return codes
}

// Decode writes the reconstruction of code into x (length D).
func (q *Quantizer) Decode(code []byte, x []float32) {
	dsub, ksub := q.Dsub(), q.Ksub()
	for j := 0; j < q.M; j++ {
		c := int(code[j])
		copy(x[j*dsub:(j+1)*dsub], q.Centroids[(j*ksub+c)*dsub:(j*ksub+c+1)*dsub])
	}
}

// InnerProductLUT fills lut (length M*Ksub) with scale times the inner product of each query
// sub-vector with each centroid: lut[j*Ksub+c] = scale * <query_j, centroid_{j,c}>.
// With scale -1 the scan sums are negated inner products (smaller is closer).
func (q *Quantizer) InnerProductLUT(query []float32, scale float32, lut []float32) {
	dsub, ksub := q.Dsub(), q.Ksub()
	for j := 0; j < q.M; j++ {
		qs := query[j*dsub : (j+1)*dsub]
		book := q.Centroids[j*ksub*dsub : (j+1)*ksub*dsub]
		out := lut[j*ksub : (j+1)*ksub]
		if dsub == 4 { // the 4-bit fast-scan layout's usual width, written out (same sums)
			x0, x1, x2, x3 := qs[0], qs[1], qs[2], qs[3]
			for c := range out {
				cent := book[c*4 : c*4+4 : c*4+4]
				out[c] = scale * (x0*cent[0] + x1*cent[1] + x2*cent[2] + x3*cent[3])
			}
			continue
		}
		for c := range out {
			cent := book[c*dsub : (c+1)*dsub]
			var s float32
			for t, x := range qs { // sub-vectors are short: a plain loop beats a call
				s += x * cent[t]
			}
			out[c] = scale * s
		}
	}
}

// L2LUT fills lut (length M*Ksub) with squared L2 distances between each query sub-vector
// and each centroid, so scan sums are squared L2 distances to the reconstructions.
func (q *Quantizer) L2LUT(query []float32, lut []float32) {
	dsub, ksub := q.Dsub(), q.Ksub()
	for j := 0; j < q.M; j++ {
		qs := query[j*dsub : (j+1)*dsub]
		for c := 0; c < ksub; c++ {
			lut[j*ksub+c] = vec.L2Sq(qs, q.Centroids[(j*ksub+c)*dsub:(j*ksub+c+1)*dsub])
		}
	}
}

// Scan8 is the reference 8-bit scan. codes holds n = len(out) vectors of m one-byte codes,
// row-major; lut holds m tables of 256 float32 entries (table j at lut[j*256:]). It sets
//
//	out[i] = lut[0*256+codes[i*m+0]] + lut[1*256+codes[i*m+1]] + ... + lut[(m-1)*256+codes[i*m+m-1]]
//
// summed in float32 from 0 in the order j = 0, 1, ..., m-1 (a kernel that keeps this order
// per vector gives identical floats).
func Scan8(codes []byte, m int, lut []float32, out []float32) error {
	n := len(out)
	if m <= 0 || len(codes) < n*m || len(lut) < m*256 {
		return fmt.Errorf("pq: Scan8 got %d code bytes and %d LUT entries for %d vectors of m=%d", len(codes), len(lut), n, m)
	}
	lut = lut[:m*256]
	for i := 0; i < n; i++ {
		c := codes[i*m : (i+1)*m : (i+1)*m]
		var s float32
		for j, code := range c {
			s += lut[j*256+int(code)]
		}
		out[i] = s
	}
	return nil
}

// tableRange returns the smallest and largest of t (finite values), branch-free (the
// builtin min and max), in two chains over alternate entries that do not wait on each other.
func tableRange(t []float32) (lo, hi float32) {
	lo0, hi0 := t[0], t[0]
	lo1, hi1 := t[len(t)-1], t[len(t)-1]
	for i := 1; i+1 < len(t); i += 2 {
		a, b := t[i], t[i+1]
		lo0, hi0 = min(lo0, a), max(hi0, a)
		lo1, hi1 = min(lo1, b), max(hi1, b)
	}
	return min(lo0, lo1), max(hi0, hi1)
}

// QuantizeLUT turns a float LUT of m tables of ksub entries into uint8 tables for the
// fast-scan: with min_j the smallest entry of table j and range_j its largest minus min_j,
//
//	scale = 255 / max_j range_j   (1 when every table is constant)
//	qlut[j*ksub+c] = round((lut[j*ksub+c] - min_j) * scale), clamped to [0, 255]
//	bias  = min_0 + min_1 + ... + min_{m-1}
//
// so that sum_j lut[j][code_j] ~= bias + (sum_j qlut[j][code_j]) / scale, with an error of at
// most m * 0.5 / scale. The SIMD kernel receives qlut; it never needs to redo this step.
func QuantizeLUT(lut []float32, m, ksub int, qlut []uint8) (bias, scale float32) {
	var maxRange float32
	mins := make([]float32, m)
	for j := 0; j < m; j++ {
		t := lut[j*ksub : (j+1)*ksub]
		lo, hi := tableRange(t)
		mins[j] = lo
		bias += lo
		maxRange = max(maxRange, hi-lo)
	}
	scale = 1
	if maxRange > 0 {
		scale = 255 / maxRange
	}
	for j := 0; j < m; j++ {
		t, q := lut[j*ksub:(j+1)*ksub], qlut[j*ksub:(j+1)*ksub]
		for c, x := range t {
			// v >= 0.5, so truncating is math.Round, faster; it saturates at 255.
			v := float64((x-mins[j])*scale) + 0.5
			if v > 255 {
				v = 255
			}
			q[c] = uint8(v)
		}
	}
	return bias, scale
}
