package tokenizer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Separator is the SentencePiece word-boundary mark (U+2581) that replaces spaces.
const Separator = '\u2581'

// ReservedIDs is the number of leading vocabulary entries (unknown, <s>, </s>, extras)
// that are never matched against text.
const ReservedIDs = 6

// UnknownID is the id of a character that starts no vocabulary piece.
const UnknownID = 0

// Piece is one vocabulary entry: its text and its log-probability score.
type Piece struct {
	Text  string
	Score float64
}

// Unigram is the SentencePiece unigram tokenizer of USE-lite.
//
// It reproduces the reference (the TF.js Universal Sentence Encoder tokenizer) exactly:
//   - the input is NFKC-normalised; a non-empty input gets a leading U+2581 and every
//     U+0020 space becomes U+2581 (tabs and newlines stay as they are);
//   - a Viterbi pass over code points keeps, for each end position, the best summed
//     score; candidates are visited by ascending start position, and a candidate wins
//     when the best so far is exactly 0 (the reference's "unset" mark, which a path of
//     unknown pieces also scores) or when its score is >= the best (later wins ties);
//   - a position where no piece starts yields the unknown id 0 covering one character;
//   - the backward pass steps back by the UTF-16 length of the chosen piece's text;
//   - runs of unknown ids collapse into one.
//
// A Unigram is immutable once built and safe for concurrent use.
type Unigram struct {
	pieces []Piece
	// back is the backward-pass step of each id: the UTF-16 length of its text.
	back []int32
	// score is each id's score (pieces[id].Score), kept apart for the Viterbi loop.
	score []float64
	// alpha maps the code points that occur in matchable pieces to dense codes 1..n.
	alpha alphabet
	// trie holds the matchable pieces as a double-array trie over alphabet codes.
	trie []daUnit
}

// NewUnigram builds a tokenizer from the vocabulary, in id order.
func NewUnigram(pieces []Piece) (*Unigram, error) {
	if len(pieces) <= ReservedIDs {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d pieces, want more than %d", len(pieces), ReservedIDs)
	}
	u := &Unigram{pieces: pieces, back: make([]int32, len(pieces)), score: make([]float64, len(pieces))}
	for id, p := range pieces {
		if !utf8.ValidString(p.Text) {
			return nil, fmt.Errorf("tokenizer: piece %d is not valid UTF-8", id)
		}
		if math.IsNaN(p.Score) || math.IsInf(p.Score, 0) {
			return nil, fmt.Errorf("tokenizer: piece %d has a non-finite score", id)
		}
		u.score[id] = p.Score
		back := 0
		for _, r := range p.Text {
			back += utf16.RuneLen(r)
		}
		if back > math.MaxInt32 {
			return nil, fmt.Errorf("tokenizer: piece %d is too long", id)
		}
		u.back[id] = int32(back)
		if id < ReservedIDs {
			continue
		}
		if p.Text == "" {
			return nil, fmt.Errorf("tokenizer: piece %d is empty", id)
		}
	}
	if u.back[UnknownID] == 0 {
		// The reference would loop forever on an empty unknown piece; step one character.
		u.back[UnknownID] = 1
	}
	u.alpha = newAlphabet(pieces[ReservedIDs:])
	u.trie = buildTrie(pieces, &u.alpha)
	return u, nil
}

// LoadFile reads a vocabulary file: vocab.json ([[piece, score], ...]) or the binary form
// written by MarshalBinary (recognised by its magic).
func LoadFile(path string) (*Unigram, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (run `podsearch setup` to fetch the model)", err)
	}
	if strings.HasPrefix(string(data), binaryMagic) {
		return UnmarshalBinary(data)
	}
	return ParseJSON(strings.NewReader(string(data)))
}

// ParseJSON reads a vocabulary in the vocab.json form: an array of [piece, score] pairs.
func ParseJSON(r io.Reader) (*Unigram, error) {
	var raw [][2]json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("tokenizer: vocabulary is not a JSON array of [piece, score]: %w", err)
	}
	pieces := make([]Piece, len(raw))
	for i, pair := range raw {
		if err := json.Unmarshal(pair[0], &pieces[i].Text); err != nil {
			return nil, fmt.Errorf("tokenizer: vocabulary entry %d: piece: %w", i, err)
		}
		if err := json.Unmarshal(pair[1], &pieces[i].Score); err != nil {
			return nil, fmt.Errorf("tokenizer: vocabulary entry %d: score: %w", i, err)
		}
	}
	return NewUnigram(pieces)
}

// VocabSize implements Tokenizer.
func (u *Unigram) VocabSize() int { return len(u.pieces) }

// Pieces returns the vocabulary in id order. The caller must not modify it.
func (u *Unigram) Pieces() []Piece { return u.pieces }

// Normalize applies the reference's input processing: NFKC, then, when non-empty, a leading
// U+2581 and U+2581 in place of every U+0020.
func Normalize(text string) string {
	s := nfkc(text)
	if s == "" {
		return s
	}
	return string(Separator) + strings.ReplaceAll(s, " ", string(Separator))
}

// nfkc is NFKC of text, each run of invalid UTF-8 bytes read as one U+FFFD. ASCII text is its
// own NFKC form, so it is returned as is without a pass of the normaliser.
func nfkc(text string) string {
	if isASCII(text) {
		return text
	}
	return norm.NFKC.String(strings.ToValidUTF8(text, "\uFFFD"))
}

// isASCII reports whether s holds only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// scratch holds the per-call buffers of Encode, reused through scratchPool.
type scratch struct {
	norm  []byte    // the NFKC form of non-ASCII input
	codes []int32   // the alphabet code of each symbol
	best  []float64 // best score of a path ending at each position
	words []int32   // the last id of that path
	rev   []int32   // the ids of the backward pass, last first
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledSymbols bounds the buffers kept in the pool, so one huge input does not pin memory.
const maxPooledSymbols = 1 << 16

// Encode implements Tokenizer.
func (u *Unigram) Encode(text string) []int32 {
	sc := scratchPool.Get().(*scratch)
	out := u.encode(sc, text)
	if cap(sc.codes) <= maxPooledSymbols+1 && cap(sc.norm) <= 4*maxPooledSymbols {
		scratchPool.Put(sc)
	}
	return out
}

// encode is Encode with the caller's scratch buffers.
func (u *Unigram) encode(sc *scratch, text string) []int32 {
	codes := u.symbols(sc, text)
	n := len(codes)
	sc.best = grow(sc.best, n+1)
	sc.words = grow(sc.words, n+1)
	best, words := sc.best, sc.words
	trie, score := u.trie, u.score
	// One forward pass: start positions in ascending order, each relaxing every edge that
	// leaves it. best[i] is final when i is reached (every edge into i starts before i),
	// and the edges into any end are relaxed in ascending start order (one edge per start
	// and end), exactly the order of the reference's per-end lists.
	for i := 0; i < n; i++ {
		from := best[i]
		matched := false
		s := 0
		for j := i; j < n; j++ {
			t := int(trie[s].base) + int(codes[j])
			if int(trie[t].check) != s {
				break
			}
			s = t
			if id := trie[s].id; id >= 0 {
				matched = true
				sc := score[id] + from
				if b := best[j+1]; b == 0 || sc >= b {
					best[j+1] = sc
					words[j+1] = id
				}
			}
		}
		if !matched {
			// The unknown edge to i+1 scores 0, as in the reference.
			if b := best[i+1]; b == 0 || from >= b {
				best[i+1] = from
				words[i+1] = UnknownID
			}
		}
	}
	rev := sc.rev[:0]
	for it := n; it > 0; it -= int(u.back[words[it]]) {
		rev = append(rev, words[it])
	}
	sc.rev = rev
	k := 0
	for i, id := range rev {
		if id != UnknownID || i == 0 || rev[i-1] != UnknownID {
			k++
		}
	}
	out := make([]int32, 0, k)
	for i := len(rev) - 1; i >= 0; i-- {
		if id := rev[i]; id != UnknownID || i == len(rev)-1 || rev[i+1] != UnknownID {
			out = append(out, id)
		}
	}
	return out
}

// grow returns s resliced to n zero elements, reallocated when its capacity is short.
func grow[T int32 | float64](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// symbols normalises text as Normalize does and returns the alphabet code of each symbol
// (0 for a code point no matchable piece contains), in sc.codes.
func (u *Unigram) symbols(sc *scratch, text string) []int32 {
	a := &u.alpha
	sep := a.code(Separator)
	if isASCII(text) {
		if text == "" {
			return sc.codes[:0]
		}
		codes := slices.Grow(sc.codes[:0], len(text)+1)[:len(text)+1]
		sc.codes = codes
		codes[0] = sep
		for i := 0; i < len(text); i++ {
			if c := text[i]; c == ' ' {
				codes[i+1] = sep
			} else {
				codes[i+1] = a.code(rune(c))
			}
		}
		return codes
	}
	b := norm.NFKC.AppendString(sc.norm[:0], strings.ToValidUTF8(text, "\uFFFD"))
	sc.norm = b
	if len(b) == 0 {
		return sc.codes[:0]
	}
	codes := append(sc.codes[:0], sep)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == ' ' {
			codes = append(codes, sep)
		} else {
			codes = append(codes, a.code(r))
		}
	}
	sc.codes = codes
	return codes
}
