// Package wasmscan serves an index shard's PQ scan through the C + SIMD WebAssembly kernel
// (wasm/guest/scan): the 4-bit fast-scan (i8x16.swizzle lookups), the 8-bit scan, the 8-bit
// scalar-quantized re-rank and the top-k selection all run in the guest, over codes that live
// in guest memory. Results equal the native Go pipeline (package scanref) bit for bit.
//
// Memory: each Shard owns one host-created linear memory holding its codes once; every warm
// instance serving the shard imports that memory and works in its own scratch region (query
// tables, candidate list, top-k heap, shadow stack). N instances of a shard therefore cost N
// small scratch regions, not N copies of the codes, and run concurrently.
//
// Backend plugs the same kernel into core/index (index.OpenOptions.Backend): each segment's
// codes go into a guest memory of their own and the guest writes the sums and distances of
// the probed lists and candidates out, while probing, filters, tombstones and the top-k stay
// in the index's Go code, so hits equal the native search's exactly.
package wasmscan
