// Package wasmhost runs podsearch's WebAssembly guests (the tokenizer and the PQ scan kernel)
// in wazero: one Runtime per process with an on-disk compilation cache, pools of warm
// instances (one call at a time per instance, failed instances replaced), host-owned memories
// that many instances import (one copy of a shard's data, however many instances serve it),
// and Swappable, which replaces a module pool or shard under load without failing a request.
//
// Calls are not interrupted by wazero on the serving runtime (WithCloseOnContextDone slows
// guests 5-10x): callers bound the work of each call and check deadlines between calls. A
// Guarded runtime interrupts runaway calls for modules whose behaviour is not known.
package wasmhost
