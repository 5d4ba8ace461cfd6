package evaluate

import (
	"strings"
	"testing"
)

// TestPassages: a short document is its text alone; a long one also gets the title with each
// window of its description, and a too-short last window is dropped.
func TestPassages(t *testing.T) {
	desc := strings.TrimSpace(strings.Repeat("word ", 25))
	long := Doc{Title: "Long one.", Description: desc, Text: "Long one. " + desc}
	docs := []Doc{{Title: "Short", Text: "Short. a few words"}, long}
	texts, owner := Passages(docs, PassageOptions{Window: 10, LongWords: 20, MinWords: 6})
	want := []string{"Short. a few words", long.Text,
		"Long one. " + strings.Repeat("word ", 9) + "word", "Long one. " + strings.Repeat("word ", 9) + "word"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("passages %q, want %q (the last window of 5 words is under MinWords)", texts, want)
	}
	if got := owner; len(got) != 4 || got[0] != 0 || got[1] != 1 || got[3] != 1 {
		t.Fatalf("owners %v", owner)
	}
	// A short last window is kept when it is the only one.
	texts, _ = Passages([]Doc{{Title: "T", Description: "a b c", Text: "T. a b c"}}, PassageOptions{Window: 10, LongWords: 1, MinWords: 6})
	if len(texts) != 2 || texts[1] != "T. a b c" {
		t.Fatalf("one short window: %q", texts)
	}
}

// TestPassageLists scores a document by its best passage, and with no owners each vector is
// its own document (CandidateLists' dense side).
func TestPassageLists(t *testing.T) {
	q := [][]float32{{1, 0}}
	pv := [][]float32{{0, 1}, {0.6, 0.8}, {0.8, 0.6}, {1, 0}}
	lists, err := PassageLists(q, pv, []int{0, 0, 1, 0}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if l := lists[0]; len(l) != 2 || l[0].Doc != 0 || l[0].Score != 1 || l[1].Doc != 1 || l[1].Score != 0.8 {
		t.Fatalf("best-passage lists %+v", l)
	}
	lists, err = PassageLists(q, pv, nil, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r := Ranked(lists); len(r[0]) != 2 || r[0][0] != 3 || r[0][1] != 2 {
		t.Fatalf("one passage per document, top 2: %v", r)
	}
}
