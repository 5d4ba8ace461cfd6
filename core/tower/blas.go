package tower

import (
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var impl gonum.Implementation

// gemm computes C = op(A) op(B) + beta C for row-major matrices: op(A) is m x k (A is k x m
// when tA), op(B) is k x n (B is n x k when tB), with leading dimensions lda, ldb, ldc.
func gemm[T Float](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float32:
		impl.Sgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		impl.Dgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// matmul is gemm for contiguous matrices: C (m x n) = op(A) op(B) + beta C.
func matmul[T Float](tA, tB bool, m, n, k int, a, b []T, beta T, c []T) {
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	gemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, n)
}

// addBias adds b to every row of x (rows of width len(b)).
func addBias[T Float](x, b []T) {
	w := len(b)
	for r := 0; r+w <= len(x); r += w {
		row := x[r : r+w]
		for j, v := range b {
			row[j] += v
		}
	}
}

// sumRows adds the column sums of x (rows of width len(g)) into g.
func sumRows[T Float](x, g []T) {
	w := len(g)
	for r := 0; r+w <= len(x); r += w {
		row := x[r : r+w]
		for j, v := range row {
			g[j] += v
		}
	}
}

// parallelFor calls fn(i) for i in [0, n) on up to GOMAXPROCS goroutines.
func parallelFor(n int, fn func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
