// Package warmup pre-fills the query-embedding cache from a query log: it tokenizes the
// (already normalised and deduplicated) queries, asks the cache which are there already,
// encodes the rest through the encoder in batches under a rate limit, and writes each batch
// to the cache as soon as it is encoded, with the write of one batch overlapping the encoding
// of the next. An interrupted run loses at most the batches in flight: running it again
// finds the rest cached and encodes only what is missing.
package warmup
