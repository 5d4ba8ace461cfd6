package train

import "math/rand/v2"

// Batches splits the pairs 0..n-1 into batches of at most size pairs, in an order shuffled by
// rng, such that no batch holds two pairs with the same query key or the same episode
// (episodeOf: pair -> episode number). A pair
// that would clash waits for a later batch (as sentence-transformers' NoDuplicatesDataLoader
// does). Batches of fewer than two pairs teach nothing and are left out.
func Batches(queryKeys []string, episodeOf []int, size int, rng *rand.Rand) [][]int {
	n := len(episodeOf)
	order := rng.Perm(n)
	var out [][]int
	for len(order) > 0 {
		batch := make([]int, 0, size)
		seenQ := make(map[string]bool, size)
		seenE := make(map[int]bool, size)
		rest := order[:0:0]
		for _, p := range order {
			q := ""
			if queryKeys != nil {
				q = queryKeys[p]
			}
			if len(batch) < size && !seenE[episodeOf[p]] && (queryKeys == nil || !seenQ[q]) {
				batch = append(batch, p)
				seenQ[q] = true
				seenE[episodeOf[p]] = true
				continue
			}
			rest = append(rest, p)
		}
		if len(batch) >= 2 {
			out = append(out, batch)
		}
		order = rest // each round takes at least one pair, so this ends
	}
	return out
}
