package pairs

import (
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/ingest"
)

// MethodTFIDF tags pairs whose query is the episode's most distinctive terms.
const MethodTFIDF = "tfidf"

// termsPerQuery is the length of a TF-IDF query: about what people type into a search box.
const termsPerQuery = 4

// TFIDF makes short keyword queries of an episode's most distinctive terms, by TF-IDF over
// the corpus (episode title and description; the show's text is shared by all its episodes
// and would not tell them apart). The document is the whole episode text.
type TFIDF struct {
	df map[string]int
	n  int
}

// NewTFIDF fits the document frequencies on the corpus.
func NewTFIDF(episodes []ingest.Episode) *TFIDF {
	g := &TFIDF{df: map[string]int{}, n: len(episodes)}
	for i := range episodes {
		seen := map[string]bool{}
		for _, t := range tokenize(episodes[i].Title + " \n " + episodes[i].Description) {
			if !seen[t.word] {
				seen[t.word] = true
				g.df[t.word]++
			}
		}
	}
	return g
}

// Method implements Generator.
func (g *TFIDF) Method() string { return MethodTFIDF }

// Generate implements Generator: the top terms by tf * log(N/df), cut into queries of
// termsPerQuery terms (best terms first); within a query, terms keep the order they have in
// the text. Stop words, numbers and one-letter words are not terms; a query needs at least
// two terms.
func (g *TFIDF) Generate(ep *ingest.Episode, n int) []Candidate {
	type term struct {
		word  string
		tf    int
		first int
		score float64
	}
	byWord := map[string]*term{}
	var terms []*term
	for _, t := range tokenize(ep.Title + " \n " + ep.Description) {
		if stopwords[t.word] || hasDigit(t.word) || utf8.RuneCountInString(t.word) < 2 {
			continue
		}
		if x, ok := byWord[t.word]; ok {
			x.tf++
			continue
		}
		x := &term{word: t.word, tf: 1, first: t.pos}
		byWord[t.word] = x
		terms = append(terms, x)
	}
	for _, x := range terms {
		df := g.df[x.word]
		if df < 1 {
			df = 1
		}
		x.score = (1 + math.Log(float64(x.tf))) * math.Log(float64(g.n+1)/float64(df))
	}
	sort.SliceStable(terms, func(i, j int) bool { return terms[i].score > terms[j].score })
	var out []Candidate
	for start := 0; len(out) < n && start+1 < len(terms); start += termsPerQuery {
		group := terms[start:min(start+termsPerQuery, len(terms))]
		if len(group) < 2 {
			break
		}
		group = append([]*term(nil), group...)
		sort.Slice(group, func(i, j int) bool { return group[i].first < group[j].first })
		words := make([]string, 0, len(group))
		end := -1 // byte offset just past the last word, for joining CJK bigrams
		for _, x := range group {
			first, size := utf8.DecodeRuneInString(x.word)
			if isCJK(first) && len(words) > 0 && x.first+size == end {
				// overlapping bigrams "洛迪" + "迪的" read as "洛迪的"
				words[len(words)-1] += x.word[size:]
			} else {
				words = append(words, x.word)
			}
			end = x.first + len(x.word)
		}
		out = append(out, Candidate{Query: strings.Join(words, " "), Text: ep.Text})
	}
	return out
}
