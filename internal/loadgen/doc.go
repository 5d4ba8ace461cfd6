// Package loadgen is the load generation and latency percentiles the benchmarks share:
// Closed, a closed loop of clients that each send a request and wait for its answer
// (`podsearch bench encoder`); Attacker, an open-loop attack at a fixed rate or from a
// bounded worker pool (`podsearch bench e2e`, through edge/e2e); and Quantile and Millis to
// summarise the latencies they measure.
//
// Why these dependencies: github.com/valyala/fasthttp keeps the closed loop's own cost per
// request small next to an encoder answering in about a millisecond, and
// github.com/tsenart/vegeta is a maintained open-loop generator (a fixed rate does not slow
// down when the system does, so queueing shows in the latencies).
package loadgen
