package pairs

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/wordnet"
	"github.com/podsearch/podsearch/internal/testenv"
)

// fixtureWordNet opens the small WordNet fixture of package wordnet (real lines for
// volcano, lava, iceland, geologist, dog, bank, river, money, talk, run, fall, ...).
func fixtureWordNet(t testing.TB) *wordnet.DB {
	t.Helper()
	db, err := wordnet.Open(filepath.Join("..", "wordnet", "testdata", "dict"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestWordNetSense(t *testing.T) {
	g := NewWordNet(fixtureWordNet(t), 1)
	rng := rand.New(rand.NewPCG(1, 2))
	money := contentWords("Where to put your money: deposits, lending and interest.")
	river := contentWords("A canoe trip down the river; we camp on the water's edge.")
	for range 20 {
		r, ok := g.replace("bank", money, rng)
		if !ok || !strings.Contains("depository financial institution banking concern banking company financial institution financial organization financial organisation", r) {
			t.Fatalf("bank near money -> %q, %v (want the financial sense)", r, ok)
		}
		r, ok = g.replace("banks", river, rng)
		if !ok || !strings.Contains("slopes inclines sides", r) {
			t.Fatalf("banks near a river -> %q, %v (want the sloping-land sense, inflected)", r, ok)
		}
	}
	// Without context, the most frequent sense (sloping land).
	if r, ok := g.replace("bank", map[string]bool{}, rng); !ok || !strings.Contains("slope incline side", r) {
		t.Fatalf("bank without context -> %q, %v", r, ok)
	}
}

func TestWordNetGenerate(t *testing.T) {
	corpus := []ingest.Episode{
		ep("1", "Volcanoes of Iceland", "We talk about volcanoes and lava in Iceland with a geologist. The dog ran away.", "Earth"),
		ep("2", "Rivers", "We talk about rivers with a geologist.", "Earth"),
		ep("3", "Deserts", "We talk about sand with a geologist.", "Earth"),
	}
	db := fixtureWordNet(t)
	gen := func() []Candidate {
		return NewWordNet(db, 5, NewTitle(corpus), NewTFIDF(corpus)).Generate(&corpus[0], 3)
	}
	c := gen()
	if len(c) < 2 {
		t.Fatalf("candidates %+v", c)
	}
	t.Logf("%+v", c)
	if !reflect.DeepEqual(c, gen()) {
		t.Fatal("not deterministic")
	}
	text := contentWords(corpus[0].Text)
	fresh := 0
	for _, x := range c {
		if x.Text == "" || strings.EqualFold(x.Query, corpus[0].Title) {
			t.Fatalf("bad candidate %+v", x)
		}
		for w := range contentWords(x.Query) {
			if !text[w] {
				fresh++
			}
		}
	}
	if fresh == 0 {
		t.Fatalf("no rewritten query has a word outside the episode: %+v", c)
	}
	if c := NewWordNet(db, 5).Generate(&corpus[0], 3); len(c) != 0 {
		t.Fatalf("no bases, yet %+v", c)
	}
}

func TestInflection(t *testing.T) {
	for _, c := range [][3]string{
		{"volcano", "volcanos", "volcanoing"}, {"church", "churches", "churching"},
		{"city", "cities", "citying"}, {"day", "days", "daying"}, {"erupt", "erupts", "erupting"},
		{"make", "makes", "making"},
	} {
		if plural(c[0]) != c[1] || gerund(c[0]) != c[2] {
			t.Errorf("%s: %s %s", c[0], plural(c[0]), gerund(c[0]))
		}
	}
	if past("carry") != "carried" || past("bake") != "baked" || past("talk") != "talked" {
		t.Error("past")
	}
	for _, c := range []struct {
		repl, surface, base string
		pos                 wordnet.POS
		want                string
	}{
		{"magma flow", "volcanoes", "volcano", wordnet.Noun, "magma flows"},
		{"speak", "talking", "talk", wordnet.Verb, "speaking"},
		{"speak", "talked", "talk", wordnet.Verb, "speaked"},
		{"speak", "talks", "talk", wordnet.Verb, "speaks"},
		{"large", "bigger", "big", wordnet.Adj, "large"},
		{"hound", "dog", "dog", wordnet.Noun, "hound"},
	} {
		if got := inflectLike(c.repl, c.surface, c.base, c.pos); got != c.want {
			t.Errorf("inflectLike(%q, %q) = %q, want %q", c.repl, c.surface, got, c.want)
		}
	}
}

func TestWordOverlap(t *testing.T) {
	ps := []Pair{
		{Query: "volcanoes iceland", Text: "Volcanoes in Iceland", Method: "a"},
		{Query: "the magma island", Text: "Volcanoes in Iceland", Method: "b"},
		{Query: "volcano iceland", Text: "Volcanoes in Iceland", Method: "b"},
	}
	o := WordOverlap(ps)
	if o["a"] != (Overlap{Pairs: 1, QueryWords: 2, Share: 1, LowShare: 0}) {
		t.Fatalf("a: %+v", o["a"])
	}
	if o["b"] != (Overlap{Pairs: 2, QueryWords: 4, Share: 0.25, LowShare: 1}) {
		t.Fatalf("b: %+v", o["b"])
	}
	if s := FormatOverlap(o); !strings.HasPrefix(s, "a 1.000 (0% of queries at most half), b 0.250") {
		t.Fatal(s)
	}
}

// TestWordNetDemoCorpus rewrites the demo corpus's queries with the real WordNet: the
// rewritten queries must share clearly fewer words with their episode than their bases.
func TestWordNetDemoCorpus(t *testing.T) {
	dir := assets.WordNetDir()
	if _, err := os.Stat(filepath.Join(dir, "data.noun")); err != nil {
		testenv.SkipOrFailModel(t, "WordNet ("+dir+")")
	}
	db, err := wordnet.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	eps := demoCorpus(t)
	title, tfidf := NewTitle(eps), NewTFIDF(eps)
	gens := []Generator{title, tfidf, NewWordNet(db, 42, title, tfidf)}
	ps, st := Generate(eps, gens, 3, nil)
	t.Logf("generated: %s", st)
	o := WordOverlap(ps)
	t.Logf("overlap: %s", FormatOverlap(o))
	if st.ByMethod[MethodWordNet] < len(eps)/4 {
		t.Errorf("only %d wordnet pairs for %d episodes", st.ByMethod[MethodWordNet], len(eps))
	}
	if o[MethodWordNet].Share > o[MethodTFIDF].Share-0.3 || o[MethodWordNet].LowShare < 0.4 {
		t.Errorf("wordnet queries overlap too much: %s", FormatOverlap(o))
	}
	for _, p := range ps[:60] {
		if p.Method == MethodWordNet {
			t.Logf("%q", p.Query)
		}
	}
}

func TestCommonSenses(t *testing.T) {
	comic := wordnet.Synset{Lemmas: []string{"Hope", "Bob_Hope"}}
	wish := wordnet.Synset{Lemmas: []string{"hope"}}
	if got := commonSenses([]wordnet.Synset{comic, wish}, "hope"); !reflect.DeepEqual(got, []wordnet.Synset{wish}) {
		t.Fatalf("hope: %v", got)
	}
	island := wordnet.Synset{Lemmas: []string{"Iceland", "Republic_of_Iceland"}}
	if got := commonSenses([]wordnet.Synset{island}, "iceland"); len(got) != 1 {
		t.Fatalf("iceland: %v", got)
	}
}
