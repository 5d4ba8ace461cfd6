// Package cache is the query-embedding cache: an encoder.Embedder that sits in front of a
// backing Embedder (the encoder pool client) and answers repeated queries without running the
// encoder.
//
// It has two tiers. A bounded in-process cache (otter) answers the hottest queries in
// nanoseconds and deduplicates concurrent misses, so a burst of the same query costs one lookup
// and one encoder call. Behind it, an optional Redis (standalone, Sentinel or Cluster through
// one go-redis UniversalClient) shares vectors between edge processes and survives restarts.
//
// Keys are prefix + model fingerprint + a hash of the token ids: queries that tokenize the same
// share an entry, and a new model never reads old vectors. Values are the vector as float16
// (or int8 with a scale, or float32) behind a small header (magic, version, encoding, dimension,
// fingerprint tag, key tag) and a CRC-32C checksum, or an HMAC-SHA256 when a secret is
// configured, so a corrupted, foreign, copied (stored under another key) or, with a secret,
// forged value is a miss, never a wrong vector. Redis entries get a TTL with jitter.
//
// The cache never fails a request because of Redis: every Redis call has a timeout, a circuit
// breaker skips a dead or slow Redis (queries go to the encoder), writes happen in the
// background and are dropped when Redis cannot keep up, and the breaker's probes reconnect by
// themselves. Prometheus metrics count hits, misses and errors per tier.
//
// Subpackages: querylog parses query logs, warmup pre-fills the cache from one.
package cache
