// Package kmeans trains k-means centroids (Lloyd's algorithm with k-means++ seeding) for the
// index's coarse quantizer and the product quantizer's sub-codebooks.
//
// Training is deterministic for a given seed whatever the number of workers: the assignment
// step runs in parallel over fixed chunks, and the update step sums in point order.
package kmeans
