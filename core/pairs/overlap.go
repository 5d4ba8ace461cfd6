package pairs

import (
	"fmt"
)

// Overlap measures how many of a method's query words occur in the document of their pair:
// the vocabulary mismatch a model must bridge. Words are content words (tokens that are no
// stop words), compared exactly, after lower-casing.
type Overlap struct {
	// Pairs counts the method's pairs; QueryWords their queries' content words.
	Pairs      int `json:"pairs"`
	QueryWords int `json:"query_words"`
	// Share is the fraction of query words that occur in the pair's text.
	Share float64 `json:"share"`
	// LowShare is the fraction of pairs with at most half of their query words in the text.
	LowShare float64 `json:"pairs_at_most_half"`
}

// WordOverlap computes Overlap per method.
func WordOverlap(ps []Pair) map[string]Overlap {
	type acc struct{ pairs, words, found, low int }
	by := map[string]*acc{}
	for _, p := range ps {
		a := by[p.Method]
		if a == nil {
			a = &acc{}
			by[p.Method] = a
		}
		a.pairs++
		text := contentWords(p.Text)
		n, found := 0, 0
		for q := range contentWords(p.Query) {
			n++
			if text[q] {
				found++
			}
		}
		a.words += n
		a.found += found
		if 2*found <= n {
			a.low++
		}
	}
	out := map[string]Overlap{}
	for m, a := range by {
		o := Overlap{Pairs: a.pairs, QueryWords: a.words, LowShare: float64(a.low) / float64(a.pairs)}
		if a.words > 0 {
			o.Share = float64(a.found) / float64(a.words)
		}
		out[m] = o
	}
	return out
}

// FormatOverlap renders WordOverlap's result on one line, methods sorted.
func FormatOverlap(m map[string]Overlap) string {
	return formatSorted(m, ", ", func(k string, o Overlap) string {
		return fmt.Sprintf("%s %.3f (%.0f%% of queries at most half)", k, o.Share, 100*o.LowShare)
	})
}
