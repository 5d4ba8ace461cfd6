package evaluate

import (
	"fmt"

	"github.com/podsearch/podsearch/core/metrics"
	"github.com/podsearch/podsearch/core/pairs"
)

// Pair is one (query, episode) training or evaluation pair: a core/pairs pair (as the pairs
// command writes train.jsonl, eval.jsonl, test.jsonl) plus the episode's language.
type Pair struct {
	Query     string
	EpisodeID string
	Text      string // the document side (core/pairs: the episode text, minus the query where the method takes it out)
	Method    string // how the query was made (title, ict, tfidf ...); may be empty
	Language  string // the episode's language; may be empty
}

// FromPairs converts the pairs command's pairs (core/pairs) to evaluation pairs; language,
// which the pairs files do not carry, comes from lang (nil: none).
func FromPairs(ps []pairs.Pair, lang func(episodeID string) string) []Pair {
	out := make([]Pair, len(ps))
	for i, p := range ps {
		out[i] = Pair{Query: p.Query, EpisodeID: p.EpisodeID, Text: p.Text, Method: p.Method}
		if lang != nil {
			out[i].Language = lang(p.EpisodeID)
		}
	}
	return out
}

// Episodes returns the distinct episodes of ps (first text seen for each id) and, for each
// pair, the index of its episode.
func Episodes(ps []Pair) (docs []Doc, episodeOf []int) {
	idx := map[string]int{}
	episodeOf = make([]int, len(ps))
	for i, p := range ps {
		j, ok := idx[p.EpisodeID]
		if !ok {
			j = len(docs)
			idx[p.EpisodeID] = j
			docs = append(docs, Doc{ID: p.EpisodeID, Text: p.Text, Language: p.Language})
		}
		episodeOf[i] = j
	}
	return docs, episodeOf
}

// PairQueries turns pairs into evaluation queries, each with its own episode as the one
// relevant document.
func PairQueries(ps []Pair) []Query {
	qs := make([]Query, len(ps))
	for i, p := range ps {
		qs[i] = Query{ID: fmt.Sprintf("pair-%d", i), Text: p.Query, Relevant: metrics.Qrels{p.EpisodeID: 1},
			Language: p.Language, Method: p.Method}
	}
	return qs
}

// FirstPerEpisode keeps the first pair of each episode, the deduplication the reference
// article applies to its eval and test pairs.
func FirstPerEpisode(ps []Pair) []Pair {
	seen := map[string]bool{}
	var out []Pair
	for _, p := range ps {
		if !seen[p.EpisodeID] {
			seen[p.EpisodeID] = true
			out = append(out, p)
		}
	}
	return out
}

// UseDocTexts replaces each pair's document text with its episode's full text from docs
// (what an index of that corpus holds), so a query adapter learns to reach the vectors the
// index serves; it returns how many pairs it changed. Pairs of episodes absent from docs
// keep their own text.
func UseDocTexts(ps []Pair, docs []Doc) int {
	byID := make(map[string]string, len(docs))
	for _, d := range docs {
		byID[d.ID] = d.Text
	}
	n := 0
	for i := range ps {
		if t, ok := byID[ps[i].EpisodeID]; ok && ps[i].Text != t {
			ps[i].Text = t
			n++
		}
	}
	return n
}
