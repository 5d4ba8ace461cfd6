// Package wasmhost runs podsearch's WebAssembly guests (the tokenizer and the PQ scan kernel)
// in wazero: one Runtime per process with an on-disk compilation cache, pools of warm
// instances (one call at a time per instance, failed instances replaced) and host-owned memories
// that many instances import (one copy of a shard's data, however many instances serve it).
// Replacing a module or shard under load is the edge's job (edge.Server.Reload).
//
// Calls are not interrupted by wazero on the serving runtime (WithCloseOnContextDone slows
// guests 5-10x): callers bound the work of each call and check deadlines between calls. A
// Guarded runtime interrupts runaway calls for modules whose behaviour is not known.
package wasmhost
