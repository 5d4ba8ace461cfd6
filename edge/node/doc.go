// Package node wires a whole edge node from its Options: the query tokenizer (the wasm
// guest pool or the native tokenizer, reloaded with the shards), the query cache tiers
// (in-process, plus Redis) in front of the encoder pool client, the index shards with
// their scan backend, the peers, one metrics registry (the edge's, the cache's and the
// wasm guests' families) and the edge's HTTP server.
//
// `podsearch serve-edge` turns its flags into Options and calls New; the end-to-end
// cluster (edge/e2e) starts its edges the same way, so the system it measures is the one
// serve-edge runs.
package node
