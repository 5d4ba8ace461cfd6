// Package encoder embeds token-id sequences into unit-length 512-d vectors with the
// exported USE-lite ONNX model on ONNX Runtime (yalue/onnxruntime_go).
//
// Session is the library every serving path uses: thread-safe, batches padded to the
// longest sequence and clipped at MaxTokens, CPU by default and CUDA when asked for and
// present (falling back to CPU with a log line). Embedder is the small interface that the
// session, the encoder pool client and the query cache share, so they stack.
package encoder
