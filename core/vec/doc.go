// Package vec holds the small float32 vector helpers the index packages share: dot products,
// squared L2 distances, norms and normalisation, and .fvecs/.ivecs file I/O.
//
// Dot of long vectors calls an assembly kernel: vek's AVX2+FMA kernel
// (github.com/viterin/vek) where the CPU has both, gonum's BLAS (gonum.org/v1/gonum/blas/blas32,
// SSE on amd64, NEON on arm64) otherwise; both are several times faster than a Go loop.
// docs/RATIONALE.md records the choice. Everything else is plain Go.
package vec
