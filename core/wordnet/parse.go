package wordnet

import (
	"fmt"
	"strconv"
	"strings"
)

// POS is a part of speech, as WordNet writes it in index and data lines.
type POS byte

// The parts of speech with their own index and data files. An adjective satellite ("s" in
// data lines) lives in the adjective files and is reported as Adj.
const (
	Noun POS = 'n'
	Verb POS = 'v'
	Adj  POS = 'a'
	Adv  POS = 'r'
)

// satellite is the synset type of an adjective satellite, stored with the adjectives.
const satellite = 's'

// AllPOS lists the parts of speech in the order the files are read.
var AllPOS = []POS{Noun, Verb, Adj, Adv}

// fileSuffix names the index and data files of each part of speech.
var fileSuffix = map[POS]string{Noun: "noun", Verb: "verb", Adj: "adj", Adv: "adv"}

// String returns the letter WordNet uses.
func (p POS) String() string { return string(rune(p)) }

// parsePOS reads a part of speech, folding the satellite "s" into Adj.
func parsePOS(s string) (POS, error) {
	if len(s) == 1 {
		switch p := POS(s[0]); p {
		case Noun, Verb, Adj, Adv:
			return p, nil
		case satellite:
			return Adj, nil
		}
	}
	return 0, fmt.Errorf("unknown part of speech %q", s)
}

// IndexEntry is one line of an index file: a lemma and its senses.
type IndexEntry struct {
	// Lemma is lower case, words joined by "_" ("ice_cream").
	Lemma string
	POS   POS
	// Offsets are the synsets of the lemma's senses, most frequent first: each is the byte
	// offset of the synset's line in the data file of POS.
	Offsets []int64
}

// Pointer is a relation from a synset to another synset.
type Pointer struct {
	// Symbol is WordNet's pointer symbol: "@" hypernym, "@i" instance hypernym, "~"
	// hyponym, "!" antonym, "&" similar to, ...
	Symbol string
	Offset int64
	POS    POS
}

// IsHypernym reports whether the pointer leads to a more general synset ("@" or "@i").
func (p Pointer) IsHypernym() bool { return p.Symbol == "@" || p.Symbol == "@i" }

// Synset is one line of a data file: a set of synonymous lemmas with its relations and gloss.
type Synset struct {
	Offset int64
	POS    POS
	// Lemmas are the synset's words as written in WordNet (case kept, words joined by "_",
	// adjective markers such as "(p)" removed).
	Lemmas   []string
	Pointers []Pointer
	// Gloss is the definition and examples, as in the file.
	Gloss string
}

// lineError says which line failed and why.
func lineError(kind, line, format string, args ...any) error {
	if len(line) > 60 {
		line = line[:60] + "..."
	}
	return fmt.Errorf("wordnet: malformed %s line %q: %s", kind, line, fmt.Sprintf(format, args...))
}

// ParseIndexLine parses a line of an index file:
//
//	lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
func ParseIndexLine(line string) (IndexEntry, error) {
	f := strings.Fields(line)
	if len(f) < 6 {
		return IndexEntry{}, lineError("index", line, "%d fields, want at least 6", len(f))
	}
	pos, err := parsePOS(f[1])
	if err != nil {
		return IndexEntry{}, lineError("index", line, "%v", err)
	}
	nSyn, err := count(f[2], 10)
	if err != nil {
		return IndexEntry{}, lineError("index", line, "synset_cnt: %v", err)
	}
	nPtr, err := count(f[3], 10)
	if err != nil {
		return IndexEntry{}, lineError("index", line, "p_cnt: %v", err)
	}
	rest := f[4:]
	if len(rest) != nPtr+2+nSyn {
		return IndexEntry{}, lineError("index", line, "%d fields after p_cnt, want %d pointers + 2 counts + %d offsets",
			len(rest), nPtr, nSyn)
	}
	e := IndexEntry{Lemma: f[0], POS: pos, Offsets: make([]int64, nSyn)}
	for i, s := range rest[nPtr+2:] {
		if e.Offsets[i], err = offset(s); err != nil {
			return IndexEntry{}, lineError("index", line, "synset offset %d: %v", i+1, err)
		}
	}
	return e, nil
}

// ParseDataLine parses a line of a data file:
//
//	offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] [frames...] | gloss
//
// where w_cnt is two hex digits, each pointer is "symbol offset pos source/target" and verb
// lines carry f_cnt frames "+ f_num w_num" before the gloss.
func ParseDataLine(line string) (Synset, error) {
	head, gloss, _ := strings.Cut(line, "|")
	f := strings.Fields(head)
	if len(f) < 4 {
		return Synset{}, lineError("data", line, "%d fields before the gloss, want at least 4", len(f))
	}
	var s Synset
	var err error
	if s.Offset, err = offset(f[0]); err != nil {
		return Synset{}, lineError("data", line, "offset: %v", err)
	}
	if s.POS, err = parsePOS(f[2]); err != nil {
		return Synset{}, lineError("data", line, "%v", err)
	}
	nWords, err := count(f[3], 16)
	if err != nil || nWords == 0 {
		return Synset{}, lineError("data", line, "w_cnt %q: want a positive hex count", f[3])
	}
	i := 4
	if len(f) < i+2*nWords+1 {
		return Synset{}, lineError("data", line, "w_cnt %d, but only %d fields follow", nWords, len(f)-i)
	}
	s.Lemmas = make([]string, nWords)
	for w := range nWords {
		s.Lemmas[w] = stripMarker(f[i])
		i += 2 // word, lex_id
	}
	nPtr, err := count(f[i], 10)
	if err != nil {
		return Synset{}, lineError("data", line, "p_cnt: %v", err)
	}
	i++
	if len(f) < i+4*nPtr {
		return Synset{}, lineError("data", line, "p_cnt %d, but only %d fields follow", nPtr, len(f)-i)
	}
	s.Pointers = make([]Pointer, nPtr)
	for p := range nPtr {
		ptr := Pointer{Symbol: f[i]}
		if ptr.Offset, err = offset(f[i+1]); err != nil {
			return Synset{}, lineError("data", line, "pointer %d offset: %v", p+1, err)
		}
		if ptr.POS, err = parsePOS(f[i+2]); err != nil {
			return Synset{}, lineError("data", line, "pointer %d: %v", p+1, err)
		}
		s.Pointers[p] = ptr
		i += 4
	}
	if i < len(f) { // verb frames: f_cnt, then "+ f_num w_num" each
		nFrames, err := count(f[i], 10)
		if err != nil || len(f) != i+1+3*nFrames {
			return Synset{}, lineError("data", line, "%d fields after the pointers are no verb frame list", len(f)-i)
		}
	}
	s.Gloss = strings.TrimSpace(gloss)
	return s, nil
}

// stripMarker removes an adjective's syntactic marker: "ready_to_hand(p)" -> "ready_to_hand".
func stripMarker(w string) string {
	if strings.HasSuffix(w, ")") {
		if k := strings.LastIndexByte(w, '('); k > 0 {
			return w[:k]
		}
	}
	return w
}

// count parses a non-negative count in base 10 or 16, bounded so that a hostile line
// cannot ask for a huge allocation.
func count(s string, base int) (int, error) {
	n, err := strconv.ParseUint(s, base, 16)
	if err != nil {
		return 0, fmt.Errorf("count %q: %w", s, err)
	}
	return int(n), nil
}

// offset parses a synset offset: 8 decimal digits.
func offset(s string) (int64, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("offset %q: want 8 digits", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("offset %q: %w", s, err)
	}
	return int64(n), nil
}
