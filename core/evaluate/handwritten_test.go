package evaluate

import (
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestHandwrittenQueriesJudgeDemoEpisodes checks the repository's hand-written queries: 20
// queries, each judging only episodes that the demo corpus (the bundled Taddy sample and RSS
// feeds, through the ingest pipeline) really contains.
func TestHandwrittenQueriesJudgeDemoEpisodes(t *testing.T) {
	qs, err := ReadQueries(filepath.Join(testenv.Root(t), "testdata", "handwritten_queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 20 {
		t.Fatalf("%d hand-written queries, want 20", len(qs))
	}
	batches, err := ingest.ReadDemo()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ingest.Build(batches, ingest.Options{NoShuffle: true, Detect: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]Doc, len(res.Episodes))
	for i, e := range res.Episodes {
		docs[i] = Doc{ID: e.ID, Text: e.Text}
	}
	if err := CheckJudged(qs, docs); err != nil {
		t.Fatal(err)
	}
}
