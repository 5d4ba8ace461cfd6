package index

// entry is a candidate: its distance (smaller is closer), the hash of its id (the
// tie-breaker, so results do not depend on where an episode is stored), and where it is.
type entry struct {
	dist float32
	key  uint64
	view int32
	doc  uint32
}

func (a entry) less(b entry) bool {
	return a.dist < b.dist || (a.dist == b.dist && a.key < b.key)
}

// topK keeps the k smallest entries seen in a binary max-heap (root = worst kept).
type topK struct {
	k int
	e []entry
}

func (h *topK) reset(k int) {
	h.k = k
	h.e = h.e[:0]
}

// admits reports whether an entry at distance dist could enter (a cheap pre-check; ties
// are settled by push).
func (h *topK) admits(dist float32) bool {
	return len(h.e) < h.k || dist <= h.e[0].dist
}

func (h *topK) push(x entry) {
	if h.k <= 0 {
		return
	}
	if len(h.e) < h.k {
		h.e = append(h.e, x)
		i := len(h.e) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !h.e[p].less(h.e[i]) {
				break
			}
			h.e[p], h.e[i] = h.e[i], h.e[p]
			i = p
		}
		return
	}
	if !x.less(h.e[0]) {
		return
	}
	h.e[0] = x
	h.down(0)
}

// down restores the heap order below i after h.e[i] changed.
func (h *topK) down(i int) {
	n := len(h.e)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h.e[l].less(h.e[r]) {
			c = r
		}
		if !h.e[i].less(h.e[c]) {
			return
		}
		h.e[i], h.e[c] = h.e[c], h.e[i]
		i = c
	}
}

// sorted empties the heap into a slice ordered closest first.
func (h *topK) sorted() []entry {
	out := make([]entry, len(h.e))
	for i := len(h.e) - 1; i >= 0; i-- {
		out[i] = h.e[0]
		last := len(h.e) - 1
		h.e[0] = h.e[last]
		h.e = h.e[:last]
		h.down(0)
	}
	return out
}
