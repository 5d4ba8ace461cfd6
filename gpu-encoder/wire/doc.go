// Package wire defines what travels between encoder clients and the encoder service: the
// JSON bodies of POST /v1/embed, and the compact little-endian binary encodings of token-id
// requests and of float32 / float16 embedding responses that the edge path uses. Both the
// service (package gpuencoder) and the pool client (package pool) use it, so the two sides
// cannot drift apart. docs/encoder-service.md describes the formats byte by byte.
package wire
