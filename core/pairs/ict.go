package pairs

import (
	"strings"

	"github.com/podsearch/podsearch/core/ingest"
)

// MethodInverseCloze tags pairs whose query is a sentence taken out of the description.
const MethodInverseCloze = "inverse-cloze"

// Bounds on an inverse-cloze query and on what is left of the text, in tokens (words, or
// character bigrams for CJK): a query must say something and stay query-sized, and the
// document must still be a document.
const (
	minSentenceTokens = 4
	maxSentenceTokens = 40
	minRestTokens     = 4
)

// maxSentenceRepeat is how many episode descriptions may contain a sentence before it is
// boilerplate ("Support this podcast", a show's standing sign-off) and no query.
const maxSentenceRepeat = 2

// InverseCloze is the Inverse Cloze Task (Lee, Chang and Toutanova 2019): a sentence of the
// description is the query; the episode text without that sentence is the document.
type InverseCloze struct {
	seed uint64
	freq map[string]int
}

// NewInverseCloze fits the generator to the corpus (it counts in how many descriptions each
// sentence occurs); seed fixes which sentences each episode gives.
func NewInverseCloze(episodes []ingest.Episode, seed uint64) *InverseCloze {
	g := &InverseCloze{seed: seed, freq: map[string]int{}}
	for i := range episodes {
		seen := map[string]bool{}
		for _, s := range sentences(episodes[i].Description) {
			if k := strings.ToLower(s); !seen[k] {
				seen[k] = true
				g.freq[k]++
			}
		}
	}
	return g
}

// Method implements Generator.
func (g *InverseCloze) Method() string { return MethodInverseCloze }

// Generate implements Generator: up to n distinct sentences of the description, in a
// random order fixed by the seed and the episode id, each with the text left without it.
// Sentences of 4-40 tokens qualify, unless they are boilerplate repeated across the corpus.
func (g *InverseCloze) Generate(ep *ingest.Episode, n int) []Candidate {
	sents := sentences(ep.Description)
	total := len(tokenize(ep.Text))
	var usable []int
	for i, s := range sents {
		k := len(tokenize(s))
		if k >= minSentenceTokens && k <= maxSentenceTokens && total-k >= minRestTokens &&
			!strings.EqualFold(s, ep.Title) && g.freq[strings.ToLower(s)] <= maxSentenceRepeat {
			usable = append(usable, i)
		}
	}
	rng := episodeRNG(g.seed, ep.ID)
	rng.Shuffle(len(usable), func(i, j int) { usable[i], usable[j] = usable[j], usable[i] })
	var out []Candidate
	for _, i := range usable {
		if len(out) >= n {
			break
		}
		rest := make([]string, 0, len(sents)-1)
		rest = append(rest, sents[:i]...)
		rest = append(rest, sents[i+1:]...)
		text := ingest.ComposeText(ep.Title, strings.Join(rest, " "), ep.ShowTitle, ep.ShowDescription)
		out = append(out, Candidate{Query: sents[i], Text: text})
	}
	return out
}
