package evaluate

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestPoolMergesTopDepthOrderedByBestRank(t *testing.T) {
	systems := []System{
		{Name: "a", Ranked: [][]int{{5, 1, 2, 9}}},
		{Name: "b", Ranked: [][]int{{1, 7, 5}}},
	}
	got, err := Pool(1, 2, systems)
	if err != nil {
		t.Fatal(err)
	}
	// depth 2: a gives 5 (rank 1), 1 (rank 2); b gives 1 (rank 1), 7 (rank 2).
	// Best rank 1: documents 1 (found by both) and 5 (one system); then 7.
	want := []Candidate{{Doc: 1, Ranks: []int{2, 1}}, {Doc: 5, Ranks: []int{1, 0}}, {Doc: 7, Ranks: []int{0, 2}}}
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("pool = %+v, want %+v", got[0], want)
	}
	if _, err := Pool(2, 2, systems); err == nil {
		t.Error("rankings for 1 query pooled as 2: want an error")
	}
	if _, err := Pool(1, 0, systems); err == nil {
		t.Error("depth 0: want an error")
	}
}

func TestTitleOverlap(t *testing.T) {
	for _, c := range []struct {
		query  string
		titles []string
		want   float64
	}{
		{"how do I stop procrastinating on my thesis", []string{"Beating procrastination"}, 1.0 / 3}, // both stem to procrastin
		{"how do I stop putting things off", []string{"Beating procrastination"}, 0},
		{"funny true crime stories", []string{"True Crime Story Hour"}, 0.75},                          // true, crime, story of funny, true, crime, story
		{"recetas de cocina para la navidad", []string{"Cocina navideña", "Recetas fáciles"}, 2.0 / 3}, // receta, cocina of receta, cocina, navidad
		{"the and of", []string{"anything"}, 0},                                                        // no content word
		{"Podcasts about podcasts", []string{"podcast"}, 1},
	} {
		if got := TitleOverlap(c.query, c.titles); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("TitleOverlap(%q, %q) = %v, want %v (content words %q)", c.query, c.titles, got, c.want, ContentWords(c.query))
		}
	}
}

func TestSplitStratifiedAlternatesWithinStrata(t *testing.T) {
	var qs []Query
	for _, s := range []struct{ id, lang, kind string }{
		{"p04", "en", "need"}, {"p01", "en", "need"}, {"p02", "es", "need"}, {"p03", "en", "need"},
		{"p05", "en", "show"}, {"p06", "es", "need"}, {"p07", "es", "need"},
	} {
		qs = append(qs, Query{ID: s.id, Language: s.lang, Kind: s.kind})
	}
	first, second := SplitStratified(qs)
	ids := func(qs []Query) string {
		var s []string
		for _, q := range qs {
			s = append(s, q.ID)
		}
		return strings.Join(s, " ")
	}
	// Strata in order en/need (p01 p03 p04), en/show (p05), es/need (p02 p06 p07), dealt
	// alternately: p01 first, p03 second, p04 first, p05 second, p02 first, p06 second,
	// p07 first. Each half keeps the input order.
	if got, want := ids(first), "p04 p01 p02 p07"; got != want {
		t.Errorf("first half %q, want %q", got, want)
	}
	if got, want := ids(second), "p03 p05 p06"; got != want {
		t.Errorf("second half %q, want %q", got, want)
	}
}

func TestReadDraftsAcceptsUnjudgedQueries(t *testing.T) {
	in := `{"qid":"d1","query":"a need","lang":"en","kind":"need"}
{"qid":"d2","query":"another","relevant":{"x":2},"title_overlap":0.25}
`
	qs, err := parseQueries(strings.NewReader(in), "drafts", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Language != "en" || qs[0].Kind != "need" || qs[0].TitleOverlap != nil || *qs[1].TitleOverlap != 0.25 {
		t.Fatalf("drafts parsed as %+v", qs)
	}
	if _, err := ParseQueries(strings.NewReader(in), "judged"); err == nil {
		t.Error("ParseQueries accepted an unjudged query")
	}
	for _, bad := range []string{
		`{"qid":"b","query":"q","relevant":{"x":1},"title_overlap":1.5}`,
		`{"qid":"b","query":"q","relevant":{"x":1},"language":"en","lang":"de"}`,
	} {
		if _, err := ParseQueries(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("ParseQueries accepted %s", bad)
		}
	}
}
