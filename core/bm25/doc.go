// Package bm25 is the keyword side of hybrid retrieval: an analyzer (lower-casing, Unicode
// word splitting, English stop words, the Snowball English stemmer), an immutable inverted-index
// segment with a checked binary encoding, and Okapi BM25 scoring (k1 0.9, b 0.4 by default,
// the setting that measured best on SciFact here) over several segments at once, with
// corpus statistics (document count, average length, document frequency) taken over all
// live documents of all segments, so scores do not depend on how documents are split into
// shards and segments. Stats carries those statistics to a node that serves only some of
// the segments (NewScorerWithStats), so its scores equal the whole corpus's.
package bm25
