//go:build wasip1

// Command tokenizer is the WebAssembly guest of the USE-lite tokenizer: core/tokenizer
// compiled with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (see wasm/build.sh). The host
// (package wasm/tokenize) drives it through the exports below; all buffers live in the
// guest's memory and stay valid until the next call.
//
//	buffer(n) ptr          a buffer of at least n bytes for the host to write into
//	load_vocab(n) status   load the binary vocabulary (tokenizer.MarshalBinary) from the buffer
//	tokenize(n) ptr<<32|k  tokenize the buffer's first n bytes: k int32 ids at ptr
//	error() ptr<<32|len    the message of the last failure
package main

import (
	"unsafe"

	"github.com/podsearch/podsearch/core/tokenizer"
)

var (
	tok    *tokenizer.Unigram
	input  []byte
	ids    []int32
	errMsg []byte
)

func main() {}

func addr[T any](s []T) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&s[0])))
}

func fail(msg string) {
	errMsg = append(errMsg[:0], msg...)
}

//go:wasmexport buffer
func buffer(n uint32) uint32 {
	if uint32(cap(input)) < n {
		input = make([]byte, n)
	}
	input = input[:cap(input)]
	return addr(input)
}

//go:wasmexport load_vocab
func loadVocab(n uint32) int32 {
	if n > uint32(len(input)) {
		fail("load_vocab: length exceeds the buffer")
		return -1
	}
	u, err := tokenizer.UnmarshalBinary(input[:n])
	if err != nil {
		fail(err.Error())
		return -1
	}
	tok = u
	return 0
}

//go:wasmexport tokenize
func tokenize(n uint32) uint64 {
	if tok == nil {
		fail("tokenize: no vocabulary loaded")
		return 1<<32 - 1
	}
	if n > uint32(len(input)) {
		fail("tokenize: length exceeds the buffer")
		return 1<<32 - 1
	}
	ids = append(ids[:0], tok.Encode(unsafe.String(unsafe.SliceData(input), n))...)
	return uint64(addr(ids))<<32 | uint64(len(ids))
}

//go:wasmexport error
func lastError() uint64 {
	return uint64(addr(errMsg))<<32 | uint64(len(errMsg))
}
