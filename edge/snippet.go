package edge

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Snippet cuts a window of about n characters from text (plain text, see textclean.Clean)
// where the most query terms occur, on word boundaries, with "…" marking cuts.
func Snippet(text, queryText string, n int) string {
	if n <= 0 || text == "" {
		return ""
	}
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	terms := map[string]bool{}
	for _, t := range strings.FieldsFunc(strings.ToLower(queryText), notWordRune) {
		if utf8.RuneCountInString(t) >= 2 {
			terms[t] = true
		}
	}
	// Word spans (byte offsets) and whether each is a query term.
	// rs and re are the same offsets counted in runes.
	type word struct {
		start, end, rs, re int
		hit                bool
	}
	var words []word
	start, rstart, nr := -1, 0, 0
	for i, r := range text {
		if notWordRune(r) {
			if start >= 0 {
				words = append(words, word{start, i, rstart, nr, terms[strings.ToLower(text[start:i])]})
				start = -1
			}
		} else if start < 0 {
			start, rstart = i, nr
		}
		nr++
	}
	if start >= 0 {
		words = append(words, word{start, len(text), rstart, nr, terms[strings.ToLower(text[start:])]})
	}
	if len(words) == 0 {
		return cutRunes(text, n) + "…"
	}
	// Slide a window of words whose span fits n characters; keep the one with most hits
	// (the earliest on ties, so a plain description starts at its beginning).
	best, bestHits := 0, -1
	hits, j := 0, 0
	for i := range words {
		if j < i {
			j, hits = i, 0
		}
		for j < len(words) && words[j].re-words[i].rs <= n {
			if words[j].hit {
				hits++
			}
			j++
		}
		if hits > bestHits {
			best, bestHits = i, hits
		}
		if j > i && words[i].hit {
			hits--
		}
	}
	end := best
	for end+1 < len(words) && words[end+1].re-words[best].rs <= n {
		end++
	}
	from, to := words[best].start, words[end].end
	out := text[from:to]
	if words[end].re-words[best].rs > n {
		out, to = cutRunes(out, n), -1
	}
	if from > 0 {
		out = "…" + out
	}
	if to != len(text) {
		out += "…"
	}
	return out
}

func notWordRune(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }

func cutRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
