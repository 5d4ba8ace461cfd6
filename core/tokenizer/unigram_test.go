package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/internal/testenv"
)

// golden is one line of the reference outputs.
type golden struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

func readGolden(tb testing.TB) []golden {
	tb.Helper()
	return readGoldenFile(tb, testenv.Shared(tb, "golden/use-lite/use-lite-golden.jsonl"))
}

func readGoldenFile(tb testing.TB, path string) []golden {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatal(err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// loadVocab returns the real USE-lite tokenizer from the set-up model folder.
func loadVocab(tb testing.TB) *Unigram {
	tb.Helper()
	path := assets.VocabPath()
	if _, err := os.Stat(path); err != nil {
		testenv.SkipOrFailModel(tb, "vocabulary "+path)
	}
	u, err := LoadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestGoldenTokenIDs(t *testing.T) {
	u := loadVocab(t)
	gs := readGolden(t)
	if len(gs) != 200 {
		t.Fatalf("golden file has %d lines, want 200", len(gs))
	}
	for i, g := range gs {
		got := u.Encode(g.Text)
		if !reflect.DeepEqual(got, g.IDs) && !(len(got) == 0 && len(g.IDs) == 0) {
			t.Errorf("line %d %q:\n got %v\nwant %v", i, trunc(g.Text), got, g.IDs)
		}
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func TestBinaryRoundTrip(t *testing.T) {
	u := loadVocab(t)
	bin, err := u.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := UnmarshalBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u.Pieces(), v.Pieces()) {
		t.Fatal("pieces differ after a binary round trip")
	}
	for _, g := range readGolden(t)[:50] {
		if !reflect.DeepEqual(u.Encode(g.Text), v.Encode(g.Text)) {
			t.Fatalf("binary-loaded tokenizer differs on %q", trunc(g.Text))
		}
	}
	for cut := 0; cut < len(bin); cut += len(bin)/97 + 1 {
		if _, err := UnmarshalBinary(bin[:cut]); err == nil {
			t.Fatalf("truncated binary vocabulary (%d of %d bytes) accepted", cut, len(bin))
		}
	}
}

func TestSmallVocabularyRules(t *testing.T) {
	pieces := []Piece{{"\uFFFD", 0}, {"<s>", 0}, {"</s>", 0}, {"x1", 0}, {"x2", 0}, {"x3", 0},
		{"▁a", -1}, {"b", -2}, {"▁ab", -2.5}, {"▁", -3}, {"c", -1}}
	u, err := NewUnigram(pieces)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want []int32
	}{
		{"", nil},
		{"ab", []int32{8}},           // "▁ab" (-2.5) beats "▁a"+"b" (-3)
		{"a b", []int32{6, 9, 7}},    // space becomes ▁
		{"zzz", []int32{9, 0}},       // run of unknowns collapses into one id 0
		{"a\tb", []int32{6, 0, 7}},   // a tab is not a separator and is unknown
		{"ｂ", []int32{9, 7}},         // NFKC folds the full-width letter
		{"a\xffb", []int32{6, 0, 7}}, // invalid UTF-8 reads as U+FFFD, an unknown
	}
	for _, c := range cases {
		got := u.Encode(c.in)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestBadVocabulary(t *testing.T) {
	for name, src := range map[string]string{
		"not json":   `{`,
		"object":     `{"a": 1}`,
		"bad score":  `[["a", "x"]]`,
		"too small":  `[["a", 0]]`,
		"empty word": `[["0",0],["1",0],["2",0],["3",0],["4",0],["5",0],["",-1]]`,
	} {
		if _, err := ParseJSON(strings.NewReader(src)); err == nil {
			t.Errorf("%s: vocabulary accepted", name)
		}
	}
}

func FuzzEncode(f *testing.F) {
	u := loadVocab(f)
	for _, s := range []string{"", " ", "hello world", "\xff\xfe", "a\x00b", "👩‍👩‍👧 emoji", "日本語のテキスト",
		"ﬁ ligature", "\t\n", "a  b", "\u2581\u2581"} {
		f.Add(s)
	}
	if path, ok := testenv.SharedSeeds(f, "golden/use-lite/use-lite-golden.jsonl"); ok {
		for _, g := range readGoldenFile(f, path)[:40] {
			f.Add(g.Text)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := u.Encode(s)
		b := u.Encode(s)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("non-deterministic output for %q", s)
		}
		for _, id := range a {
			if id < 0 || int(id) >= u.VocabSize() {
				t.Fatalf("id %d out of range for %q", id, s)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	u := loadVocab(b)
	gs := readGolden(b)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		u.Encode(gs[i%len(gs)].Text)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "sentences/s")
}

// BenchmarkLoadBinary measures what the wasm guest does at load_vocab: parse the binary
// vocabulary and build the trie.
func BenchmarkLoadBinary(b *testing.B) {
	bin, err := loadVocab(b).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := UnmarshalBinary(bin); err != nil {
			b.Fatal(err)
		}
	}
}
