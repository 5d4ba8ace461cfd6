// Package querytower fine-tunes USE-lite's query tower itself on (query, episode) pairs,
// `podsearch train --mode full`: the pairs become token ids and frozen base episode vectors
// (Data), core/tower trains the transformer with the MNR loss and early stopping, and the
// result is an ONNX model in a Tower adapter file (Fit). Episode vectors stay the base
// encoder's, so indexes stay valid.
//
// It sits apart from core/train because core/tower builds on core/train.
package querytower
