package modules

import _ "embed"

// Scan is the C + SIMD PQ scan kernel (wasm/guest/scan/scan.c). It imports its memory
// (env.memory) and keeps no static data, so instances can share one memory per shard.
//
//go:embed scan.wasm
var Scan []byte

// Tokenizer is core/tokenizer compiled to wasip1 (wasm/guest/tokenizer); instantiate it with
// the start function _initialize and WASI.
//
//go:embed tokenizer.wasm
var Tokenizer []byte

// GoScan is the native Go scan pipeline (wasm/scanref) compiled to wasip1
// (wasm/guest/goscan), the "Go in wasm" side of the benchmarks; instantiate it like Tokenizer.
//
//go:embed goscan.wasm
var GoScan []byte
