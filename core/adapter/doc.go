// Package adapter is the fine-tuned part of the model: a small map applied to the frozen
// encoder's 512-d vectors, trained by core/train with a ranking loss on (query, episode) pairs.
//
// Two shapes: Linear, a full Dim x Dim matrix W = I + D (D starts at zero, so a new adapter is
// the identity), and LowRank, the residual z = x + U (Vᵀ x) with U (Dim x Rank) at zero and V
// small random numbers (so it also starts as the identity, and gradients flow into U at once).
// The output is re-normalised to unit length. By default only query vectors pass through the
// adapter, so an index built from the base encoder stays valid; BothSides applies it to
// episode vectors too (then the index must be rebuilt with the adapter).
//
// An adapter file records the base model fingerprint it was trained on and is refused for any
// other model. The tuned model has its own fingerprint, sha256(base fingerprint + adapter
// bytes), so vectors of the base and tuned models are never mixed in caches or indexes.
// Wrap puts an adapter in front of any encoder.Embedder, which is how the encoder serves
// tuned vectors.
//
// File format (little-endian): magic "PSADAPT1", uint32 header length, a JSON header (kind,
// dim, rank, both_sides, base_fingerprint, notes), the float32 parameters (W for Linear; U
// then V, row-major, for LowRank), and a sha256 of everything before it. A truncated or
// corrupted file is refused with a clear error.
//
// A third kind, Tower, is a fine-tuned copy of the whole encoder that embeds queries
// (core/tower), stored as an ONNX model (core/model's exporter with the tuned weights) whose
// metadata records the base fingerprint and the tower's own, sha256(base fingerprint +
// weights). Load recognises it by content, so it goes wherever an adapter file goes; Wrap
// serves queries through it and episodes through the base encoder, or through the tower too
// when it was trained on both sides (BothSides: indexes are then built with it). It cannot map base
// vectors (Apply returns ErrTowerVectors): callers that hold base query vectors must encode
// the query texts with the tower instead.
package adapter
