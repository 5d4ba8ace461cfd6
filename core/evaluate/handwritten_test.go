package evaluate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

// TestHandwrittenQueriesJudgeDemoEpisodes checks the repository's hand-written queries: 20
// queries, each judging only episode ids of the demo corpus (Taddy sample uuids and RSS
// guids, the ids ingest keeps). The raw files are searched, which is fast; `podsearch eval --queries`
// checks the ids against the ingested corpus again (CheckJudged) before scoring.
func TestHandwrittenQueriesJudgeDemoEpisodes(t *testing.T) {
	qs, err := ReadQueries(filepath.Join(testenv.Root(t), "testdata", "handwritten_queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 20 {
		t.Fatalf("%d hand-written queries, want 20", len(qs))
	}
	var all []byte
	for _, rel := range []string{"data/podcasts/taddy_sample/episodes.jsonl", "data/podcasts/rss_feeds/episodes.jsonl"} {
		b, err := os.ReadFile(testenv.Shared(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, q := range qs {
		for id := range q.Relevant {
			if !bytes.Contains(all, []byte(`"`+id+`"`)) { // "uuid": "<id>" or "guid": "<id>"
				t.Errorf("query %s judges %q, which is not in the demo corpus", q.ID, id)
			}
		}
	}
}
