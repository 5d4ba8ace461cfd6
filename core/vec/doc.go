// Package vec holds the small float32 vector helpers the index packages share: dot products,
// squared L2 distances, norms and normalisation, and .fvecs/.ivecs file I/O.
//
// Dot of long vectors calls an assembly kernel: vek's AVX2+FMA kernel
// (github.com/viterin/vek) where the CPU has both, gonum's BLAS (gonum.org/v1/gonum/blas/blas32,
// SSE on amd64, NEON on arm64) otherwise; both are several times faster than a Go loop.
// DotHalf multiplies float32 vectors with half-precision rows (Half, from ToHalf): our own
// AVX2 kernel (F16C's VCVTPH2PS with FMA) on amd64 CPUs that have them (HalfKernel), a Go
// loop elsewhere. QueryRows holds a matrix each query is multiplied with once (centroids, a
// rotation) and reads it in half precision where that kernel runs, since the bytes of such
// a matrix set its cost. docs/RATIONALE.md records the choices. Everything else is plain Go.
package vec
