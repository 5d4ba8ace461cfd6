package pairs

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// token is one word of a text, lower-cased, with its byte offset in the text.
type token struct {
	word string
	pos  int
}

// isCJK reports whether r belongs to a script written without spaces between words; such
// runs are cut into overlapping character bigrams, the usual unsupervised unit for them.
func isCJK(r rune) bool {
	if r < 0x0E00 { // Latin, Greek, Cyrillic, Arabic, Hebrew, Indic: the common case, fast
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Thai, r)
}

// tokenize splits s into lower-case words (runs of letters, digits and marks); CJK and
// Thai runs become character bigrams (a lone character stays one token).
func tokenize(s string) []token {
	var out []token
	start := -1
	cjk := false
	flush := func(end int) {
		if start < 0 {
			return
		}
		run := s[start:end]
		if cjk {
			out = append(out, bigrams(run, start)...)
		} else {
			out = append(out, token{strings.ToLower(run), start})
		}
		start = -1
	}
	for i, r := range s {
		word := unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
		switch {
		case !word:
			flush(i)
		case start >= 0 && isCJK(r) != cjk && !unicode.Is(unicode.Mn, r):
			flush(i)
			start, cjk = i, isCJK(r)
		case start < 0:
			start, cjk = i, isCJK(r)
		}
	}
	flush(len(s))
	return out
}

// bigrams cuts a run of CJK characters (at byte offset off) into overlapping bigrams.
func bigrams(run string, off int) []token {
	if utf8.RuneCountInString(run) == 1 {
		return []token{{run, off}}
	}
	var out []token
	var prev rune
	prevPos := -1
	for i, r := range run {
		if prevPos >= 0 {
			out = append(out, token{string(prev) + string(r), off + prevPos})
		}
		prev, prevPos = r, i
	}
	return out
}

// sentences splits plain text into sentences: after ".", "!", "?" or "…" followed by a
// space, and after the full-width "。", "！", "？" anywhere. Pieces are trimmed; empty ones
// dropped.
func sentences(s string) []string {
	var out []string
	start := 0
	add := func(end int) {
		if p := strings.TrimSpace(s[start:end]); p != "" {
			out = append(out, p)
		}
		start = end
	}
	for i, r := range s {
		switch r {
		case '。', '！', '？':
			add(i + utf8.RuneLen(r))
		case '.', '!', '?', '…':
			next := i + utf8.RuneLen(r)
			if next < len(s) && s[next] == ' ' {
				add(next)
			}
		}
	}
	add(len(s))
	return out
}

// stopwords are function words of the corpus's main languages and podcast boilerplate
// ("subscribe", "spotify"): never distinctive, never content.
var stopwords = toSet(`
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these
they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves get got let us one two new
like know think going go really well back way make see today week also way want need us
el la los las de del y en un una que es por con para se al lo como su sus más pero o le ya
este esta ha son si sobre entre cuando muy sin también me nos te mi tu
o os as um uma do da dos das em no na nos nas com por para é e não mais ao à seu sua ele ela
der die das und ist nicht ein eine einen dem den des mit von zu auf für im auch es sich
sie wir ich er aus bei nach wie an oder aber so wird werden hat haben noch nur
le les des du un une et est en dans pour pas que qui sur au avec ce il elle nous vous ils
plus par se sont ou mais
de het een en van is dat op te in voor met zijn niet aan er ook als bij
il lo gli di che è per con non una sono
episode episodes podcast podcasts show shows listen listening subscribe subscribed follow
apple spotify google youtube instagram facebook twitter tiktok patreon email website link
links www com http https org net rss feed
`)

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// hasDigit reports whether w contains a digit.
func hasDigit(w string) bool {
	return strings.IndexFunc(w, unicode.IsDigit) >= 0
}

// formatCounts renders a count map as "a=1 b=2", keys sorted.
func formatCounts(m map[string]int) string {
	return formatSorted(m, " ", func(k string, v int) string { return fmt.Sprintf("%s=%d", k, v) })
}

// formatSorted renders each entry of m with item, keys sorted, joined by sep.
func formatSorted[V any](m map[string]V, sep string, item func(k string, v V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = item(k, m[k])
	}
	return strings.Join(parts, sep)
}

// episodeRNG is the random source of a seeded generator for one episode: fixed by the seed
// and the episode id, so an episode's queries do not depend on the corpus order.
func episodeRNG(seed uint64, id string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(id))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}
