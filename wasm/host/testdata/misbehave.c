// misbehave.c: a test guest for the wasm host's pool (built by wasm/build.sh). It imports its
// memory like the scan kernel and exports one well-behaved call and two that fail: one traps,
// one never returns.

#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// add returns a + b: the call that shows an instance works.
EXPORT(add) uint32_t add(uint32_t a, uint32_t b) { return a + b; }

// store writes v at p and returns the word read back.
EXPORT(store) uint32_t store(uint32_t *p, uint32_t v) {
	*(volatile uint32_t *)p = v;
	return *(volatile uint32_t *)p;
}

// trap executes the unreachable instruction.
EXPORT(trap) void trap(void) { __builtin_trap(); }

// spin loops until the word at p becomes non-zero, which nothing ever writes: a runaway call.
EXPORT(spin) uint32_t spin(const uint32_t *p) {
	uint32_t n = 0;
	while (*(volatile const uint32_t *)p == 0) n++;
	return n;
}
