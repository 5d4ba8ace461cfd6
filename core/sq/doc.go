// Package sq implements per-dimension scalar quantization with 8 or 4 bits per value, used to
// re-rank the candidates a product-quantized scan proposes. Each dimension i keeps a
// minimum min_i and a step scale_i learnt from training vectors; value x becomes the integer
// code round((x - min_i) / scale_i), clamped to [0, 2^bits - 1], and decodes as
// min_i + scale_i * code. Eight-bit codes take one byte per dimension; four-bit codes pack two
// dimensions per byte (dimension 2k in the low nibble, 2k+1 in the high nibble).
package sq
