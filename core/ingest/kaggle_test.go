package ingest

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestKaggleFixtureJoin(t *testing.T) {
	b, err := ReadKaggle(filepath.Join("testdata", "kaggle"), DefaultKaggleLayout)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build([]*Batch{b}, Options{NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	if st.Read != 9 || st.Written != 4 || st.Malformed != 1 || st.PodcastMissing != 1 ||
		st.Empty != 1 || st.DuplicateText != 1 || st.DuplicateID != 1 || st.PodcastsRejected != 2 {
		t.Fatalf("stats: %s", st)
	}
	if st.Read != st.Written+st.Dropped() {
		t.Fatalf("read %d != written %d + dropped %d", st.Read, st.Written, st.Dropped())
	}
	got := map[string]Episode{}
	for _, e := range res.Episodes {
		got[e.ID] = e
	}
	e1 := got["e-1"]
	if e1.ShowID != "p-1" || e1.ShowTitle != "95bFM" || e1.Title != "Fancy New Band: Running Stitch" ||
		e1.ShowDescription != "Audio on demand from selected shows" || e1.Language != "en" ||
		e1.LanguageFrom != "source" || e1.Date != "2017-12-01T19:00:00Z" || e1.Source != SourceKaggle {
		t.Fatalf("e-1 joined wrongly: %+v", e1)
	}
	want := "Fancy New Band: Running Stitch. Running Stitch join Hannah to play some new tracks ahead of " +
		"their EP release next year. Cheers NZ On Air Music! 95bFM. Audio on demand from selected shows"
	if e1.Text != want {
		t.Fatalf("e-1 text:\n got %q\nwant %q", e1.Text, want)
	}
	e2 := got["e-2"]
	if strings.Contains(e2.Text, "http") || !strings.Contains(e2.Description, "let's face it... 2017 hasn't") {
		t.Fatalf("e-2 not cleaned: %q", e2.Description)
	}
	e3 := got["e-3"]
	if e3.ShowTitle != "The History Hour" || e3.ShowDescription != "Stories from the past, & the people who lived them." || e3.Language != "en" {
		t.Fatalf("e-3 show fields: %+v", e3)
	}
	if e8 := got["e-8"]; e8.Language != "de" || e8.LanguageFrom != "detected" {
		t.Fatalf("e-8 language: %q from %q", e8.Language, e8.LanguageFrom)
	}
	reasons := map[string]string{}
	for _, r := range res.Rejects {
		reasons[r.Kind+" "+r.ID+" "+r.Reason] = r.Origin
	}
	for _, k := range []string{
		"podcast p-1 duplicate-id", "podcast p-3 no-episodes", "episode e-4 podcast-missing",
		"episode  malformed", "episode e-6 empty", "episode e-7 duplicate-text", "episode e-1 duplicate-id",
	} {
		if _, ok := reasons[k]; !ok {
			t.Errorf("missing reject %q; have %v", k, reasons)
		}
	}
	if o := reasons["episode e-4 podcast-missing"]; o != "episodes.csv:6" {
		t.Errorf("orphan origin %q, want episodes.csv:6 (e-2 spans two lines)", o)
	}
}

func TestKaggleCustomColumns(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shows.csv", "show_key,show_name,about,lang\ns1,Tech Talk,Weekly technology news,en-US\n")
	write("eps.csv", "key,show_ref,headline,notes,when\nx1,s1,Chips and you,All about semiconductors,2020-01-02\n")
	pods, err := ParseMapping("id=show_key,title=show_name,description=about,language=lang")
	if err != nil {
		t.Fatal(err)
	}
	eps, err := ParseMapping("id=key,show_id=show_ref,title=headline,description=notes,date=when")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadKaggle(dir, KaggleLayout{PodcastsFile: "shows.csv", EpisodesFile: "eps.csv", Podcasts: pods, Episodes: eps})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build([]*Batch{b}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Episodes) != 1 {
		t.Fatalf("got %d episodes: %s", len(res.Episodes), res.Stats)
	}
	e := res.Episodes[0]
	if e.Text != "Chips and you. All about semiconductors. Tech Talk. Weekly technology news" ||
		e.Language != "en" || e.Date != "2020-01-02T00:00:00Z" || e.ShowID != "s1" {
		t.Fatalf("custom columns: %+v", e)
	}
	// A layout naming a column the file lacks is a clear error.
	bad := DefaultKaggleLayout
	bad.PodcastsFile, bad.EpisodesFile = "shows.csv", "eps.csv"
	if _, err := ReadKaggle(dir, bad); err == nil || !strings.Contains(err.Error(), "no column for id") {
		t.Fatalf("want a missing-column error, got %v", err)
	}
	if _, err := ReadKaggle(filepath.Join(dir, "nowhere"), DefaultKaggleLayout); err == nil {
		t.Fatal("want an error for a missing folder")
	}
}

// A stray (unterminated) quote in a real-shaped episodes.csv (CRLF lines, quoted multi-line
// descriptions, doubled quotes) costs its own row only, and that row is counted.
func TestKaggleStrayQuote(t *testing.T) {
	b, err := ReadKaggle(filepath.Join("testdata", "kaggle-stray"), DefaultKaggleLayout)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build([]*Batch{b}, Options{NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	if st.Read != 10 || st.Written != 8 || st.Malformed != 2 || st.Read != st.Written+st.Dropped() {
		t.Fatalf("stats: %s", st)
	}
	got := map[string]Episode{}
	for _, e := range res.Episodes {
		got[e.ID] = e
	}
	for _, id := range []string{"e-1", "e-2", "e-4", "e-5", "e-6", "e-7", "e-9", "e-10"} {
		if _, ok := got[id]; !ok {
			t.Errorf("episode %s lost", id)
		}
	}
	if d := got["e-2"].Description; d != "Listeners asked about rates. We answer three of them. Send yours in." {
		t.Errorf("e-2 multi-line description: %q", d)
	}
	if d := got["e-6"].Description; !strings.Contains(d, `the "seed library"`) {
		t.Errorf("e-6 doubled quotes: %q", d)
	}
	if e := got["e-4"]; e.Description != "When to cut, and how much" || e.ShowTitle != "Garden Hour" {
		t.Errorf("e-4 after the stray quote: %+v", e)
	}
	var origins []string
	for _, r := range res.Rejects {
		if r.Reason != ReasonMalformed || !strings.Contains(r.Detail, "quote") {
			t.Errorf("unexpected reject %+v", r)
		}
		origins = append(origins, r.Origin)
	}
	if strings.Join(origins, " ") != "episodes.csv:6 episodes.csv:12" {
		t.Errorf("rejects at %v, want the two rows with a stray quote (lines 6 and 12)", origins)
	}
}

// csvSplitter reads what encoding/csv writes exactly as encoding/csv does.
func TestCSVSplitterRoundTrip(t *testing.T) {
	rows := [][]string{
		{"id", "text", "n"},
		{"a", "plain", "1"},
		{"b", "with, comma", ""},
		{"c", "line one\nline two\n\nline four", "3"},
		{"d", `quote " inside and "" two`, " spaced "},
		{"", "", ""},
		{"e", "\"", "\"\""},
	}
	var buf strings.Builder
	w := csv.NewWriter(&buf)
	_ = w.WriteAll(rows)
	for _, crlf := range []bool{false, true} {
		in := buf.String()
		if crlf {
			in = strings.ReplaceAll(in, "\n", "\r\n")
		}
		s := newCSVSplitter(strings.NewReader(in))
		for i, want := range rows {
			got, _, bad, err := s.next()
			if err != nil || bad != "" || !slices.Equal(got, want) {
				t.Fatalf("crlf %v row %d: %q (%q, %v), want %q", crlf, i, got, bad, err, want)
			}
		}
		if _, _, _, err := s.next(); err != io.EOF {
			t.Fatalf("after the last row: %v", err)
		}
	}
}

// FuzzCSVSplitter: input encoding/csv reads without error, every record of the header's
// width, reads the same through csvSplitter; any input is read to the end without a panic,
// every line in a record or a rejected row.
func FuzzCSVSplitter(f *testing.F) {
	f.Add([]byte("a,b\n1,2\n\"x\ny\",3\n"))
	f.Add([]byte("a,b\n\"open,2\n3,4\n\"q\",5\n"))
	f.Add([]byte("a,b\n\"\"\"\",\"\"\n,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newCSVSplitter(bytes.NewReader(data))
		var got [][]string
		for n := 0; ; n++ {
			fields, _, bad, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 && bad == "" {
				s.want = len(fields)
			}
			if bad != "" {
				fields = []string{"\x00bad"}
			}
			got = append(got, fields)
		}
		if bytes.IndexByte(data, '\r') >= 0 {
			return
		}
		cr := csv.NewReader(bytes.NewReader(data))
		want, err := cr.ReadAll()
		if err != nil || len(want) == 0 {
			return
		}
		for _, r := range want {
			if len(r) != len(want[0]) {
				return
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d records, encoding/csv %d:\n%q\n%q", len(got), len(want), got, want)
		}
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("record %d: %q, encoding/csv %q", i, got[i], want[i])
			}
		}
	})
}
