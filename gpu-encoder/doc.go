// Package gpuencoder is the central encoder service: a fasthttp server that answers
// POST /v1/embed (token ids or raw texts in, unit vectors out, as JSON or the compact binary
// encodings of package wire) and turns many small concurrent requests into efficient model
// batches.
//
// Requests are split into sequences that queue in length buckets; a worker per backend
// session (encoder.Embedder, one ONNX Runtime session each) takes a batch when a bucket
// holds a full batch (a token budget counted as sequences x longest sequence, and a
// sequence cap) or when its oldest sequence has waited MaxWait, topping it up from
// neighbouring buckets so that similar lengths share a batch and padding stays small.
// The queue is bounded (429 with Retry-After when full); each request carries a deadline
// (header X-Deadline-Ms) and expired work is dropped before it reaches the model.
//
// The server also offers bearer-token authentication (constant-time compare), /healthz,
// /readyz, Prometheus /metrics and a graceful shutdown that finishes in-flight batches.
// docs/encoder-service.md is the operator's guide.
package gpuencoder
