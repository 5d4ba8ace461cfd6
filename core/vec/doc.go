// Package vec holds the small float32 vector helpers the index packages share: dot products,
// squared L2 distances, norms and normalisation, written as plain Go loops unrolled by four
// (the compiler keeps them in registers; there is no assembly).
package vec
