package pairs

import (
	"fmt"
	"io"
	"strings"

	"github.com/podsearch/podsearch/core/ingest"
)

// Pair is one line of train.jsonl, eval.jsonl and test.jsonl.
type Pair struct {
	// Query is the synthetic query.
	Query string `json:"query"`
	// EpisodeID is the corpus id of the episode the query was made from (the right answer).
	EpisodeID string `json:"episode_id"`
	// Text is the document side of the pair: the episode text, minus the query where the
	// method takes the query out of it (title, inverse-cloze).
	Text string `json:"text"`
	// Method is the Generator that made the query: "title", "inverse-cloze", "tfidf" or
	// "wordnet".
	Method string `json:"method"`
}

// ReadPairs reads a pairs file (JSON Lines of Pair; gzip when the name ends in .gz).
func ReadPairs(path string) ([]Pair, error) { return ingest.ReadLines[Pair](path) }

// WritePairs writes pairs as JSON Lines (gzip when the name ends in .gz).
func WritePairs(path string, pairs []Pair) error { return ingest.WriteLines(path, pairs) }

// Candidate is one query a Generator proposes, with the document text that goes with it.
type Candidate struct {
	Query string
	Text  string
}

// Generator proposes synthetic queries for an episode.
type Generator interface {
	// Method names the generator; it tags every pair it makes.
	Method() string
	// Generate returns up to n candidate queries for ep, best first (possibly none).
	Generate(ep *ingest.Episode, n int) []Candidate
}

// GenStats counts what Generate made.
type GenStats struct {
	Episodes int `json:"episodes"`
	// Short counts episodes that got fewer than the asked number of pairs, None those
	// that got none.
	Short    int            `json:"episodes_short"`
	None     int            `json:"episodes_without_pairs"`
	Pairs    int            `json:"pairs"`
	ByMethod map[string]int `json:"by_method"`
	// Overlap is WordOverlap of the pairs, per method, when the caller computed it.
	Overlap map[string]Overlap `json:"query_word_overlap,omitempty"`
}

// Generate makes perEpisode pairs for every episode: it asks each generator for candidates
// and takes them in turn (the first of each generator, then the second of each, ...),
// skipping a query already taken for the episode, until perEpisode are taken. Episodes are
// visited in corpus order; progress, when not nil, receives a progress bar.
func Generate(episodes []ingest.Episode, gens []Generator, perEpisode int, progress io.Writer) ([]Pair, GenStats) {
	st := GenStats{Episodes: len(episodes), ByMethod: map[string]int{}}
	for _, g := range gens {
		st.ByMethod[g.Method()] = 0
	}
	bar := ingest.ProgressBar(progress, len(episodes), "generating queries")
	var out []Pair
	lists := make([][]Candidate, len(gens))
	for i := range episodes {
		_ = bar.Add(1)
		ep := &episodes[i]
		for g, gen := range gens {
			lists[g] = gen.Generate(ep, perEpisode)
		}
		taken := map[string]bool{}
		got := 0
		for k := 0; got < perEpisode; k++ {
			more := false
			for g := 0; g < len(gens) && got < perEpisode; g++ {
				if k >= len(lists[g]) {
					continue
				}
				more = true
				c := lists[g][k]
				key := strings.ToLower(c.Query)
				if c.Query == "" || c.Text == "" || taken[key] {
					continue
				}
				taken[key] = true
				out = append(out, Pair{Query: c.Query, EpisodeID: ep.ID, Text: c.Text, Method: gens[g].Method()})
				st.ByMethod[gens[g].Method()]++
				got++
			}
			if !more {
				break
			}
		}
		if got < perEpisode {
			st.Short++
		}
		if got == 0 {
			st.None++
		}
	}
	_ = bar.Finish()
	st.Pairs = len(out)
	return out, st
}

// String is a one-line summary.
func (s GenStats) String() string {
	return fmt.Sprintf("%d episodes -> %d pairs (%s); %d episodes got fewer than asked, %d none",
		s.Episodes, s.Pairs, formatCounts(s.ByMethod), s.Short, s.None)
}

// DefaultGenerators returns the three unsupervised generators, fitted to the corpus:
// title, inverse cloze (seeded) and TF-IDF terms.
func DefaultGenerators(episodes []ingest.Episode, seed uint64) []Generator {
	return []Generator{NewTitle(episodes), NewInverseCloze(episodes, seed), NewTFIDF(episodes)}
}
