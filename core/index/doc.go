// Package index is podsearch's vector index: an inverted file (IVF) of product-quantized
// residuals, scanned with per-query lookup tables (4-bit fast-scan or 8-bit codes), whose
// best candidates are re-ranked with scalar-quantized copies of the vectors; plus a BM25
// keyword index per segment and hybrid (fused) retrieval.
//
// A Model (coarse centroids, PQ codebooks, re-rank quantizer) is trained once. Segments are
// immutable sets of episodes encoded with a Model; an index folder (Create, Open) holds
// shards of segments (episodes assigned by a hash of their id), delta segments from Add,
// tombstones from Delete, and Compact merges them back. Filters (language, show, date
// range) are applied inside the scan. Segment files carry a magic number, a version, the
// encoder's fingerprint, a section table and a CRC-32C per section, and are read in place
// from a memory mapping (docs/index-format.md).
//
// All distances are "smaller is closer" inside the package (negated inner products,
// squared L2); hits report Score, "higher is closer". Ties are broken by the hash of the
// episode id, so results do not depend on how episodes are split into shards or segments.
package index
