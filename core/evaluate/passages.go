package evaluate

import (
	"math"
	"strings"
)

// Whole episodes as passages (issue #15, item 4): the encoder reads the first 128 tokens of
// an episode's text, so a long description's later parts never reach it. Passages splits
// such an episode into its usual text plus the title followed by successive windows of the
// description, and PassageLists scores an episode by its best passage. `eval --passages`
// measures it beside the whole-text rows (docs/evaluation.md has the result).

// PassageOptions size the passages of a long episode.
type PassageOptions struct {
	// Window is the number of description words per passage (about 1.3 tokens a word, so
	// 75 words are about 100 tokens).
	Window int
	// LongWords is the text length in words from which an episode gets passages (the
	// encoder's 128 tokens are about 96 words); shorter episodes are their text alone.
	LongWords int
	// MinWords drops a last window shorter than this (it repeats little but the title).
	MinWords int
}

// DefaultPassages are the sizes measured in docs/evaluation.md.
var DefaultPassages = PassageOptions{Window: 75, LongWords: 96, MinWords: 15}

// Passages returns the passage texts of docs and, for each, the index of its document: a
// document's own text first, then (when it has at least LongWords words and a description)
// "title. " followed by each Window words of its description.
func Passages(docs []Doc, o PassageOptions) (texts []string, owner []int) {
	for i, d := range docs {
		texts, owner = append(texts, d.Text), append(owner, i)
		if len(strings.Fields(d.Text)) < o.LongWords {
			continue
		}
		words := strings.Fields(d.Description)
		title := strings.TrimRight(strings.TrimSpace(d.Title), ".")
		for s := 0; s < len(words); s += o.Window {
			w := words[s:min(len(words), s+o.Window)]
			if s > 0 && len(w) < o.MinWords {
				break
			}
			p := strings.Join(w, " ")
			if title != "" {
				p = title + ". " + p
			}
			texts, owner = append(texts, p), append(owner, i)
		}
	}
	return texts, owner
}

// PassageLists returns each query's top depth documents by their best passage's score
// (passage vectors pv, owner[i] the document of passage i, numDocs documents; a nil owner
// means one passage per document), best first: the dense side of a fusion, or a dense
// ranking (Ranked).
func PassageLists(qv, pv [][]float32, owner []int, numDocs, depth int) ([][]ScoredDoc, error) {
	out := make([][]ScoredDoc, len(qv))
	best := make([]float32, numDocs)
	err := scoreAll(qv, pv, func(qi int, scores []float32) {
		if owner == nil {
			best = scores
		} else {
			for i := range best {
				best[i] = float32(math.Inf(-1))
			}
			for p, s := range scores {
				if d := owner[p]; s > best[d] {
					best[d] = s
				}
			}
		}
		top := topK(best, min(depth, numDocs))
		out[qi] = make([]ScoredDoc, len(top))
		for j, d := range top {
			out[qi][j] = ScoredDoc{d, best[d]}
		}
	})
	return out, err
}

// Ranked returns the document indices of scored lists, best first.
func Ranked(lists [][]ScoredDoc) [][]int {
	out := make([][]int, len(lists))
	for i, l := range lists {
		out[i] = make([]int, len(l))
		for j, e := range l {
			out[i][j] = e.Doc
		}
	}
	return out
}
