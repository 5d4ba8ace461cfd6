// Package vec holds the small float32 vector helpers the index packages share: dot products,
// squared L2 distances, norms and normalisation, and .fvecs/.ivecs file I/O.
//
// Dot of long vectors calls gonum's BLAS (gonum.org/v1/gonum/blas/blas32), whose assembly
// kernels make it several times faster than a Go loop; gonum is the maintained numerical
// library for Go and was already in the module graph. Everything else is plain Go.
package vec
