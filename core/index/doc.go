// Package index is podsearch's vector index: an inverted file (IVF) of product-quantized
// residuals, scanned with per-query lookup tables (4-bit fast-scan or 8-bit codes), whose
// best candidates are re-ranked with finer codes (8- or 4-bit scalar-quantized, core/sq;
// transform-quantized at a byte budget, core/tq; or the exact float32 vectors); plus a BM25
// keyword index per segment and hybrid retrieval (Fuse).
//
// Searches take a context (Searcher.Search, Index.Search, SearchHybrid), which a Kernel
// that runs in bounded steps honours. The hot loops of a dense search (the list scans, the
// re-rank distances) run in a Kernel per segment: natively in Go, or in the C/SIMD
// WebAssembly guest through wasm/scan's Backend (OpenOptions.Backend), with identical hits
// because the search around them is the same Go code.
//
// A Model (coarse centroids, PQ codebooks, re-rank quantizer) is trained once from a
// Config, whose shape has a FAISS-style name such as "IVF270,PQ128x4fs,TQ224,cosine"
// (Config.String, ParseConfig; the manifest records it). Segments are immutable sets of
// episodes encoded with a Model; an index folder (Create, Open) holds shards of segments
// (episodes assigned by a hash of their id), delta segments from Add, tombstones from
// Delete, and Compact merges them back (Update applies all three to an index folder); every
// change also writes the whole index's BM25 statistics, with which an Index opened with
// some shards (OpenOptions.Shards) scores keywords as the whole index does. Filters
// (language, show, date range) are applied inside the scan. Segment files carry a magic
// number, a version, the encoder's fingerprint, a section table and a CRC-32C per section,
// and are read in place from a memory mapping (docs/index-format.md).
//
// All distances are "smaller is closer" inside the package (negated inner products, squared
// L2); hits report Score, "higher is closer". Ties are broken by the hash of the episode
// id, so results do not depend on how episodes are split into shards or segments.
package index
