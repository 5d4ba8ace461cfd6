package tokenizer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
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
type Unigram struct {
	pieces []Piece
	// back is the backward-pass step of each id: the UTF-16 length of its text.
	back []int
	root *trieNode
}

type trieNode struct {
	children map[rune]*trieNode
	id       int32 // -1 when no piece ends here
}

// NewUnigram builds a tokenizer from the vocabulary, in id order.
func NewUnigram(pieces []Piece) (*Unigram, error) {
	if len(pieces) <= ReservedIDs {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d pieces, want more than %d", len(pieces), ReservedIDs)
	}
	u := &Unigram{pieces: pieces, back: make([]int, len(pieces)), root: newTrieNode()}
	for id, p := range pieces {
		if !utf8.ValidString(p.Text) {
			return nil, fmt.Errorf("tokenizer: piece %d is not valid UTF-8", id)
		}
		if math.IsNaN(p.Score) || math.IsInf(p.Score, 0) {
			return nil, fmt.Errorf("tokenizer: piece %d has a non-finite score", id)
		}
		u.back[id] = len(utf16.Encode([]rune(p.Text)))
		if id < ReservedIDs {
			continue
		}
		if p.Text == "" {
			return nil, fmt.Errorf("tokenizer: piece %d is empty", id)
		}
		if u.back[id] == 0 {
			return nil, fmt.Errorf("tokenizer: piece %d has no characters", id)
		}
		node := u.root
		for _, r := range p.Text {
			child := node.children[r]
			if child == nil {
				child = newTrieNode()
				node.children[r] = child
			}
			node = child
		}
		node.id = int32(id)
	}
	if u.back[UnknownID] == 0 {
		// The reference would loop forever on an empty unknown piece; step one character.
		u.back[UnknownID] = 1
	}
	return u, nil
}

func newTrieNode() *trieNode { return &trieNode{children: map[rune]*trieNode{}, id: -1} }

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
	s := norm.NFKC.String(strings.ToValidUTF8(text, "\uFFFD"))
	if s == "" {
		return s
	}
	return string(Separator) + strings.ReplaceAll(s, " ", string(Separator))
}

// Encode implements Tokenizer.
func (u *Unigram) Encode(text string) []int32 {
	symbols := []rune(Normalize(text))
	n := len(symbols)
	best := make([]float64, n+1)
	words := make([]int32, n+1)
	// Lattice edges grouped by end position, each list in ascending start order: we
	// visit start positions in ascending order, so appending keeps that order.
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
				score = best[e.start] // the reference scores the unknown fallback as 0
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
