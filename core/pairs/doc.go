// Package pairs makes synthetic (query, episode) training pairs from the corpus, for
// fine-tuning and evaluating the encoder as the reference article does with doc2query.
//
// No query-generation model (doc2query T5, BART) can be obtained here, so queries come from
// published unsupervised methods, each behind the Generator interface (an ONNX seq2seq
// generator can be added later as one more Generator) and each pair tagged with its method:
//
//   - "title": the episode title is the query, the rest of the episode text the document
//     (uninformative titles such as "Episode 12" or titles shared by many episodes skipped);
//   - "inverse-cloze": a sentence taken out of the description is the query, the text without
//     it the document (Inverse Cloze Task, Lee et al. 2019);
//   - "tfidf": a short query of the episode's most distinctive terms by TF-IDF over the corpus,
//     the whole episode text the document;
//   - "wordnet" (not a default; it needs the WordNet database from `podsearch setup`): title
//     and TF-IDF queries rewritten with WordNet synonyms and hypernyms of the sense the
//     episode suggests, other inflections and another word order, so that the query shares
//     few words with its document (the three others copy the episode's words).
//
// WordOverlap measures that: per method, the share of query words found in the pair's text.
//
// Generate takes three queries per episode, one per method in turn; SplitByEpisode puts
// every episode's pairs in exactly one of train / eval (1%) / test (19%), keeping one pair
// per episode and no repeated query inside eval and test.
package pairs
