package ingest

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNormalizeDate(t *testing.T) {
	cases := map[string]string{
		"2023-11-09 01:00:00+00":          "2023-11-09T01:00:00Z",
		"Fri, 11 Mar 2022 10:14:00 GMT":   "2022-03-11T10:14:00Z",
		"Thu, 10 Mar 2022 09:48:00 +0100": "2022-03-10T08:48:00Z",
		"2017-12-01T19:00:00-05:00":       "2017-12-02T00:00:00Z",
		"2020-01-02":                      "2020-01-02T00:00:00Z",
		"yesterday":                       "",
		"":                                "",
	}
	for in, want := range cases {
		if got, ok := NormalizeDate(in); got != want || ok != (want != "") {
			t.Errorf("NormalizeDate(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestNormalizeLanguage(t *testing.T) {
	cases := map[string]string{"en-us": "en", "EN_GB": "en", "de": "de", "deu": "de",
		"English": "en", "german": "de", "": "", "klingon": "", "12": "",
		// Spotify-style lists of tags: the first tag counts.
		"['en']": "en", `["en"]`: "en", "en-US": "en", `["en-US"]`: "en", " [ 'de' , 'en' ] ": "de",
		"[en]": "en", "'fr'": "fr", "['English']": "en", "[]": "", "['']": "", "['xx-1']": "xx", "[[": ""}
	for in, want := range cases {
		if got := NormalizeLanguage(in); got != want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", in, got, want)
		}
	}
	if got := DetectLanguage("Die Nachrichten der Woche, langsam gesprochen, für alle, die Deutsch lernen wollen."); got != "de" {
		t.Errorf("DetectLanguage(German) = %q", got)
	}
	if got := DetectLanguage("x"); got != LangUnknown {
		t.Errorf("DetectLanguage(x) = %q, want %q", got, LangUnknown)
	}
}

func TestComposeText(t *testing.T) {
	cases := []struct {
		parts []string
		want  string
	}{
		{[]string{"Title", "Desc", "Show", "About"}, "Title. Desc. Show. About"},
		{[]string{"Why?", "", "Show", ""}, "Why? Show"},
		{[]string{"", "Only a description.", "", ""}, "Only a description."},
		{[]string{"", "", "", ""}, ""},
	}
	for _, c := range cases {
		if got := ComposeText(c.parts...); got != c.want {
			t.Errorf("ComposeText(%q) = %q, want %q", c.parts, got, c.want)
		}
	}
}

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping("id=uuid, description=description|subtitle")
	if err != nil {
		t.Fatal(err)
	}
	want := Mapping{FieldID: {"uuid"}, FieldDescription: {"description", "subtitle"}}
	if !reflect.DeepEqual(m, want) || m.String() != "id=uuid,description=description|subtitle" {
		t.Fatalf("got %v (%s)", m, m)
	}
	if _, err := ParseMapping("colour=red"); err == nil {
		t.Fatal("want an error for an unknown field")
	}
	if got := DefaultJSONLMapping.With(m)[FieldID]; !reflect.DeepEqual(got, []string{"uuid"}) {
		t.Fatalf("With: %v", got)
	}
}

func TestCorpusRoundTrip(t *testing.T) {
	eps := []Episode{
		{ID: "a", ShowID: "s", ShowTitle: "Show", Title: "T <b>", Text: "T <b>. Show", Language: "en", Source: SourceRSS},
		{ID: "b", Title: "Zwei", Description: "Nachrichten", Text: "Zwei. Nachrichten", Language: "de", Date: "2020-01-02T00:00:00Z"},
	}
	for _, name := range []string{"corpus.jsonl", "corpus.jsonl.gz"} {
		path := filepath.Join(t.TempDir(), name)
		if err := WriteCorpus(path, eps); err != nil {
			t.Fatal(err)
		}
		got, err := ReadCorpus(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, eps) {
			t.Fatalf("%s: got %+v", name, got)
		}
	}
	if _, err := ReadCorpus(filepath.Join("testdata", "kaggle", "podcasts.csv")); err == nil ||
		!strings.Contains(err.Error(), "podcasts.csv:1") {
		t.Fatalf("want a line-numbered error, got %v", err)
	}
}

func TestBuildStrictAndSeed(t *testing.T) {
	bad := &Batch{Read: 1, Rejects: []Reject{{Kind: KindEpisode, Source: SourceJSONL, Origin: "x:1", Reason: ReasonMalformed, Detail: "not JSON"}}}
	if _, err := Build([]*Batch{bad}, Options{Strict: true}); err == nil || !strings.Contains(err.Error(), "x:1") {
		t.Fatalf("strict: want an error naming x:1, got %v", err)
	}
	var recs []Record
	for i := 0; i < 50; i++ {
		recs = append(recs, Record{Source: SourceJSONL, ID: string(rune('A' + i)), Title: "Episode about " + string(rune('A'+i))})
	}
	order := func(seed uint64) []string {
		res, err := Build([]*Batch{{Records: recs, Read: len(recs)}, bad}, Options{Seed: seed, Detect: func(string) string { return "en" }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Read != 51 || res.Stats.Malformed != 1 || res.Stats.Written != 50 {
			t.Fatalf("stats %s", res.Stats)
		}
		var ids []string
		for _, e := range res.Episodes {
			ids = append(ids, e.ID)
		}
		return ids
	}
	a, b, c := order(1), order(1), order(2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different order")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same order")
	}
}

// A Spotify-style language tag list reaches the corpus as a plain code, taken from the source.
func TestSpotifyLanguageTag(t *testing.T) {
	in := `{"id":"a","show_id":"s","title":"Morning news","description":"The day's headlines in ten minutes.","language":"['en']"}
{"id":"b","show_id":"s","title":"Noticias","description":"Las noticias del día en diez minutos.","language":"[\"es-MX\"]"}
{"id":"c","show_id":"s","title":"Nachrichten","description":"Die Nachrichten des Tages.","language":"en-US"}
`
	b, err := ReadJSONL(strings.NewReader(in), "spotify.jsonl", DefaultJSONLMapping)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build([]*Batch{b}, Options{NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "en", "b": "es", "c": "en"}
	if len(res.Episodes) != len(want) {
		t.Fatalf("%d episodes: %s", len(res.Episodes), res.Stats)
	}
	for _, e := range res.Episodes {
		if e.Language != want[e.ID] || e.LanguageFrom != "source" {
			t.Errorf("%s: language %q from %q, want %q from the source", e.ID, e.Language, e.LanguageFrom, want[e.ID])
		}
	}
}
