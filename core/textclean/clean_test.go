package textclean

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	cases := []struct{ in, want string }{
		{"  plain   text \n\t here ", "plain text here"},
		{"<p>Running Stitch join Hannah.</p><p>Cheers&nbsp;NZ&#39;s</p>", "Running Stitch join Hannah. Cheers NZ's"},
		{"From\u00a0the public<br/>treatment", "From the public treatment"},
		{`get it <a href="https://example.com/x">https://example.com/x</a> or www.example.org/y today`, "get it or today"},
		{"&lt;p&gt;double &amp;amp; escaped&lt;/p&gt;", "double & escaped"},
		{"Q&A with AT&T", "Q&A with AT&T"},
		{"a<script>var x = 1;</script>b<style>p{}</style> c", "a b c"},
		{"zero\u200bwidth\ufeff joiner", "zerowidth joiner"},
		{"bad \xff utf8", "bad utf8"},
		{"<ul>\n\t<li>Ken Boothe - <em>You Keep</em></li>\n\t<li>The New Sounds</li>\n</ul>", "Ken Boothe - You Keep The New Sounds"},
		{"mail mailto:someone@example.com now", "mail now"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzClean checks that Clean never panics, always returns collapsed valid UTF-8 without
// URLs, and loses nothing from text that needs no cleaning.
func FuzzClean(f *testing.F) {
	for _, s := range []string{
		"<p>hello &amp; world</p>", "see https://x.y/z now", "<script>", "&#xFFFFFF;", "<<a>>",
		"&lt;b&gt;", "plain words", "\u00a0\u200b", "<a href='x'>t</a", "<!-- c -->x", "\xc3\x28",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		if out != strings.TrimSpace(out) || strings.Contains(out, "  ") {
			t.Fatalf("white space not collapsed: %q", out)
		}
		if strings.Contains(strings.ToLower(out), "http://") || strings.Contains(strings.ToLower(out), "https://") {
			t.Fatalf("URL survived: %q from %q", out, s)
		}
		// Text that needs no cleaning passes through unchanged.
		if plain := strings.Join(strings.Fields(s), " "); plain == s && utf8.ValidString(s) &&
			!strings.ContainsAny(s, "<&:.\u200b\u200c\u200d\u2060\ufeff\ufffd") && isPrintable(s) {
			if out != s {
				t.Fatalf("plain text changed: %q -> %q", s, out)
			}
		}
	})
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2060 && r <= 0x206f) || r == 0xad || r == 0xfeff {
			return false
		}
	}
	return true
}
