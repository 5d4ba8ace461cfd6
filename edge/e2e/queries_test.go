package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

func TestReadQueries(t *testing.T) {
	hand := filepath.Join(testenv.Root(t), "testdata", "handwritten_queries.jsonl")
	qs, err := ReadQueries(hand, hand)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 20 {
		t.Errorf("%d distinct hand-written queries, want 20 (the file twice adds none)", len(qs))
	}
	if qs[0] != "tips for travelling on your own" {
		t.Errorf("first query %q", qs[0])
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"query\": \"ok\"}\n{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadQueries(bad); err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Errorf("malformed line: error %v, want one naming bad.jsonl:2", err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, []byte("\n{\"query\": \"  \"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadQueries(empty); err == nil {
		t.Error("a file without queries should be an error")
	}
	if _, err := ReadQueries(filepath.Join(dir, "absent.jsonl")); err == nil {
		t.Error("a missing file should be an error")
	}
}

// TestNewQueryNeverRepeats checks the supply of new queries: the texts, then pairs, with
// no text made twice over many times the texts' count.
func TestNewQueryNeverRepeats(t *testing.T) {
	texts := []string{"nba playoffs", "roman empire", "bread baking", "jazz history", "sleep science"}
	seen := map[string]int{}
	for i := range 3 * len(texts) * len(texts) {
		q := newQuery(texts, i)
		if j, dup := seen[q]; dup {
			t.Fatalf("query %d %q repeats query %d", i, q, j)
		}
		seen[q] = i
	}
	for i, want := range map[int]string{2: "bread baking", 5: "nba playoffs and roman empire",
		9: "roman empire and nba playoffs", 25: "nba playoffs 2"} {
		if got := newQuery(texts, i); got != want {
			t.Errorf("query %d is %q, want %q", i, got, want)
		}
	}
}

// FuzzReadQueries feeds arbitrary files to the query reader: an error or clean texts
// (non-empty, single-spaced, distinct), never a panic.
func FuzzReadQueries(f *testing.F) {
	f.Add([]byte("{\"query\": \"nba playoffs\", \"description\": \"who won?\"}\n"))
	f.Add([]byte("{\"query\": \"  a \\t b \"}\n\n{\"query\": \"a b\"}\n"))
	f.Add([]byte("{\"query\": 5}\n"))
	f.Add([]byte("[]\n{\"query\": \"\xff\"}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "q.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		qs, err := ReadQueries(p)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, q := range qs {
			if q == "" || q != strings.Join(strings.Fields(q), " ") || seen[q] {
				t.Fatalf("bad query text %q in %q", q, qs)
			}
			seen[q] = true
		}
	})
}
