package textclean

import (
	"strings"
	"unicode"
)

// NormalizeQuery prepares a search query for tokenizing: control characters and runs of
// white space become one space, the ends are trimmed, invalid UTF-8 becomes U+FFFD. Case and
// accents are kept (the encoder is cased; the tokenizer applies NFKC itself). The edge and
// the cache warm-up job both call it, so a warmed query and a served one share token ids,
// hence cache keys.
func NormalizeQuery(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
