package wordnet

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/internal/testenv"
)

// The fixture in testdata/dict holds real WordNet 3.1 lines for a few words (volcano, dog,
// bank, run, big, ...), their first senses and those senses' hypernyms, with offsets
// renumbered to the fixture's own byte positions.
const fixture = "testdata/dict"

func TestParseIndexLine(t *testing.T) {
	e, err := ParseIndexLine("dog n 3 5 @ ~ #m #p %p 3 0 00002048 00006858 00006768  ")
	if err != nil {
		t.Fatal(err)
	}
	want := IndexEntry{Lemma: "dog", POS: Noun, Offsets: []int64{2048, 6858, 6768}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got %+v", e)
	}
	for _, bad := range []string{
		"",
		"dog n 3",
		"dog x 1 0 1 0 00002048",           // unknown part of speech
		"dog n 2 0 2 0 00002048",           // fewer offsets than synset_cnt
		"dog n 1 0 1 0 2048",               // offset not 8 digits
		"dog n 1 1 @ 1 0 00002048 0000999", // one field too many
		"dog n -1 0 1 0 00002048",
	} {
		if _, err := ParseIndexLine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseDataLine(t *testing.T) {
	s, err := ParseDataLine("00002048 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 00001904 n 0000 @ 00001740 n 0000 | a member of the genus Canis; \"the dog barked all night\"  ")
	if err != nil {
		t.Fatal(err)
	}
	want := Synset{Offset: 2048, POS: Noun, Lemmas: []string{"dog", "domestic_dog", "Canis_familiaris"},
		Pointers: []Pointer{{"@", 1904, Noun}, {"@", 1740, Noun}}, Gloss: "a member of the genus Canis; \"the dog barked all night\""}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v", s)
	}
	// A verb with frames, a satellite adjective with a marker.
	v, err := ParseDataLine("00001740 29 v 02 breathe 0 respire 0 001 @ 00005041 v 0000 02 + 02 00 + 08 00 | draw air")
	if err != nil || v.POS != Verb || len(v.Pointers) != 1 || v.Gloss != "draw air" {
		t.Fatalf("verb line: %+v, %v", v, err)
	}
	a, err := ParseDataLine("00019769 00 s 02 handy 0 ready_to_hand(p) 0 000 | easy to reach")
	if err != nil || a.POS != Adj || a.Lemmas[1] != "ready_to_hand" {
		t.Fatalf("satellite line: %+v, %v", a, err)
	}
	for _, bad := range []string{
		"",
		"00002048 05 n | no words",
		"00002048 05 n 00 000 | zero words",
		"00002048 05 n zz dog 0 000 | bad hex",
		"00002048 05 n 02 dog 0 000 | w_cnt says two words",
		"00002048 05 n 01 dog 0 002 @ 00001904 n 0000 | p_cnt says two pointers",
		"00002048 05 n 01 dog 0 001 @ 1904 n 0000 | short pointer offset",
		"00002048 05 n 01 dog 0 001 @ 00001904 q 0000 | unknown pointer pos",
		"00002048 05 n 01 dog 0 000 junk | trailing junk",
		"2048 05 n 01 dog 0 000 | short offset",
	} {
		if _, err := ParseDataLine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		} else if !strings.Contains(err.Error(), "malformed data line") {
			t.Errorf("%q: error %q does not say which line", bad, err)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, name := range []string{"index.noun", "data.noun", "data.verb", "data.adj"} {
		b, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[29:] {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		if e, err := ParseIndexLine(line); err == nil && (e.Lemma == "" || e.POS == 0) {
			t.Fatalf("index line %q parsed to %+v", line, e)
		}
		if s, err := ParseDataLine(line); err == nil {
			if len(s.Lemmas) == 0 || s.POS == 0 {
				t.Fatalf("data line %q parsed to %+v", line, s)
			}
			for _, l := range s.Lemmas {
				if l == "" && !strings.Contains(line, "()") {
					t.Fatalf("data line %q has an empty lemma", line)
				}
			}
		}
	})
}

func TestFixtureDB(t *testing.T) {
	db, err := Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	checkDB(t, db, true)
}

// checkDB checks what holds in the fixture and in the real WordNet 3.1 alike.
func checkDB(t *testing.T, db *DB, fixture bool) {
	t.Helper()
	senses, err := db.Senses("dog", Noun)
	if err != nil || len(senses) < 3 {
		t.Fatalf("dog: %d senses, %v", len(senses), err)
	}
	if !reflect.DeepEqual(senses[0].Lemmas, []string{"dog", "domestic_dog", "Canis_familiaris"}) {
		t.Fatalf("dog sense 1 is %v", senses[0].Lemmas)
	}
	hyp, err := db.Hypernyms(senses[0])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hyp {
		names = append(names, h.Lemmas[0])
	}
	if !reflect.DeepEqual(names, []string{"canine", "domestic_animal"}) {
		t.Fatalf("dog's hypernyms: %v", names)
	}
	for _, c := range []struct {
		word string
		pos  POS
		want []string
	}{
		{"volcanoes", Noun, []string{"volcano"}},
		{"Dogs", Noun, []string{"dog"}},
		{"running", Verb, []string{"run"}},
		{"talked", Verb, []string{"talk"}},
		{"erupts", Verb, []string{"erupt"}},
		{"bigger", Adj, []string{"big"}},
		{"quickly", Adv, []string{"quickly"}},
		{"xyzzy", Noun, nil},
	} {
		// The real WordNet lists more lemmas ("bigger" is one); its answer must include the
		// fixture's.
		if got := db.Morph(c.word, c.pos); !reflect.DeepEqual(got, c.want) && (fixture || !includes(got, c.want)) {
			t.Errorf("Morph(%q, %v) = %v, want %v", c.word, c.pos, got, c.want)
		}
	}
	if _, err := db.Synset(Noun, senses[0].Offset+1); err == nil {
		t.Error("an offset inside a line was accepted")
	}
	if s, _ := db.Senses("xyzzy", Noun); len(s) != 0 {
		t.Errorf("xyzzy has senses %v", s)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "podsearch setup") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenMalformedIndex(t *testing.T) {
	dir := t.TempDir()
	for _, pos := range AllPOS {
		for _, kind := range []string{"index.", "data."} {
			b, err := os.ReadFile(filepath.Join(fixture, kind+fileSuffix[pos]))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, kind+fileSuffix[pos]), b, 0o644)
		}
	}
	f, _ := os.OpenFile(filepath.Join(dir, "index.adv"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("broken r 9\n")
	f.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "index.adv:") {
		t.Fatalf("got %v", err)
	}
}

// TestRealWordNet opens the WordNet set up by `podsearch setup` and parses every synset.
func TestRealWordNet(t *testing.T) {
	dir := assets.WordNetDir()
	if _, err := os.Stat(filepath.Join(dir, "data.noun")); err != nil {
		testenv.SkipOrFailModel(t, "WordNet ("+dir+")")
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkDB(t, db, false)
	if n := len(db.index[Noun]); n < 100000 {
		t.Fatalf("%d noun lemmas", n)
	}
	synsets := 0
	for _, pos := range AllPOS {
		f, err := os.Open(filepath.Join(dir, "data."+fileSuffix[pos]))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "  ") {
				continue
			}
			s, err := ParseDataLine(sc.Text())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Pointers {
				if p.IsHypernym() {
					if _, err := db.Synset(p.POS, p.Offset); err != nil {
						t.Fatal(err)
					}
				}
			}
			synsets++
		}
		f.Close()
	}
	if synsets < 117000 {
		t.Fatalf("%d synsets", synsets)
	}
}

// includes reports whether all of want are in got.
func includes(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}
