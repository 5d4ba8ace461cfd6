// Package tokenizer turns text into the token ids a sentence encoder reads.
//
// It holds one model today, the SentencePiece unigram tokenizer of Universal Sentence
// Encoder Lite (Unigram), reproducing the reference JavaScript implementation exactly,
// quirks included (see unigram.go). The Tokenizer interface is what callers use, so a
// WordPiece or tokenizer.json model can be added beside it later.
//
// The package is pure Go without cgo: the same code is compiled to WebAssembly for the
// edge's tokenizer guest, which loads the vocabulary in the compact binary form of
// MarshalBinary instead of JSON (parsing JSON inside a guest is 12x slower). Go's wasm
// backend is slow with maps and allocations, so Encode walks a double-array trie over dense
// code point codes, runs the Viterbi forward in one pass and takes its buffers from a pool
// (one allocation per call); reference_test.go keeps the first, map-based implementation as
// the oracle the fuzz test compares against. Numbers: docs/wasm.md, "Tokenizer speed".
package tokenizer
