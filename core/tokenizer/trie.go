package tokenizer

import (
	"slices"
)

// alphabet maps the code points of the matchable pieces to dense codes 1..size; any other
// code point has code 0, which no trie transition accepts.
type alphabet struct {
	small []int32 // code of each code point below len(small)
	big   []rune  // the code points >= len(small), sorted; big[k] has code bigCode0+k
	size  int32
	// bigCode0 is the code of big[0].
	bigCode0 int32
}

// smallRuneLimit bounds the direct table of an alphabet (4 bytes per code point).
const smallRuneLimit = 1 << 16

func newAlphabet(pieces []Piece) alphabet {
	seen := make([]bool, smallRuneLimit)
	var big []rune
	top := rune(-1)
	for _, p := range pieces {
		for _, r := range p.Text {
			if r < smallRuneLimit {
				seen[r] = true
				top = max(top, r)
			} else {
				big = append(big, r)
			}
		}
	}
	var a alphabet
	a.small = make([]int32, top+1)
	for r := range a.small {
		if seen[r] {
			a.size++
			a.small[r] = a.size
		}
	}
	slices.Sort(big)
	a.big = slices.Compact(big)
	a.bigCode0 = a.size + 1
	a.size += int32(len(a.big))
	return a
}

// code returns the code of r, 0 when no matchable piece contains r.
func (a *alphabet) code(r rune) int32 {
	if uint32(r) < uint32(len(a.small)) {
		return a.small[r]
	}
	return a.bigCode(r)
}

// bigCode is code for the code points beyond the direct table.
func (a *alphabet) bigCode(r rune) int32 {
	if k, ok := slices.BinarySearch(a.big, r); ok {
		return a.bigCode0 + int32(k)
	}
	return 0
}

// daUnit is one state of the double-array trie: the child of state s for code c is
// t = base[s]+c when check[t] == s. id is the piece that ends at the state, or -1.
type daUnit struct {
	base, check, id int32
}

// Sentinels of daUnit.check: no state has these numbers.
const (
	daFree = -1 // an unused slot
	daRoot = -2 // the root, state 0, has no parent
)

// buildTrie returns the double-array trie of the matchable pieces (ids >= ReservedIDs) over
// the alphabet codes. A text that occurs twice maps to its larger id, the one the reference
// keeps. The array is padded so that base+code stays in bounds for every state and code.
func buildTrie(pieces []Piece, a *alphabet) []daUnit {
	type key struct {
		codes []int32
		id    int32
	}
	total := 0
	for _, p := range pieces[ReservedIDs:] {
		total += len(p.Text) // at least the number of code points
	}
	flat := make([]int32, 0, total) // one backing array for every key's codes
	keys := make([]key, 0, len(pieces)-ReservedIDs)
	for id := ReservedIDs; id < len(pieces); id++ {
		start := len(flat)
		for _, r := range pieces[id].Text {
			flat = append(flat, a.code(r))
		}
		keys = append(keys, key{flat[start:len(flat):len(flat)], int32(id)})
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := slices.Compare(x.codes, y.codes); c != 0 {
			return c
		}
		return int(x.id - y.id)
	})

	b := &daBuilder{units: []daUnit{{check: daRoot, id: -1}}, nextCheck: 1}
	// A state is placed with all its children at once; a node is the range of sorted keys
	// that share its prefix, of length depth.
	type node struct {
		state, lo, hi, depth int
	}
	stack := []node{{0, 0, len(keys), 0}}
	var labels []int32
	var ranges [][2]int
	for len(stack) > 0 {
		nd := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		lo := nd.lo
		for lo < nd.hi && len(keys[lo].codes) == nd.depth {
			b.units[nd.state].id = keys[lo].id // sorted by id: the last one wins
			lo++
		}
		labels, ranges = labels[:0], ranges[:0]
		for i := lo; i < nd.hi; {
			c := keys[i].codes[nd.depth]
			j := i + 1
			for j < nd.hi && keys[j].codes[nd.depth] == c {
				j++
			}
			labels = append(labels, c)
			ranges = append(ranges, [2]int{i, j})
			i = j
		}
		if len(labels) == 0 {
			continue
		}
		base := b.place(labels)
		b.units[nd.state].base = int32(base)
		for k, c := range labels {
			b.units[base+int(c)].check = int32(nd.state)
			stack = append(stack, node{base + int(c), ranges[k][0], ranges[k][1], nd.depth + 1})
		}
	}
	// Padding: a leaf keeps base 0, so base+code is at most the largest base + size.
	b.ensure(b.maxBase + int(a.size) + 1)
	return b.units
}

// daBuilder places states into a growing double array.
type daBuilder struct {
	units     []daUnit
	nextCheck int // slots before it are (nearly all) used
	maxBase   int
}

// ensure grows the array to at least n slots, the new ones free.
func (b *daBuilder) ensure(n int) {
	for len(b.units) < n {
		b.units = append(b.units, daUnit{check: daFree, id: -1})
	}
}

// place returns a base where the slot base+label of every label is free; the caller claims
// those slots by setting their check.
func (b *daBuilder) place(labels []int32) int {
	first := int(labels[0])
	pos := max(b.nextCheck, first)
	used := 0
	for ; ; pos++ {
		b.ensure(pos + 1)
		if b.units[pos].check != daFree {
			used++
			continue
		}
		base := pos - first
		b.ensure(base + int(labels[len(labels)-1]) + 1)
		ok := true
		for _, c := range labels[1:] {
			if b.units[base+int(c)].check != daFree {
				ok = false
				break
			}
		}
		if ok {
			break
		}
	}
	// Move the search start on once the scanned stretch is almost full.
	if span := pos - b.nextCheck + 1; span > 0 && used*20 >= span*19 {
		b.nextCheck = pos
	}
	base := pos - first
	b.maxBase = max(b.maxBase, base)
	return base
}
