package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/podsearch/podsearch/core/metrics"
)

// Pair is one (query, episode) training or evaluation pair, as the pairs command writes them
// (train.jsonl, eval.jsonl, test.jsonl).
type Pair struct {
	Query     string
	EpisodeID string
	Text      string // the episode text
	Method    string // how the query was made (title, ict, tfidf ...); may be empty
	Language  string // the episode's language; may be empty
}

type pairLine struct {
	Query     string `json:"query"`
	EpisodeID string `json:"episode_id"`
	Episode   string `json:"episode"`
	ID        string `json:"id"`
	Text      string `json:"text"`
	EpText    string `json:"episode_text"`
	Method    string `json:"method"`
	Language  string `json:"language"`
	Lang      string `json:"lang"`
}

// ReadPairs reads a pairs JSONL file: query, episode_id, text, and optionally method and
// language on each line.
func ReadPairs(path string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePairs(f, path)
}

// ParsePairs is ReadPairs on a reader; name labels errors.
func ParsePairs(r io.Reader, name string) ([]Pair, error) {
	var ps []Pair
	err := readLines(r, name, func(line []byte, _ int) error {
		var l pairLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("bad JSON: %w", err)
		}
		p := Pair{Query: l.Query, EpisodeID: firstNonEmpty(l.EpisodeID, l.Episode, l.ID),
			Text: firstNonEmpty(l.Text, l.EpText), Method: l.Method, Language: firstNonEmpty(l.Language, l.Lang)}
		if strings.TrimSpace(p.Query) == "" || p.EpisodeID == "" || strings.TrimSpace(p.Text) == "" {
			return errors.New("pair needs query, episode_id and text")
		}
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Episodes returns the distinct episodes of ps (first text seen for each id) and, for each
// pair, the index of its episode.
func Episodes(ps []Pair) (docs []Doc, episodeOf []int) {
	idx := map[string]int{}
	episodeOf = make([]int, len(ps))
	for i, p := range ps {
		j, ok := idx[p.EpisodeID]
		if !ok {
			j = len(docs)
			idx[p.EpisodeID] = j
			docs = append(docs, Doc{ID: p.EpisodeID, Text: p.Text, Language: p.Language})
		}
		episodeOf[i] = j
	}
	return docs, episodeOf
}

// PairQueries turns pairs into evaluation queries, each with its own episode as the one
// relevant document.
func PairQueries(ps []Pair) []Query {
	qs := make([]Query, len(ps))
	for i, p := range ps {
		qs[i] = Query{ID: fmt.Sprintf("pair-%d", i), Text: p.Query, Relevant: metrics.Qrels{p.EpisodeID: 1},
			Language: p.Language, Method: p.Method}
	}
	return qs
}

// FirstPerEpisode keeps the first pair of each episode, the deduplication the reference
// article applies to its eval and test pairs.
func FirstPerEpisode(ps []Pair) []Pair {
	seen := map[string]bool{}
	var out []Pair
	for _, p := range ps {
		if !seen[p.EpisodeID] {
			seen[p.EpisodeID] = true
			out = append(out, p)
		}
	}
	return out
}
