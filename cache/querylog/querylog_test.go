package querylog

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/edge"
	"github.com/podsearch/podsearch/internal/testenv"
)

func TestReadPlainAndTSV(t *testing.T) {
	log := strings.Join([]string{
		"true crime podcasts",
		"true   crime\tpodcasts\t4", // TSV with a count; whitespace collapses
		"black hole image\t3",
		"full\u00a0width\t1", // no-break space is white space
		"full width\t2",
		"",
		"   ",
		"zero\t0",
		"tab\tin query\t2",
		"not a count\tabc", // last field not an integer: a plain query with a tab
		"crlf line\r",
	}, "\n")
	got, err := Read(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"true crime podcasts", 5},
		{"black hole image", 3},
		{"full width", 3},
		{"tab in query", 2},
		{"not a count abc", 1},
		{"crlf line", 1},
	}
	checkEntries(t, got, want)
}

func TestReadJSONL(t *testing.T) {
	log := strings.Join([]string{
		`{"query": "black hole image", "count": 3}`,
		`{"q": "black  hole image"}`,
		``,
		`{"text": "ﬁsh", "num": "7", "count": 2}`,
	}, "\n")
	got, err := Read(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, []Entry{{"black hole image", 4}, {"ﬁsh", 2}})
}

// The pairs job's output (synthetic queries of new episodes) is a valid warm-up log: its
// "query" field wins over the episode "text".
func TestReadPairsOutput(t *testing.T) {
	log := `{"query":"how to brew coffee","episode_id":"e1","text":"Episode about coffee...","method":"title"}` + "\n" +
		`{"query":"coffee brewing at home","episode_id":"e1","text":"Episode about coffee...","method":"keywords"}`
	got, err := Read(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, []Entry{{"how to brew coffee", 1}, {"coffee brewing at home", 1}})
}

func TestReadFileGzip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pairs.jsonl.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"query":"jazz history"}` + "\n"))
	_ = zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path, Auto)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, []Entry{{"jazz history", 1}})
	if err := os.WriteFile(path, []byte("not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path, Auto); err == nil {
		t.Fatal("a .gz file that is not gzip: no error")
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), Auto); err == nil {
		t.Fatal("missing file: no error")
	}
}

func checkEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestFormats(t *testing.T) {
	// A plain log whose line starts with a brace is not JSONL.
	got, err := Read(strings.NewReader("{Live} episode one\nsecond\t2\n"))
	if err != nil || len(got) != 2 || got[0] != (Entry{"second", 2}) || got[1] != (Entry{"{Live} episode one", 1}) {
		t.Fatalf("plain with a brace: %v %v", got, err)
	}
	got, err = ReadFormat(strings.NewReader("a\tb\t3\n"), Lines)
	if err != nil || len(got) != 1 || got[0] != (Entry{"a b 3", 1}) {
		t.Fatalf("lines: %v %v", got, err)
	}
	if _, err := ReadFormat(strings.NewReader("q\t3\nno count\n"), TSV); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("strict TSV without a count: %v", err)
	}
	if _, err := ReadFormat(strings.NewReader("plain\n"), JSONL); err == nil {
		t.Fatal("strict JSONL accepted a plain line")
	}
	for in, want := range map[string]Format{"auto": Auto, "": Auto, "lines": Lines, "tsv": TSV, "jsonl": JSONL} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, f, err)
		}
	}
	if _, err := ParseFormat("csv"); err == nil {
		t.Error("csv accepted")
	}
}

func TestReadErrors(t *testing.T) {
	for name, log := range map[string]string{
		"bad json":      `{"query": "x"}` + "\n" + `{"query": `,
		"no field":      `{"title": "x"}`,
		"non-string":    `{"query": 5}`,
		"bad count":     `{"query": "x", "count": "many"}`,
		"negative json": `{"query": "x", "count": -1}`,
		"negative tsv":  "x\t-3",
		"huge tsv":      "x\t99999999999999",
		"invalid utf8":  "caf\xe9",
		"long line":     strings.Repeat("a", MaxLineBytes+1),
	} {
		if _, err := Read(strings.NewReader(log)); err == nil {
			t.Errorf("%s: no error", name)
		} else if name != "long line" && !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: error %q does not name the line", name, err)
		}
	}
}

func TestReadTRECTopics(t *testing.T) {
	got, err := ReadFile(testenv.Shared(t, "data/queries/trec_podcasts_topics.jsonl"), Auto)
	if err != nil {
		t.Fatal(err)
	}
	// 108 topics; every query is non-empty and normalised; duplicates merged.
	var total int64
	for _, e := range got {
		if e.Query == "" || e.Query != Normalize(e.Query) || e.Count < 1 {
			t.Fatalf("bad entry %+v", e)
		}
		total += e.Count
	}
	if total != 108 {
		t.Fatalf("counts sum to %d, want the file's 108 topics", total)
	}
	t.Logf("%d distinct queries in 108 topics", len(got))
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  a \t b\n c  ": "a b c",
		"ﬁsh":            "ﬁsh", // NFKC is the tokenizer's job
		"a\x00b\u2028c":  "a b c",
		"Case Kept":      "Case Kept",
		"":               "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// Warm-up and the edge must normalise identically, or warmed keys would never be hit.
func FuzzNormalizeMatchesEdge(f *testing.F) {
	for _, s := range []string{"  a \t b\n c  ", "ﬁsh", "a\x00b", "caf\xe9 \u3000x", "\u00a0lead"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, b := Normalize(s), edge.Normalize(s); a != b {
			t.Fatalf("Normalize(%q) = %q, edge.Normalize = %q", s, a, b)
		}
	})
}

func FuzzRead(f *testing.F) {
	f.Add("plain\nq\t3\n{\"query\":\"x\",\"count\":2}\n")
	f.Add("{\"q\": \"\"}\n\t\n")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, log string) {
		got, err := Read(strings.NewReader(log))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for i, e := range got {
			if e.Query == "" || e.Count <= 0 || seen[e.Query] || e.Query != Normalize(e.Query) {
				t.Fatalf("bad entry %+v", e)
			}
			if i > 0 && got[i-1].Count < e.Count {
				t.Fatal("not sorted by count")
			}
			seen[e.Query] = true
		}
	})
}
