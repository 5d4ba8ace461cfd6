// Package tq implements a transform quantizer: a compact code for re-ranking the candidates
// of a product-quantized scan, in about half the bytes of 8-bit scalar quantization (core/sq)
// at nearly its accuracy.
//
// Training centres the vectors and rotates them onto the principal axes of their covariance
// (PCA: gonum's EigenSym, axes by decreasing variance). It then spends a byte budget across
// the rotated axes: each axis gets a width of 0 to 16 bits, greedily, by the largest
// reduction of the expected inner-product error per bit. The error of axis j at width b is
// the measured mean squared error of a uniform quantizer with the best of several ranges
// (min..max or mean +- k sigma, k from 0.8 to 5; the best range narrows as the width
// shrinks), weighted by the query's second moment along j, because an inner-product score
// errs by sum_j q_j e_j. High-variance axes get 9 to 13 bits, the tail of the spectrum none
// (those axes decode as the training mean).
//
// A code packs lanes of 1 to 8 bits: a width up to 8 is one lane, a wider level c two (c & 255
// in an 8-bit lane, c >> 8 in a lane of the remaining bits). Lanes of one width form a group
// that starts on a byte, so eight fields of w bits fill exactly w bytes and the
// inner-product distance reads them with one 64-bit load. PrepareIP rotates the query once
// and folds the steps and the 256x weight of high lanes into one coefficient per lane, so
// Distance is one multiply-add per lane. L2 distances unpack the levels first (slower).
//
// Measured on the demo corpus's USE-lite embeddings (10,348 base and 200 query vectors,
// 512-d, cosine; BenchmarkDemoRecall), recall@10 against exact search when re-ranking the
// exact top 100 by Distance, the ceiling of any re-ranking (ranking every base vector by
// Distance gives the same figures):
//
//	bytes/vector       192    224    256    277   (SQ4: 256 B, 0.914; SQ8: 512 B, 0.993)
//	recall@10        0.969  0.972  0.978  0.980
//
// At 277 bytes, alternatives measured the same way: widths capped at 8 bits 0.969; widths
// only 1/2/4/8/16 bits 0.978; unweighted (plain MSE) allocation 0.964; one range per axis,
// min..max 0.976 or mean +- 3 sigma 0.945. Behind a flat PQ128x4 scan (float tables)
// keeping 160 candidates, re-ranking gives 0.980 with this codec at 277 B, but 0.972 with
// the codec trained on the PQ residual (score = PQ inner product + codec): PQ flattens the
// spectrum the allocation exploits. Keeping 80 candidates: 0.979 with this codec, 0.988
// with SQ8, 0.998 with exact vectors.
//
// Costs there (2 busy cores): Train 4 s, EncodeAll 0.5 s; PrepareIP 35-65 us (the rotation,
// R x D multiply-adds); Distance 0.65-1 us per candidate for inner products, about 1.4x
// core/sq's 8-bit distance in the same run, and about 1.8 us for L2.
package tq
