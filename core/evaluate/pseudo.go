package evaluate

import (
	"math/rand/v2"
	"strings"
	"unicode"
)

// PseudoPairs makes synthetic (query, document) pairs from the documents alone, the
// article's recipe for adapting the engine to a catalogue without labelled queries, with two
// published unsupervised methods (no query-generation model is available here): the title
// as a query for its document (when it has at least 3 words), and the inverse cloze task (a
// sentence of the text, at least 5 words, as a query for the document it came from), up to
// perDoc pairs per document. The same seed gives the same pairs.
func PseudoPairs(docs []Doc, perDoc int, seed uint64) []Pair {
	rng := rand.New(rand.NewPCG(seed, 0xc102e))
	var out []Pair
	for _, d := range docs {
		n := 0
		if len(strings.Fields(d.Title)) >= 3 && perDoc > 0 {
			out = append(out, Pair{Query: d.Title, EpisodeID: d.ID, Text: d.Text, Method: "title", Language: d.Language})
			n++
		}
		body := d.Text
		if d.Title != "" {
			body = strings.TrimPrefix(strings.TrimPrefix(body, strings.TrimRight(d.Title, ".")), ". ")
		}
		var cands []string
		for _, s := range Sentences(body) {
			if len(strings.Fields(s)) >= 5 {
				cands = append(cands, s)
			}
		}
		rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		for _, s := range cands {
			if n >= perDoc {
				break
			}
			out = append(out, Pair{Query: s, EpisodeID: d.ID, Text: d.Text, Method: "ict", Language: d.Language})
			n++
		}
	}
	return out
}

// Sentences splits text after '.', '!' or '?' followed by a space and an upper-case letter
// or digit (so "e.g. this" and "3.5 mg" stay whole).
func Sentences(text string) []string {
	var out []string
	rs := []rune(text)
	start := 0
	for i := 0; i+2 < len(rs); i++ {
		if (rs[i] == '.' || rs[i] == '!' || rs[i] == '?') && rs[i+1] == ' ' && (unicode.IsUpper(rs[i+2]) || unicode.IsDigit(rs[i+2])) {
			if s := strings.TrimSpace(string(rs[start : i+1])); s != "" {
				out = append(out, s)
			}
			start = i + 2
		}
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" {
		out = append(out, s)
	}
	return out
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
