package encoder

import "context"

// Dim is the width of the vectors the USE-lite encoder produces.
const Dim = 512

// MaxTokens is the longest token sequence the encoder looks at; longer ones are clipped.
const MaxTokens = 128

// Embedder turns token-id sequences into unit-length vectors. The ONNX Runtime session
// (Session), the encoder pool client and the query cache all satisfy it, so callers can
// stack them (cache in front of pool in front of sessions).
type Embedder interface {
	// Embed returns one vector of length Dim per sequence, in the order given.
	Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error)
	// Fingerprint names the model the vectors come from (hex sha256); vectors of different
	// fingerprints must never be mixed.
	Fingerprint() string
}
