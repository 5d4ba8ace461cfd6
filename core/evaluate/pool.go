package evaluate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/podsearch/podsearch/core/bm25"
)

// System is one retrieval system's rankings for a pool: document indices per query, best
// first.
type System struct {
	// Name labels the system in the pool's output (e.g. "bm25", "dense-base").
	Name string
	// Ranked holds one ranking per query.
	Ranked [][]int
}

// Candidate is one pooled document of a query: which systems ranked it in their top depth,
// and where.
type Candidate struct {
	// Doc is the document's index in the Set's documents.
	Doc int
	// Ranks is the 1-based rank each system gave it (0: not in that system's top depth),
	// in the order of the systems passed to Pool.
	Ranks []int
}

// best is the candidate's best (lowest) rank over the systems that found it.
func (c Candidate) best() int {
	b := 0
	for _, r := range c.Ranks {
		if r > 0 && (b == 0 || r < b) {
			b = r
		}
	}
	return b
}

// found is how many systems ranked the candidate.
func (c Candidate) found() int {
	n := 0
	for _, r := range c.Ranks {
		if r > 0 {
			n++
		}
	}
	return n
}

// Pool merges the top depth of every system's ranking per query (TREC-style pooling for
// relevance judgement). Each query's candidates are ordered by their best rank over the
// systems, then by how many systems found them, then by document index, so the documents
// most systems put first are read first.
func Pool(numQueries, depth int, systems []System) ([][]Candidate, error) {
	if depth < 1 {
		return nil, fmt.Errorf("evaluate: pool depth %d, want >= 1", depth)
	}
	for _, s := range systems {
		if len(s.Ranked) != numQueries {
			return nil, fmt.Errorf("evaluate: system %q has %d rankings for %d queries", s.Name, len(s.Ranked), numQueries)
		}
	}
	out := make([][]Candidate, numQueries)
	for qi := range out {
		at := map[int]int{} // document -> index in out[qi]
		for si, s := range systems {
			for r, d := range s.Ranked[qi][:min(depth, len(s.Ranked[qi]))] {
				j, ok := at[d]
				if !ok {
					j = len(out[qi])
					at[d] = j
					out[qi] = append(out[qi], Candidate{Doc: d, Ranks: make([]int, len(systems))})
				}
				out[qi][j].Ranks[si] = r + 1
			}
		}
		cs := out[qi]
		sort.Slice(cs, func(a, b int) bool {
			ba, bb := cs[a].best(), cs[b].best()
			if ba != bb {
				return ba < bb
			}
			if fa, fb := cs[a].found(), cs[b].found(); fa != fb {
				return fa > fb
			}
			return cs[a].Doc < cs[b].Doc
		})
	}
	return out, nil
}

// functionWords are frequent function words of the corpus's main non-English languages
// (Spanish, Portuguese, French, German, Italian), left out of content words on top of
// core/bm25's English stop words, so that "de" or "und" does not count as overlap.
var functionWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`de del la las el los un una unos unas y o en con por para
		que qué se su sus al lo le les como cómo mi mis es son ser está hay muy más sin sobre
		da do das dos na no nas nos um uma e em com para por que se seu sua os as ao à é ser
		mais muito como quando onde
		le la les un une des du de et ou en dans avec pour par que qui sur au aux ce cette ces
		est sont pas plus mon ma mes son sa ses comment quand où
		der die das den dem des ein eine einen einem einer und oder in im mit für von zu zum
		zur auf ist sind nicht wie was wer wo wann ich mein meine bei über nach aus
		il lo gli i di del della e o con per che su nel nella come`) {
		m[w] = true
	}
	return m
}()

// ContentWords returns the distinct content words of a text as core/bm25 analyses them
// (lower-cased, Snowball English stemming, English stop words dropped), without the common function
// words of Spanish, Portuguese, French, German and Italian. CJK characters count as words.
func ContentWords(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range bm25.Analyze(text) {
		if functionWords[t] || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// TitleOverlap is the share of the query's content words (ContentWords) that occur among the
// content words of the given titles: 0 when the query shares no content word with them, 1
// when every content word of the query is in some title. A query without content words
// scores 0.
func TitleOverlap(query string, titles []string) float64 {
	qw := ContentWords(query)
	if len(qw) == 0 {
		return 0
	}
	tw := map[string]bool{}
	for _, t := range titles {
		for _, w := range ContentWords(t) {
			tw[w] = true
		}
	}
	n := 0
	for _, w := range qw {
		if tw[w] {
			n++
		}
	}
	return float64(n) / float64(len(qw))
}

// SplitStratified divides queries into two halves, stratified by language and kind: the
// strata are taken in order of (language, kind), the queries of each in order of qid, and
// the queries so ordered go alternately to the first and the second half, starting with
// the first. Each stratum is so split as evenly as it can be (a stratum of one query goes
// to whichever half is due), and the halves differ in size by at most one. The split
// depends only on the qids, languages and kinds; each half keeps the input order.
func SplitStratified(qs []Query) (first, second []Query) {
	strata := map[string][]Query{}
	var keys []string
	for _, q := range qs {
		k := q.Language + "\x00" + q.Kind
		if _, ok := strata[k]; !ok {
			keys = append(keys, k)
		}
		strata[k] = append(strata[k], q)
	}
	sort.Strings(keys)
	half := map[string]int{} // qid -> 0 or 1
	n := 0
	for _, k := range keys {
		s := strata[k]
		sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
		for _, q := range s {
			half[q.ID] = n % 2
			n++
		}
	}
	for _, q := range qs {
		if half[q.ID] == 0 {
			first = append(first, q)
		} else {
			second = append(second, q)
		}
	}
	return first, second
}
