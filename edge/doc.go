// Package edge is the podsearch edge node: the fasthttp search API that mobile apps and the
// search page call.
//
// A request goes through validate -> normalise -> tokenize -> embed (the Embedder is usually
// the query cache in front of the encoder pool client) -> search the local shards (dense,
// keyword or hybrid) -> fan out to peer edges that own the other shards -> merge the top k ->
// snippets -> JSON. Every stage is timed into a Server-Timing header and Prometheus metrics.
//
// The edge owns small interfaces (Tokenizer, Searcher) and takes encoder.Embedder, so the
// real pipeline packages plug in through adapters and tests can run the whole HTTP surface
// on loopback. Construct it from Go with New(Config{...}), then Serve(listener) and
// Shutdown(ctx); docs/edge.md describes the API, the configuration and the operations.
//
// Why these dependencies: github.com/valyala/fasthttp (the HTTP server and the peer client:
// zero-allocation request handling and connection reuse, as the encoder service uses),
// golang.org/x/time/rate (the standard token bucket for per-client rate limits) and
// github.com/prometheus/client_golang (the /metrics endpoint).
package edge
