// Package tower is USE-lite's forward and backward pass in pure Go, so the encoder itself
// (not only an adapter after it) can be fine-tuned: the query tower of a two-tower model
// whose episode side stays as indexed.
//
// The op order follows core/model's ONNX exporter exactly (see model.Export): token
// embeddings doubled plus the sinusoidal timing signal; per layer a pre-layer-norm multi-head
// self-attention (fused QKV, queries scaled, padding masked, softmax), its output projection
// plus the residual (layer 0: a dense 256->512 projection of the input; layer 1: the input),
// then a pre-layer-norm FFN 512->1536 ReLU ->512 added to the residual; mean over the valid
// tokens; dense 512->512 tanh; L2 normalisation. Padding never reaches a valid position
// (keys are masked, everything else is per position), so a batch is packed: only the valid
// tokens of every sequence are stored, one row each, and the dense layers run as one matrix
// product over all tokens of the batch (gonum's BLAS, which splits large products over the
// CPUs) while attention runs per sequence, in parallel over the batch.
//
// Model[T] is generic over float32 (training and inference speed) and float64 (gradient
// checks). Forward returns a cache that Backward turns into parameter gradients; every op's
// gradient is checked against central finite differences in the tests, and the forward pass
// against the reference embeddings of 200 texts (cosine >= 0.9999).
//
// Train (train.go) fine-tunes the tower with the MultipleNegativesRanking loss against frozen
// episode vectors or, when the data holds the episodes' token ids (Data.EpisodeIDs), trains
// both towers as one shared encoder: queries and episodes of a batch run through the model in
// one packed pass and the loss gradient of both sides (PairLoss) flows back. core/model's
// exporter writes the tuned weights, so a tuned tower is an ONNX model like the base one.
package tower
