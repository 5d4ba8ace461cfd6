// Package modules embeds the committed WebAssembly guests of podsearch, so a plain go build
// needs no clang and no wasm toolchain. wasm/build.sh rebuilds them reproducibly from
// wasm/guest/... and CI fails when the rebuilt bytes differ from the committed ones.
package modules
