// Package indexbuild builds an index from a corpus file: it reads the corpus
// (core/ingest), embeds the episode texts with the encoder (core/corpusembed) or takes
// precomputed vectors, trains the index model (core/index), and writes the shards under
// the guidance of a sample of text queries: four fifths of the sample choose the
// episodes' secondary lists (query-guided spilling within a byte budget), the other fifth,
// held out, chooses the operating point recorded in the manifest. The sample is a file of
// queries or, by default, the corpus's own synthetic training queries (core/pairs).
//
// It is apart from core/index so that the index, and the edge that links it, do not depend
// on the encoder and ONNX Runtime. `podsearch index` turns its flags into Options and calls
// Build; `podsearch demo` builds its base and tuned indexes with it.
package indexbuild
