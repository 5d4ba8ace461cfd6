// Package pq implements product quantization: a vector of D floats is cut into M
// sub-vectors of D/M floats, and each sub-vector is replaced by the index of its nearest
// centroid in a per-sub-space codebook of 2^Bits centroids (Bits is 8 or 4).
//
// Distances between a query and encoded vectors are computed "asymmetrically" with a lookup
// table (LUT) per query: entry [j][c] holds the distance term between sub-vector j of the
// query and centroid c of codebook j, so a vector's approximate distance is the sum of M table
// entries picked by its codes.
//
// Two code layouts are scanned:
//
//   - 8-bit codes, one byte per sub-quantizer, row-major (vector i's codes are
//     codes[i*M : (i+1)*M]), scanned with a float32 LUT of M x 256 by Scan8.
//   - 4-bit "fast-scan" codes, 32 vectors per block interleaved so that one 16-byte load
//     holds sub-quantizer j's codes of all 32 vectors of a block and a 16-entry uint8 table
//     applies to them with two byte shuffles (x86 PSHUFB, wasm i8x16.swizzle, NEON TBL).
//     The layout, the quantized table and the exact integer result are specified on
//     PackFastScan4, QuantizeLUT and ScanFastScan4; a SIMD kernel written elsewhere (the
//     wasm guest) must reproduce ScanFastScan4's uint16 outputs bit for bit.
//
// Scan8 and ScanFastScan4 are the reference scans: plain loops over plain slices, meant to
// be read. PairTable is a faster pure-Go fast-scan (one lookup per code byte instead of
// two) that gives the same uint16 outputs.
package pq
