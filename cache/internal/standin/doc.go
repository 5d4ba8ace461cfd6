// Package standin holds test stand-ins for the cache's collaborators: an Embedder that
// computes a deterministic unit vector from token ids (a small real computation, not the
// model) and counts its calls, and a whitespace tokenizer. Tests use them where the real
// encoder and tokenizer are not needed; tests with the real model live beside them.
package standin
