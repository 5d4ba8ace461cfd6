package ingest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/textclean"
)

// csvValue is what the CSV reader should return for a field written by encoding/csv:
// csv folds \r\n inside quoted fields to \n, and the mapping trims white space.
func csvValue(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// FuzzKaggle writes a valid Kaggle layout holding fuzzed values with encoding/csv and
// checks that every row comes back joined with its values; then feeds the raw bytes to the
// reader, which must not panic and must account for every row.
func FuzzKaggle(f *testing.F) {
	f.Add("95bFM", "Audio on demand", "Fancy <b>New</b> Band", "desc, with \"quotes\"\nand lines", []byte("uuid,title\np,x\n"))
	f.Add("", "", "", "", []byte("\ufeffuuid,podcast_uuid\n\"a,\"b\n"))
	f.Add("t\r\nx", " ", "é", "\x00", []byte("a\n\"unterminated"))
	f.Fuzz(func(t *testing.T, showTitle, showDesc, title, desc string, raw []byte) {
		if strings.ContainsRune(showTitle+showDesc+title+desc, '\r') {
			// encoding/csv turns a lone \r inside a quoted field into \n on reading; the
			// round trip is exact only without it.
			return
		}
		var pods, eps bytes.Buffer
		pw, ew := csv.NewWriter(&pods), csv.NewWriter(&eps)
		_ = pw.Write([]string{"uuid", "title", "description", "language"})
		_ = pw.Write([]string{"p-1", showTitle, showDesc, "en"})
		_ = ew.Write([]string{"title", "description", "pub_date", "uuid", "podcast_uuid"})
		for i := 0; i < 3; i++ {
			_ = ew.Write([]string{title, desc, "2017-12-01", fmt.Sprintf("e-%d", i), "p-1"})
		}
		pw.Flush()
		ew.Flush()
		b, err := joinKaggle(&pods, &eps, DefaultKaggleLayout)
		if err != nil {
			t.Fatal(err)
		}
		if b.Read != 3 || len(b.Records) != 3 {
			t.Fatalf("read %d, %d records, rejects %v", b.Read, len(b.Records), b.Rejects)
		}
		for i, r := range b.Records {
			if r.ID != fmt.Sprintf("e-%d", i) || r.ShowID != "p-1" || r.Title != csvValue(title) ||
				r.Description != csvValue(desc) || r.ShowTitle != csvValue(showTitle) ||
				r.ShowDescription != csvValue(showDesc) || r.Language != "en" {
				t.Fatalf("record %d lost values: %+v", i, r)
			}
		}
		// Arbitrary bytes as the episodes file: an error (no usable header) or every row
		// accounted for.
		pods.Reset()
		pods.WriteString("uuid,title\np-1,x\n")
		got, err := joinKaggle(&pods, bytes.NewReader(raw), DefaultKaggleLayout)
		if err == nil {
			episodeRejects := 0
			for _, r := range got.Rejects {
				if r.Kind == KindEpisode {
					episodeRejects++
				}
			}
			if got.Read != len(got.Records)+episodeRejects {
				t.Fatalf("read %d != %d records + %d rejects", got.Read, len(got.Records), episodeRejects)
			}
		}
	})
}

// replaceRunes replaces every invalid byte, and every rune ok rejects, with U+FFFD.
func replaceRunes(s string, ok func(rune) bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !ok(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// xmlChar reports whether XML 1.0 can carry r (xml.EscapeText writes U+FFFD for others).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// FuzzRSS builds a feed around fuzzed item texts (escaped as XML requires) and checks that
// every item comes back with its texts; then parses the raw bytes, which must not panic.
func FuzzRSS(f *testing.F) {
	f.Add("Show", "Episode &amp; one", "<p>Notes</p>", []byte("<rss><channel><item><title>x</title></item></channel></rss>"))
	f.Add("", "", "", []byte("  <?xml version=\"1.0\"?><rss><channel><item><title>a &gtgt; b</title></item></channel></rss>"))
	f.Add("é", "\x01", "]]>", []byte("<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry></entry></feed>"))
	f.Fuzz(func(t *testing.T, show, title, desc string, raw []byte) {
		esc := func(s string) string {
			var b bytes.Buffer
			_ = xml.EscapeText(&b, []byte(s))
			return b.String()
		}
		var doc strings.Builder
		doc.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>` +
			esc(show) + `</title><language>en</language>`)
		for i := 0; i < 3; i++ {
			fmt.Fprintf(&doc, `<item><guid>g-%d</guid><title>%s</title><description>%s</description></item>`,
				i, esc(title), esc(desc))
		}
		doc.WriteString(`</channel></rss>`)
		b, err := ReadRSS(strings.NewReader(doc.String()), "fuzz.xml")
		if err != nil {
			t.Fatal(err)
		}
		if b.Read != 3 || len(b.Records) != 3 {
			t.Fatalf("read %d, %d records, rejects %v from %q", b.Read, len(b.Records), b.Rejects, doc.String())
		}
		for i, r := range b.Records {
			if r.ID != fmt.Sprintf("g-%d", i) || r.Language != "en" ||
				textclean.Clean(r.Title) != textclean.Clean(replaceRunes(title, xmlChar)) ||
				textclean.Clean(r.Description) != textclean.Clean(replaceRunes(desc, xmlChar)) {
				t.Fatalf("item %d lost values: %+v (want title %q, description %q)", i, r, title, desc)
			}
		}
		got, err := ReadRSS(bytes.NewReader(raw), "raw.xml")
		if err != nil {
			t.Fatal(err)
		}
		episodeRejects := 0
		for _, r := range got.Rejects {
			if r.Kind == KindEpisode {
				episodeRejects++
			}
		}
		if got.Read != len(got.Records)+episodeRejects {
			t.Fatalf("read %d != %d records + %d rejects", got.Read, len(got.Records), episodeRejects)
		}
	})
}

// FuzzJSONL writes fuzzed values as JSON Lines and checks that every line comes back with
// its values; then reads the raw bytes, which must not panic and must account for every
// line.
func FuzzJSONL(f *testing.F) {
	f.Add("uuid-1", "Title", "<p>desc</p>", []byte("{\"uuid\":1}\nnot json\n[]\n{\"name\":null}\n"))
	f.Add("", " ", "\u2028", []byte("{} {}\n\n"))
	f.Fuzz(func(t *testing.T, id, title, desc string, raw []byte) {
		var buf bytes.Buffer
		for i := 0; i < 3; i++ {
			line, err := json.Marshal(map[string]any{"uuid": fmt.Sprintf("%s-%d", id, i),
				"series_uuid": 42, "name": title, "description": desc, "subtitle": nil, "series_genres": []string{"x"}})
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		b, err := ReadJSONL(&buf, "fuzz.jsonl", DefaultJSONLMapping)
		if err != nil {
			t.Fatal(err)
		}
		if b.Read != 3 || len(b.Records) != 3 {
			t.Fatalf("read %d, %d records, rejects %v", b.Read, len(b.Records), b.Rejects)
		}
		// encoding/json replaces each invalid UTF-8 byte with U+FFFD when marshalling.
		valid := func(s string) string { return strings.TrimSpace(replaceRunes(s, utf8.ValidRune)) }
		for i, r := range b.Records {
			if r.ID != valid(fmt.Sprintf("%s-%d", id, i)) || r.ShowID != "42" || r.Title != valid(title) || r.Description != valid(desc) {
				t.Fatalf("line %d lost values: %+v", i, r)
			}
		}
		got, err := ReadJSONL(bytes.NewReader(raw), "raw.jsonl", DefaultJSONLMapping)
		if err != nil {
			t.Fatal(err)
		}
		if got.Read != len(got.Records)+len(got.Rejects) {
			t.Fatalf("read %d != %d records + %d rejects", got.Read, len(got.Records), len(got.Rejects))
		}
	})
}
