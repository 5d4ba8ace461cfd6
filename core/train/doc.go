// Package train fits a core/adapter on (query, episode) pairs with the
// MultipleNegativesRanking loss, the loss sentence-transformers uses for this task and the one
// Pinecone's reproduction of Spotify's podcast search trained with.
//
// For a batch of B pairs, every query is scored against every episode of the batch by cosine
// similarity times a scale (20); the loss is the mean cross-entropy of picking each query's own
// episode, so the other B-1 episodes are its negatives. Batches never hold the same query text
// or the same episode twice (sentence-transformers' NoDuplicatesDataLoader), since a duplicate
// would be a "negative" that is in fact a positive. The optimiser is AdamW (decoupled weight
// decay, betas 0.9/0.999, eps 1e-6) with the learning rate warmed up linearly over the first
// 10% of steps and then decayed linearly to zero (sentence-transformers' WarmupLinear). Weight
// decay pulls the adapter towards the identity, not towards zero: a linear adapter is trained
// as W = I + D and only D decays.
//
// The encoder is frozen, so every query and episode vector is computed once, before training
// (FitAdapter does that through an evaluate.Encoder, which caches them; PairData and
// ReadPairsDir are its steps for the train command); training is then pure linear algebra on those
// vectors, in float64 with gonum's matrix multiply, and fully deterministic for a seed.
//
// Why gonum: gonum.org/v1/gonum/mat is the maintained numeric library for Go; its blocked,
// parallel Dgemm is several times faster than naive loops at the 64x512x512 products a step
// needs, and it is deterministic (each output block is summed in a fixed order).
package train
