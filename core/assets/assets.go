package assets

import (
	"os"
	"path/filepath"
)

// Home is the cache folder for models and runtimes: $PODSEARCH_HOME, else ~/.cache/podsearch.
func Home() string {
	if h := os.Getenv("PODSEARCH_HOME"); h != "" {
		return h
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "podsearch")
	}
	return filepath.Join(os.TempDir(), "podsearch")
}

// ModelPath is the exported ONNX model of USE-lite.
func ModelPath() string { return filepath.Join(Home(), "model", "use-lite.onnx") }

// VocabPath is the tokenizer vocabulary (vocab.json from the model package).
func VocabPath() string { return filepath.Join(Home(), "model", "vocab.json") }

// RuntimeLibraryPath is the ONNX Runtime shared library.
func RuntimeLibraryPath() string { return filepath.Join(Home(), "onnxruntime", "libonnxruntime.so.1") }

// WordNetDir is the folder of the WordNet 3.1 database files (index.noun, data.noun, ...),
// read by package wordnet.
func WordNetDir() string { return filepath.Join(Home(), "wordnet") }
