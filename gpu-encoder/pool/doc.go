// Package pool is the client of the encoder service pool, used by edges and batch jobs. A
// Pool is itself an encoder.Embedder, so callers stack it like a local session.
//
// Members come from a static endpoint list or from DNS names that resolve to many addresses
// (a Kubernetes headless Service), re-resolved periodically. Each member is health-checked
// (GET /readyz), guarded by a circuit breaker and reached through its own fasthttp
// HostClient (connection reuse). Requests go to the less loaded of two random available
// members (power of two choices on outstanding requests); on a transport error, a 5xx or a
// 429 (the member is then skipped for its Retry-After) the request moves to another member
// after an exponential backoff with jitter, always within the caller's deadline, which
// travels to the service in the X-Deadline-Ms header. An optional hedge sends a second copy
// to another member once the first has taken longer than a latency quantile. Token ids go
// out in the binary encoding of package wire and vectors come back as binary float32 (or
// float16 when asked).
package pool
