// Package corpusembed embeds a corpus's episode texts for indexing: the ONNX encoder
// (core/encoder) over the texts in batches, optionally through a query adapter's document
// side (core/adapter), with a progress bar, returning the vectors row-major and the
// fingerprint of the model the index must record.
//
// It is apart from core/index so that the index, and the edge that links it, do not depend
// on the encoder and ONNX Runtime; `podsearch index` builds and updates indexes with it.
package corpusembed
