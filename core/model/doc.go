// Package model turns the TF.js release of Universal Sentence Encoder Lite into a clean ONNX
// model and names it with a fingerprint.
//
// ReadTFJS loads model.json and its weight shards; Export builds, from those weights alone,
// an ONNX graph with dense inputs input_ids and attention_mask (int64 [batch, seq]) and the
// output embedding (float32 [batch, 512]), which is what dynamic batching wants (the TF.js
// graph takes sparse indices/values instead). Fingerprint hashes the exported bytes and the
// vocabulary: every later artifact (cache keys, index shards, adapters) records it, so
// vectors of different models never mix.
//
// The architecture, read from the TF.js graph (see export.go for each step): token
// embeddings [8002, 256]; x = 2*embedding + sinusoidal timing signal at valid positions
// (the graph adds the scattered embeddings to the scattered embedding-plus-timing); layer 0:
// pre-layer-norm attention over 256 wide with 4 heads, output projected to 512, plus a dense
// 256->512 projection of x as the residual; FFN 512->1536 ReLU ->512 applied at valid
// positions; layer 1: the same at 512 wide; mean over valid positions; dense 512->512 tanh;
// L2 normalisation. Padding is masked with a -1e9 attention bias; at most 128 tokens.
package model
