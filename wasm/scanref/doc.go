// Package scanref is the native Go search pipeline over one shard's codes that the wasm scan
// kernels must reproduce exactly: an 8-bit PQ scan (pq.Scan8), a 4-bit fast-scan
// (pq.PairTable, equal to pq.ScanFastScan4), an 8-bit scalar-quantized re-rank (sq.Query),
// each feeding a top-k that keeps the smallest (distance, id) pairs. It is pure Go with no
// host dependencies, so the same code also runs as the Go-in-wasm guest (wasm/guest/goscan)
// for side-by-side benchmarks.
package scanref
