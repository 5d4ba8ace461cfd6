// Package scanbench is the benchmark-only half of the wasm scan: a whole query pipeline
// over a wasmscan.Shard (PQ scan of every code, then the scalar-quantized re-rank), the
// same pipeline natively in Go (NativeSearch, over scanref) and in the Go guest compiled to
// WebAssembly (GoGuest). `podsearch bench wasm` and the scan tests compare the three.
// Serving does not use it: the edge scans through wasmscan.Backend inside core/index.
package scanbench
