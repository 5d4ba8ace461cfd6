// Package wasmtok runs the USE-lite tokenizer as a WebAssembly guest: core/tokenizer compiled
// to wasip1 (wasm/guest/tokenizer), given its vocabulary in the compact binary form of
// tokenizer.MarshalBinary, served by a pool of warm instances of the process's wazero runtime.
// Its output equals the native tokenizer's on every input.
package wasmtok
