package textclean

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// tagPattern matches something that looks like an HTML tag or entity; text still holding
// one after a first pass was escaped twice (common in feeds) and gets a second pass.
var tagPattern = regexp.MustCompile(`(?i)</?[a-z][a-z0-9]*(?:\s[^<>]*)?/?>|&(?:[a-z]{2,8}|#[0-9]{1,7}|#x[0-9a-f]{1,6});`)

// Clean returns s as plain text: HTML tags stripped (block tags become spaces, script and
// style content is dropped), entities decoded, URLs removed, control and zero-width
// characters removed, invalid UTF-8 dropped, and every run of white space (including
// no-break spaces, tabs and newlines) collapsed to one space, with none at either end.
// Text escaped twice ("&lt;p&gt;") is unescaped and stripped too.
func Clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	if strings.ContainsAny(s, "<&") {
		s = stripHTML(s)
		if strings.ContainsAny(s, "<&") && tagPattern.MatchString(s) {
			s = stripHTML(s)
		}
	}
	s = dropInvisible(s)
	s = dropURLs(s)
	return strings.Join(strings.Fields(s), " ")
}

// blockTags are the elements that separate words; their boundaries become a space so that
// "<p>one</p><p>two</p>" reads "one two", not "onetwo".
var blockTags = map[string]bool{
	"p": true, "br": true, "div": true, "li": true, "ul": true, "ol": true, "tr": true,
	"td": true, "th": true, "table": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "hr": true, "blockquote": true, "pre": true, "section": true,
	"article": true, "header": true, "footer": true, "dd": true, "dt": true, "dl": true,
	"figure": true, "figcaption": true, "img": true, "script": true, "style": true,
}

// stripHTML keeps the text content of s, decoding entities, dropping tags and comments and
// the content of script and style elements.
func stripHTML(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	z := html.NewTokenizer(strings.NewReader(s))
	skip := ""
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == "" {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if (tag == "script" || tag == "style") && tt == html.StartTagToken {
				skip = tag
			}
			if blockTags[tag] {
				b.WriteByte(' ')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == skip {
				skip = ""
			}
			if blockTags[tag] {
				b.WriteByte(' ')
			}
		}
	}
}

// dropInvisible removes control and invisible format characters (zero-width spaces and
// joiners, BOMs, bidi marks, soft hyphens) and U+FFFD, keeping white space: they would
// split or glue tokens, and removing them first means no URL can hide behind one.
func dropInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return r
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

// urlStarts are the (lower-case) beginnings of the web addresses dropURLs removes.
var urlStarts = []string{"http://", "https://", "ftp://", "mailto:", "www."}

// dropURLs replaces every web address (scheme URLs, mailto links, bare "www." hosts), up
// to the next white space, quote or angle bracket, with a space. A hand-written scan: this
// runs on every description and a regular expression was the costliest step of ingest.
func dropURLs(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		switch s[i] | 0x20 { // ASCII lower case
		case 'h', 'f', 'm', 'w':
		default:
			continue
		}
		n := urlStartAt(s, i)
		if n == 0 {
			continue
		}
		end := i + n
		for end < len(s) {
			r, size := utf8.DecodeRuneInString(s[end:])
			if r == '<' || r == '>' || r == '"' || unicode.IsSpace(r) {
				break
			}
			end += size
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteByte(' ')
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// urlStartAt returns the length of the URL beginning at s[i:], or 0 if none starts there.
func urlStartAt(s string, i int) int {
	for _, p := range urlStarts {
		if len(s)-i >= len(p) && strings.EqualFold(s[i:i+len(p)], p) {
			return len(p)
		}
	}
	return 0
}
