package vec

import (
	"math"
	"runtime"
	"sync"

	"github.com/viterin/vek/vek32"
	"golang.org/x/sys/cpu"
	"gonum.org/v1/gonum/blas/blas32"
)

// simdMin is the length from which Dot calls an assembly kernel; below it the call costs
// more than it saves.
const simdMin = 32

// avx2 reports whether vek's AVX2+FMA kernels run here (vek checks the same and falls back
// to Go loops otherwise; gonum's SSE/NEON kernel is the faster fallback).
var avx2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// Dot returns the inner product of a and b, which must have the same length. Long vectors
// go through an assembly kernel: vek's AVX2+FMA kernel where the CPU has it (about 1.8x
// gonum's on 512-d rows), gonum's BLAS kernel (SSE on amd64, NEON on arm64) otherwise, both
// several times faster than the Go loop. The summation order (and so the last bits of the
// result) differs between the paths but is fixed per length on one machine.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if len(a) >= simdMin {
		if avx2 {
			return vek32.Dot(a, b)
		}
		return blas32.Dot(blas32.Vector{N: len(a), Inc: 1, Data: a}, blas32.Vector{N: len(a), Inc: 1, Data: b})
	}
	return dotGo(a, b)
}

// dotGo is the plain-Go inner product, unrolled by four.
func dotGo(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// L2Sq returns the squared Euclidean distance between a and b (same length).
func L2Sq(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0 := a[i] - b[i]
		d1 := a[i+1] - b[i+1]
		d2 := a[i+2] - b[i+2]
		d3 := a[i+3] - b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// Norm returns the Euclidean length of a.
func Norm(a []float32) float32 {
	return float32(math.Sqrt(float64(Dot(a, a))))
}

// Normalize scales a in place to unit length; a zero vector is left unchanged.
// It reports whether a was non-zero.
func Normalize(a []float32) bool {
	n := Norm(a)
	if n == 0 || math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return false
	}
	inv := 1 / n
	for i := range a {
		a[i] *= inv
	}
	return true
}

// Sub writes a - b into dst (all the same length) and returns dst.
func Sub(dst, a, b []float32) []float32 {
	dst = dst[:len(a)]
	b = b[:len(a)]
	for i := range a {
		dst[i] = a[i] - b[i]
	}
	return dst
}

// Row returns row i of a row-major matrix data with d columns.
func Row(data []float32, d, i int) []float32 {
	return data[i*d : (i+1)*d : (i+1)*d]
}

// Cosine returns the cosine similarity of a and b (same length), accumulated in float64
// (0 when either is zero); tests use it to compare vectors from different paths.
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// ParallelRows calls f(i) for every i in [0, n), spread over GOMAXPROCS goroutines in
// chunks of 256 rows; it returns when all calls have.
func ParallelRows(n int, f func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	const chunk = 256
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				for i := s; i < min(s+chunk, n); i++ {
					f(i)
				}
			}
		}()
	}
	for s := 0; s < n; s += chunk {
		next <- s
	}
	close(next)
	wg.Wait()
}

// DotBytes returns sum_j a[j] * float32(code[j]) (code holds len(a) bytes). On amd64 with
// AVX2 and FMA an assembly kernel converts and multiplies eight bytes at a time; its
// summation order is its own, so use DotBytes4 where another kernel must reproduce the
// result bit for bit.
func DotBytes(a []float32, code []byte) float32 {
	return dotWith(a, code, bytesKernel, dotBytesKernel, byteToFloat)
}

func byteToFloat(b byte) float32 { return float32(b) }

// DotBytes4 returns the four partial sums of sum_j a[j]*float32(code[j]) over j < len(a):
// sum r adds the terms j = r mod 4 in ascending j, and the tail past the last multiple of 4
// goes to sum 0. Callers combine the four in a fixed order, so a kernel elsewhere (the wasm
// scan guest's int8 re-rank) can reproduce the result bit for bit. code must hold len(a)
// bytes.
func DotBytes4(a []float32, code []byte) (s0, s1, s2, s3 float32) {
	code = code[:len(a)]
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * float32(code[j])
		s1 += a[j+1] * float32(code[j+1])
		s2 += a[j+2] * float32(code[j+2])
		s3 += a[j+3] * float32(code[j+3])
	}
	for ; j < len(a); j++ {
		s0 += a[j] * float32(code[j])
	}
	return s0, s1, s2, s3
}
