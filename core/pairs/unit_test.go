package pairs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
)

func ep(id, title, desc, show string) ingest.Episode {
	return ingest.Episode{ID: id, Title: title, Description: desc, ShowTitle: show,
		Text: ingest.ComposeText(title, desc, show)}
}

func TestTitleInformative(t *testing.T) {
	corpus := []ingest.Episode{
		ep("1", "Episode 12", "d", "S"), ep("2", "Part 3 - Trailer", "d", "S"),
		ep("3", "Mundo Cristiano - 03/16/23", "d", "S"), ep("4", "Mundo Cristiano - 03/17/23", "d", "S"),
		ep("5", "Mundo Cristiano - 03/18/23", "d", "S"), ep("6", "The Fall of Rome", "d", "S"),
		ep("7", "Forgiveness", "d", "S"), ep("8", "S", "d", "S"), ep("9", "July 9, 2023", "d", "S"),
		ep("10", "在地狱那头等我", "d", "S"),
	}
	tl := NewTitle(corpus)
	want := map[string]bool{"1": false, "2": false, "3": false, "4": false, "5": false, "6": true,
		"7": true, "8": false, "9": false, "10": true}
	for i := range corpus {
		if got := tl.Informative(&corpus[i]); got != want[corpus[i].ID] {
			t.Errorf("Informative(%q) = %v", corpus[i].Title, got)
		}
	}
	c := tl.Generate(&corpus[5], 3)
	if len(c) != 1 || c[0].Query != "The Fall of Rome" || c[0].Text != "d. S" {
		t.Fatalf("title candidate %+v", c)
	}
}

func TestSentencesAndTokens(t *testing.T) {
	got := sentences("First one. Second one! Third? 第一句。第二句 no end")
	want := []string{"First one.", "Second one!", "Third?", "第一句。", "第二句 no end"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sentences = %q", got)
	}
	var words []string
	for _, tok := range tokenize("Don't Stop, 奇妙人生 café") {
		words = append(words, tok.word)
	}
	if !reflect.DeepEqual(words, []string{"don", "t", "stop", "奇妙", "妙人", "人生", "café"}) {
		t.Fatalf("tokenize = %q", words)
	}
}

func TestInverseCloze(t *testing.T) {
	e := ep("x", "Rome", "The empire fell in the fifth century. Historians still argue about the reasons. Short.", "History Hour")
	c := NewInverseCloze([]ingest.Episode{e}, 1).Generate(&e, 3)
	if len(c) != 2 {
		t.Fatalf("want the two long sentences, got %+v", c)
	}
	for _, cand := range c {
		if strings.Contains(cand.Text, cand.Query) || !strings.HasPrefix(cand.Text, "Rome. ") {
			t.Fatalf("bad candidate %+v", cand)
		}
	}
	again := NewInverseCloze([]ingest.Episode{e}, 1).Generate(&e, 3)
	if !reflect.DeepEqual(c, again) {
		t.Fatal("not deterministic")
	}
	// A sentence found in three descriptions is boilerplate, not a query.
	other := ep("y", "Carthage", "Historians still argue about the reasons. Salt was sown.", "History Hour")
	third := ep("z", "Troy", "Historians still argue about the reasons. A horse was built of wood.", "History Hour")
	c = NewInverseCloze([]ingest.Episode{e, other, third}, 1).Generate(&e, 3)
	if len(c) != 1 || c[0].Query != "The empire fell in the fifth century." {
		t.Fatalf("boilerplate sentence not skipped: %+v", c)
	}
}

func TestTFIDF(t *testing.T) {
	corpus := []ingest.Episode{
		ep("1", "Volcanoes of Iceland", "We talk about volcanoes and lava in Iceland with a geologist.", "Earth"),
		ep("2", "Rivers", "We talk about rivers with a geologist.", "Earth"),
		ep("3", "Deserts", "We talk about sand with a geologist.", "Earth"),
	}
	g := NewTFIDF(corpus)
	c := g.Generate(&corpus[0], 1)
	if len(c) != 1 || c[0].Text != corpus[0].Text {
		t.Fatalf("candidates %+v", c)
	}
	q := strings.Fields(c[0].Query)
	if len(q) != termsPerQuery || q[0] != "volcanoes" || q[1] != "iceland" || strings.Contains(c[0].Query, "geologist") {
		t.Fatalf("query %q should lead with the distinctive terms", c[0].Query)
	}
}

// fixed is a Generator with canned answers, standing in for a future model-based one.
type fixed struct {
	name string
	qs   []string
}

func (f fixed) Method() string { return f.name }
func (f fixed) Generate(e *ingest.Episode, n int) []Candidate {
	var out []Candidate
	for _, q := range f.qs {
		out = append(out, Candidate{Query: q, Text: e.Text})
	}
	return out
}

func TestGenerateTakesInTurn(t *testing.T) {
	eps := []ingest.Episode{ep("1", "T", "D", "S")}
	gens := []Generator{fixed{"a", []string{"q1", "q2", "q3"}}, fixed{"b", []string{"Q1", "r2"}}, fixed{"c", nil}}
	got, st := Generate(eps, gens, 3, nil)
	var qs []string
	for _, p := range got {
		qs = append(qs, p.Method+":"+p.Query)
	}
	// "Q1" repeats "q1" (case ignored) and is skipped.
	if !reflect.DeepEqual(qs, []string{"a:q1", "a:q2", "b:r2"}) || st.Short != 0 || st.ByMethod["c"] != 0 {
		t.Fatalf("got %v, %s", qs, st)
	}
}

func TestSplitByEpisode(t *testing.T) {
	var ps []Pair
	for i := 0; i < 200; i++ {
		id := string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		for _, m := range []string{"m1", "m2"} {
			ps = append(ps, Pair{Query: m + id, EpisodeID: id, Text: "t", Method: m})
		}
	}
	s := SplitByEpisode(ps, 0.05, 0.25, 3)
	if s.Stats.Episodes[SplitTest] != 50 || s.Stats.Episodes[SplitEval] != 10 || s.Stats.Episodes[SplitTrain] != 140 {
		t.Fatalf("sizes %v", s.Stats.Episodes)
	}
	if len(s.Train) != 280 || len(s.Test) != 50 || len(s.Eval) != 10 || s.Stats.DroppedRepeatPairs != 60 {
		t.Fatalf("pairs %d/%d/%d: %s", len(s.Train), len(s.Eval), len(s.Test), s.Stats)
	}
	if s.Stats.Pairs[SplitTest]["m1"] == 0 || s.Stats.Pairs[SplitTest]["m2"] == 0 {
		t.Fatalf("test should mix methods: %v", s.Stats.Pairs[SplitTest])
	}
}
