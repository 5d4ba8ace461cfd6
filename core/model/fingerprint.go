package model

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint names a model: the hex sha256 over the exported ONNX bytes followed by the
// vocabulary bytes. Cache keys, index shards and adapters record it.
func Fingerprint(onnxBytes, vocab []byte) string {
	h := sha256.New()
	h.Write(onnxBytes)
	h.Write(vocab)
	return hex.EncodeToString(h.Sum(nil))
}
