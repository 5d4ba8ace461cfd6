package evaluate

import (
	"strings"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
)

// PseudoPairs makes synthetic (query, document) pairs from the documents alone, the
// article's recipe for adapting the engine to a catalogue without labelled queries, with the
// pairs command's unsupervised generators (core/pairs: title, inverse cloze, TF-IDF terms),
// up to perDoc pairs per document. A document's title, when it has one, is its episode
// title and the rest of its text the description. The same seed gives the same pairs.
func PseudoPairs(docs []Doc, perDoc int, seed uint64) []Pair {
	eps := make([]ingest.Episode, len(docs))
	lang := make(map[string]string, len(docs))
	for i, d := range docs {
		desc := d.Text
		if d.Title != "" {
			desc = strings.TrimPrefix(strings.TrimPrefix(desc, strings.TrimRight(d.Title, ".")), ".")
		}
		eps[i] = ingest.Episode{ID: d.ID, Title: d.Title, Description: strings.TrimSpace(desc), Text: d.Text, Language: d.Language}
		lang[d.ID] = d.Language
	}
	ps, _ := pairs.Generate(eps, pairs.DefaultGenerators(eps, seed), perDoc, nil)
	return FromPairs(ps, func(id string) string { return lang[id] })
}

// Subsample keeps at most maxDocs documents: every document judged relevant for a query
// first (so every query stays answerable), then others in order. Scores on a subsample are
// optimistic (fewer distractors); it exists to keep development runs cheap.
func Subsample(docs []Doc, qs []Query, maxDocs int) []Doc {
	if maxDocs <= 0 || len(docs) <= maxDocs {
		return docs
	}
	judged := map[string]bool{}
	for _, q := range qs {
		for id, g := range q.Relevant {
			if g >= 1 {
				judged[id] = true
			}
		}
	}
	var out []Doc
	for _, d := range docs {
		if judged[d.ID] {
			out = append(out, d)
		}
	}
	for _, d := range docs {
		if len(out) >= maxDocs {
			break
		}
		if !judged[d.ID] {
			out = append(out, d)
		}
	}
	return out
}
