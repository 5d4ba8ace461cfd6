package tokenizer

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"

	"github.com/podsearch/podsearch/internal/testenv"
)

// The first implementation of Unigram, kept as the oracle of the fast one: a map trie per
// node, a lattice of per-end edge lists, the text normalised to a []rune.

type refTrieNode struct {
	children map[rune]*refTrieNode
	id       int32
}

type refUnigram struct {
	pieces []Piece
	back   []int
	root   *refTrieNode
}

func newRefUnigram(pieces []Piece) *refUnigram {
	newNode := func() *refTrieNode { return &refTrieNode{children: map[rune]*refTrieNode{}, id: -1} }
	u := &refUnigram{pieces: pieces, back: make([]int, len(pieces)), root: newNode()}
	for id, p := range pieces {
		u.back[id] = len(utf16.Encode([]rune(p.Text)))
		if id < ReservedIDs {
			continue
		}
		node := u.root
		for _, r := range p.Text {
			child := node.children[r]
			if child == nil {
				child = newNode()
				node.children[r] = child
			}
			node = child
		}
		node.id = int32(id)
	}
	if u.back[UnknownID] == 0 {
		u.back[UnknownID] = 1
	}
	return u
}

func normalizeReference(text string) string {
	s := norm.NFKC.String(strings.ToValidUTF8(text, "\uFFFD"))
	if s == "" {
		return s
	}
	return string(Separator) + strings.ReplaceAll(s, " ", string(Separator))
}

func (u *refUnigram) encodeReference(text string) []int32 {
	symbols := []rune(normalizeReference(text))
	n := len(symbols)
	best := make([]float64, n+1)
	words := make([]int32, n+1)
	type edge struct {
		start int
		id    int32
	}
	ends := make([][]edge, n+1)
	for i := 0; i < n; i++ {
		matched := false
		node := u.root
		for j := i; j < n; j++ {
			node = node.children[symbols[j]]
			if node == nil {
				break
			}
			if node.id >= 0 {
				ends[j+1] = append(ends[j+1], edge{start: i, id: node.id})
				matched = true
			}
		}
		if !matched {
			ends[i+1] = append(ends[i+1], edge{start: i, id: UnknownID})
		}
	}
	for end := 1; end <= n; end++ {
		for _, e := range ends[end] {
			score := u.pieces[e.id].Score + best[e.start]
			if e.id == UnknownID {
				score = best[e.start]
			}
			if best[end] == 0 || score >= best[end] {
				best[end] = score
				words[end] = e.id
			}
		}
	}
	var rev []int32
	for it := n; it > 0; it -= u.back[words[it]] {
		rev = append(rev, words[it])
	}
	out := make([]int32, 0, len(rev))
	prevUnk := false
	for _, id := range rev {
		if !(prevUnk && id == UnknownID) {
			out = append(out, id)
		}
		prevUnk = id == UnknownID
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

var (
	refOnce  sync.Once
	refVocab *refUnigram
)

// referenceOf returns the oracle for the real vocabulary u (built once per test binary).
func referenceOf(u *Unigram) *refUnigram {
	refOnce.Do(func() { refVocab = newRefUnigram(u.Pieces()) })
	return refVocab
}

// checkSame fails when the fast tokenizer or Normalize differs from the oracle on text.
func checkSame(t *testing.T, u *Unigram, ref *refUnigram, text string) {
	t.Helper()
	if got, want := Normalize(text), normalizeReference(text); got != want {
		t.Fatalf("Normalize(%q) = %q, reference %q", text, got, want)
	}
	got, want := u.Encode(text), ref.encodeReference(text)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode(%q):\n got %v\nwant %v (reference)", trunc(text), got, want)
	}
}

// referenceSeeds are inputs that exercise the quirks: invalid UTF-8, CJK, emoji and other
// code points beyond the BMP (UTF-16 length 2), tabs and newlines, long unknown runs,
// NFKC folds that turn non-ASCII into ASCII, pieces' own separators.
var referenceSeeds = []string{
	"", " ", "  ", "hello world", "Hello, World! It's 3:45pm.", "\xff\xfe", "a\xffb", "\xe2\x96",
	"a\x00b", "👩‍👩‍👧 emoji 🎙️🎧", "日本語のテキスト", "中文播客节目", "한국어 팟캐스트",
	"ﬁ ligature ﬀ", "\t\n", "a\tb\nc\r\nd", "a  b   c", "\u2581\u2581", "\u2581a\u2581",
	"ｆｕｌｌ－ｗｉｄｔｈ　ｓｐａｃｅ", "①②③ ㎏ ™", "e\u0301 café cafe\u0301", "\u00a0nbsp\u2003em",
	strings.Repeat("ж", 300), strings.Repeat("🎙", 200), strings.Repeat("\x80", 100),
	strings.Repeat("~", 500), strings.Repeat("the ", 400), "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝",
}

func TestEncodeMatchesReference(t *testing.T) {
	u := loadVocab(t)
	ref := referenceOf(u)
	for _, s := range referenceSeeds {
		checkSame(t, u, ref, s)
	}
	for _, g := range readGolden(t) {
		checkSame(t, u, ref, g.Text)
		// Cuts at arbitrary byte offsets make invalid UTF-8 and odd starts.
		for cut := 1; cut < len(g.Text); cut += len(g.Text)/8 + 1 {
			checkSame(t, u, ref, g.Text[cut:])
			checkSame(t, u, ref, g.Text[:cut]+"\xc3"+g.Text[cut:])
		}
	}
}

func TestSmallVocabularyMatchesReference(t *testing.T) {
	// Duplicate texts (the larger id wins), a code point beyond the BMP in a piece (a
	// backward step of 2 UTF-16 units over 1 code point), an unknown piece of length 3.
	pieces := []Piece{{"unk", 0}, {"<s>", 0}, {"</s>", 0}, {"x1", 0}, {"x2", 0}, {"x3", 0},
		{"▁a", -1}, {"b", -2}, {"▁ab", -2.5}, {"▁", -3}, {"b", -1.5}, {"🎙", -1}, {"🎙b", -0.5},
		{"ab🎙", -4}, {"\t", -0.1}, {"a", 0}}
	u, err := NewUnigram(pieces)
	if err != nil {
		t.Fatal(err)
	}
	ref := newRefUnigram(pieces)
	for _, s := range append(referenceSeeds, "ab", "a b", "🎙b", "a🎙bb🎙", "ab🎙 ab🎙b", "zz🎙zz", "a\tb", "aaa a") {
		checkSame(t, u, ref, s)
	}
}

func TestEncodeConcurrent(t *testing.T) {
	u := loadVocab(t)
	ref := referenceOf(u)
	gs := readGolden(t)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(gs); i += 4 {
				if got, want := u.Encode(gs[i].Text), ref.encodeReference(gs[i].Text); !reflect.DeepEqual(got, want) {
					t.Errorf("concurrent Encode differs on line %d", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzEncodeMatchesReference(f *testing.F) {
	u := loadVocab(f)
	ref := referenceOf(u)
	for _, s := range referenceSeeds {
		f.Add(s)
	}
	if path, ok := testenv.SharedSeeds(f, "golden/use-lite/use-lite-golden.jsonl"); ok {
		for _, g := range readGoldenFile(f, path) {
			f.Add(g.Text)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSame(t, u, ref, s)
	})
}
