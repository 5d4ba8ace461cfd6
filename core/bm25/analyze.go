package bm25

import (
	"strings"
	"unicode"

	"github.com/kljensen/snowball/english"
)

// AnalyzerName names the analysis rules of Analyze. An index records it (its keyword
// postings hold terms as Analyze made them), and one made with other rules must be rebuilt:
// the same word would be another term at query time.
const AnalyzerName = "words+stop+snowball-english"

// stopWords are common English function words dropped from documents and queries.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are as at
		be because been before being below between both but by can could did do does doing down
		during each few for from further had has have having he her here hers herself him himself
		his how i if in into is it its itself just me more most my myself no nor not now of off on
		once only or other our ours ourselves out over own same she should so some such than that
		the their theirs them themselves then there these they this those through to too under
		until up very was we were what when where which while who whom why will with would you
		your yours yourself yourselves s t don won isn aren wasn weren doesn didn ll ve re d m`) {
		m[w] = true
	}
	return m
}()

// Analyze splits text into index terms: runs of letters and digits, lower-cased, stop words
// dropped and the Snowball English (Porter2) stemmer applied. Han, Hiragana, Katakana and Hangul characters
// (written without spaces) each become a term of their own.
func Analyze(text string) []string {
	var terms []string
	var b strings.Builder
	flush := func() {
		if b.Len() == 0 {
			return
		}
		w := b.String()
		b.Reset()
		if stopWords[w] {
			return
		}
		terms = append(terms, Stem(w))
	}
	for _, r := range text {
		switch {
		case isCJK(r):
			flush()
			terms = append(terms, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return terms
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

// Stem reduces a lower-cased word to its Snowball English (Porter2) stem, so related forms
// meet ("podcasts" and "podcast", "stories" and "story", "running" and "run"). Words of two
// letters or fewer stay as they are. Porter2 measured better than a light plural/-ing/-ed
// suffix stripper on both the podcast dev queries and SciFact (docs/evaluation.md).
func Stem(w string) string {
	return english.Stem(w, false)
}
