// Package tq implements a transform quantizer: a compact code for re-ranking the candidates
// of a product-quantized scan, in fewer bytes than per-dimension scalar quantization.
//
// Training centres the vectors, rotates them onto the principal axes of their covariance
// (PCA, gonum's EigenSym, sorted by variance) and spends a byte budget across the rotated
// axes. Each axis gets a width of 0 to 16 bits, chosen greedily by the largest reduction of
// the expected inner-product error per bit: axis j's error at width b is the measured mean
// squared error of a uniform quantizer (the best of min..max and mean +- k sigma clipping)
// weighted by the query's second moment along j, since an inner-product score errs by
// sum_j q_j e_j. Axes with 0 bits decode as the training mean. High-variance axes thus get
// 9-13 bits and the tail of the spectrum none.
//
// A code packs lanes of 1 to 8 bits: a width up to 8 is one lane, a wider level c is two
// (c & 255 in an 8-bit lane, c >> 8 in a lane of the remaining bits). Lanes of one width
// form a group starting on a byte, so eight fields of w bits fill exactly w bytes and the
// inner-product distance reads them with one 64-bit load; PrepareIP folds the rotation,
// the steps and the 256x weight of high lanes into one coefficient per lane.
package tq
