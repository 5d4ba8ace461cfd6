package wordnet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DB is an opened WordNet database. It is read-only after Open and safe for concurrent use.
type DB struct {
	index map[POS]map[string][]int64
	data  map[POS][]byte
}

// ErrNotFound is returned by Open when the folder lacks a WordNet file.
var ErrNotFound = errors.New("wordnet: database not found")

// Open reads the WordNet files index.{noun,verb,adj,adv} and data.{noun,verb,adj,adv} in
// dir. Licence lines (they start with two spaces) are skipped; any other malformed index
// line is an error that names the file and line.
func Open(dir string) (*DB, error) {
	db := &DB{index: map[POS]map[string][]int64{}, data: map[POS][]byte{}}
	for _, pos := range AllPOS {
		idx, err := readFile(dir, "index."+fileSuffix[pos])
		if err != nil {
			return nil, err
		}
		m := map[string][]int64{}
		for n, line := range strings.Split(string(idx), "\n") {
			if line == "" || strings.HasPrefix(line, "  ") {
				continue
			}
			e, err := ParseIndexLine(line)
			if err != nil {
				return nil, fmt.Errorf("index.%s:%d: %w", fileSuffix[pos], n+1, err)
			}
			m[e.Lemma] = e.Offsets
		}
		db.index[pos] = m
		if db.data[pos], err = readFile(dir, "data."+fileSuffix[pos]); err != nil {
			return nil, err
		}
	}
	return db, nil
}

// readFile reads dir/name, turning a missing file into ErrNotFound with a hint.
func readFile(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (run `podsearch setup`, which fetches WordNet)", ErrNotFound, dir, name)
	}
	return b, err
}

// Key turns a word or phrase into WordNet's lemma form: lower case, spaces as "_".
func Key(word string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(word)), " ", "_")
}

// Has reports whether lemma (in Key form) is in the index of pos.
func (db *DB) Has(lemma string, pos POS) bool {
	_, ok := db.index[pos][lemma]
	return ok
}

// Senses returns the synsets of lemma (in Key form) as pos, most frequent sense first;
// none when the lemma is not in WordNet.
func (db *DB) Senses(lemma string, pos POS) ([]Synset, error) {
	offs := db.index[pos][lemma]
	out := make([]Synset, 0, len(offs))
	for _, off := range offs {
		s, err := db.Synset(pos, off)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Synset parses the synset at offset in the data file of pos.
func (db *DB) Synset(pos POS, offset int64) (Synset, error) {
	data := db.data[pos]
	if offset < 0 || offset >= int64(len(data)) || (offset > 0 && data[offset-1] != '\n') {
		return Synset{}, fmt.Errorf("wordnet: no synset starts at offset %d of data.%s", offset, fileSuffix[pos])
	}
	line := data[offset:]
	if k := bytes.IndexByte(line, '\n'); k >= 0 {
		line = line[:k]
	}
	s, err := ParseDataLine(string(line))
	if err != nil {
		return Synset{}, fmt.Errorf("data.%s at %d: %w", fileSuffix[pos], offset, err)
	}
	if s.Offset != offset {
		return Synset{}, fmt.Errorf("wordnet: the line at offset %d of data.%s names offset %d", offset, fileSuffix[pos], s.Offset)
	}
	return s, nil
}

// Hypernyms returns the synsets s points to with "@" or "@i" (its more general concepts).
func (db *DB) Hypernyms(s Synset) ([]Synset, error) {
	var out []Synset
	for _, p := range s.Pointers {
		if !p.IsHypernym() {
			continue
		}
		h, err := db.Synset(p.POS, p.Offset)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// detachment are Morphy's suffix rules per part of speech: an inflected ending and what
// replaces it in the base form, tried in order. Noun "es" -> "" stands in for the
// exception list entries of "volcanoes", "potatoes" and the like.
var detachment = map[POS][][2]string{
	Noun: {{"s", ""}, {"ses", "s"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}, {"es", ""}},
	Verb: {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
	Adj:  {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
}

// Morph returns the base forms of word as pos that are WordNet lemmas: the word itself when
// it is one, then the results of Morphy's detachment rules, without repeats. A stem that
// ends in a doubled consonant is tried undoubled too ("running" -> "runn" -> "run"), which
// covers most of what the absent exception lists would.
func (db *DB) Morph(word string, pos POS) []string {
	w := Key(word)
	var out []string
	add := func(base string) {
		if base == "" || !db.Has(base, pos) {
			return
		}
		for _, b := range out {
			if b == base {
				return
			}
		}
		out = append(out, base)
	}
	add(w)
	for _, r := range detachment[pos] {
		if strings.HasSuffix(w, r[0]) && len(w) > len(r[0]) {
			stem := w[:len(w)-len(r[0])]
			add(stem + r[1])
			if n := len(stem); r[1] == "" && n >= 3 && stem[n-1] == stem[n-2] && !strings.ContainsRune("aeiouls", rune(stem[n-1])) {
				add(stem[:n-1])
			}
		}
	}
	return out
}
