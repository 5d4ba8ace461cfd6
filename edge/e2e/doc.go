// Package e2e runs the whole podsearch system on loopback for end-to-end load and fault
// tests: a redis-server process (when installed), encoder services with the real model,
// and two edge nodes that each own one shard of a real index and fan out to the other.
//
// Build an index with BuildIndex (or use one from `podsearch index`), start everything
// with Start, drive it with Run (a fixed-rate vegeta load of repeated and new queries,
// optionally with faults injected while it runs: an encoder killed, Redis killed and
// restarted, a shard reloaded) and read the Report: every request counted, latencies per
// class (cache hit, cache miss), failures with their reasons.
//
// `podsearch bench e2e` is the command-line front end; docs/bench/e2e.md has its numbers.
package e2e
