package pairs

import (
	"strings"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/ingest"
)

// MethodTitle tags pairs whose query is the episode title.
const MethodTitle = "title"

// maxTitleRepeat is how many episodes may share a title (digits ignored) before it stops
// identifying one: "Mundo Cristiano - 03/16/23" (81 in the demo corpus) is no query.
const maxTitleRepeat = 2

// genericTitleWords are words that say where an episode sits in a series, not what it is
// about: a title made only of these, numbers, months and stop words is uninformative.
var genericTitleWords = toSet(`
episode episodes ep eps episodio episódio episodios folge épisode aflevering afl part parte
partie teil pt chapter capitulo capítulo kapitel chapitre season temporada staffel saison
series serie no nr num number número numero trailer teaser bonus intro introduction
introducing preview update updates live rerun replay repost encore special sneak peek
announcement announcing welcome hour minute min vol volume edition extra recap q a qa
ama mailbag news podcast show week weekly day daily today tonight morning evening night
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec
monday tuesday wednesday thursday friday saturday sunday
enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre
januar februar märz juni juli oktober dezember
`)

// Title uses the episode title as the query and the rest of the episode text as the
// document, skipping uninformative titles.
type Title struct {
	freq map[string]int
}

// NewTitle fits the title generator to the corpus (it counts how often each title occurs).
func NewTitle(episodes []ingest.Episode) *Title {
	t := &Title{freq: map[string]int{}}
	for i := range episodes {
		t.freq[titleKey(episodes[i].Title)]++
	}
	return t
}

// Method implements Generator.
func (t *Title) Method() string { return MethodTitle }

// Generate implements Generator: one candidate, or none when the title is uninformative or
// the episode has no description (the show's text alone says nothing about the episode).
func (t *Title) Generate(ep *ingest.Episode, n int) []Candidate {
	if n < 1 || ep.Description == "" || !t.Informative(ep) {
		return nil
	}
	return []Candidate{{Query: ep.Title, Text: ingest.ComposeText(ep.Description, ep.ShowTitle, ep.ShowDescription)}}
}

// Informative reports whether ep's title can serve as a query: it has at least one content
// word (not a number, date, stop word or series word like "Episode" or "Part"), is not the
// show's title, and is shared by at most maxTitleRepeat episodes of the corpus.
func (t *Title) Informative(ep *ingest.Episode) bool {
	if ep.Title == "" || strings.EqualFold(ep.Title, ep.ShowTitle) || t.freq[titleKey(ep.Title)] > maxTitleRepeat {
		return false
	}
	for _, tok := range tokenize(ep.Title) {
		w := tok.word
		if hasDigit(w) || stopwords[w] || genericTitleWords[w] {
			continue
		}
		if utf8.RuneCountInString(w) >= 2 {
			return true
		}
	}
	return false
}

// titleKey is a title with case, digits and punctuation ignored, to count repeats.
func titleKey(title string) string {
	var parts []string
	for _, tok := range tokenize(title) {
		if !hasDigit(tok.word) {
			parts = append(parts, tok.word)
		}
	}
	return strings.Join(parts, " ")
}
