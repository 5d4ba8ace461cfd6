package evaluate

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/internal/testenv"
)

func TestParsers(t *testing.T) {
	docs, err := ParseCorpus(strings.NewReader(`{"id":"e1","title":"T","text":"Episode one. Desc.","language":"en"}

{"_id":"42","title":"A paper title.","text":"Abstract."}
`), "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Language != "en" || docs[1].ID != "42" || docs[1].Text != "A paper title. Abstract." {
		t.Fatalf("docs = %+v", docs)
	}
	for _, bad := range []string{`{"id":"x","text":""}`, `{"text":"no id"}`, `not json`, "{\"id\":\"a\",\"text\":\"t\"}\n{\"id\":\"a\",\"text\":\"u\"}"} {
		if _, err := ParseCorpus(strings.NewReader(bad), "c"); err == nil {
			t.Errorf("corpus %q accepted", bad)
		}
	}
	qs, err := ParseQueries(strings.NewReader(`{"qid":"h1","query":"eat better during xmas","relevant":{"e1":2,"e2":0}}`), "q")
	if err != nil || len(qs) != 1 || qs[0].Relevant["e1"] != 2 {
		t.Fatalf("queries = %+v, %v", qs, err)
	}
	for _, bad := range []string{`{"qid":"h","query":"x","relevant":{"e":0}}`, `{"qid":"","query":"x","relevant":{"e":1}}`, `{"qid":"h","query":"x","relevant":[1]}`} {
		if _, err := ParseQueries(strings.NewReader(bad), "q"); err == nil {
			t.Errorf("queries %q accepted", bad)
		}
	}
	if err := CheckJudged(qs, docs); err != nil {
		t.Errorf("CheckJudged: %v", err)
	}
	if err := CheckJudged([]Query{{ID: "z", Relevant: map[string]int{"nope": 1}}}, docs); err == nil {
		t.Error("missing judged doc not reported")
	}
	ps := FromPairs([]pairs.Pair{
		{Query: "q1", EpisodeID: "e1", Text: "t1", Method: "title"},
		{Query: "q2", EpisodeID: "e1", Text: "t1b", Method: "inverse-cloze"},
		{Query: "q3", EpisodeID: "e2", Text: "t2", Method: "tfidf"},
	}, func(id string) string { return map[string]string{"e1": "en"}[id] })
	if ps[0].Language != "en" || ps[2].Language != "" || ps[1].Method != "inverse-cloze" {
		t.Fatalf("FromPairs = %+v", ps)
	}
	eps, of := Episodes(ps)
	if len(eps) != 2 || of[1] != 0 || of[2] != 1 || eps[0].Text != "t1" {
		t.Errorf("episodes %v of %v", eps, of)
	}
	if f := FirstPerEpisode(ps); len(f) != 2 || f[1].Query != "q3" {
		t.Errorf("first per episode = %v", f)
	}
	if pq := PairQueries(ps); pq[2].Relevant["e2"] != 1 || pq[0].Method != "title" || pq[0].Language != "en" {
		t.Errorf("pair queries = %v", pq)
	}
	qr, err := ParseQrels(strings.NewReader("query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\t9\t0\n"), "qr")
	if err != nil || qr["1"]["31715818"] != 1 || qr["1"].Count() != 1 {
		t.Fatalf("qrels = %v, %v", qr, err)
	}
	for _, bad := range []string{"q\td\n", "1\t2\tx\n", "\t2\t1\n"} {
		if _, err := ParseQrels(strings.NewReader(bad), "qr"); err == nil {
			t.Errorf("qrels %q accepted", bad)
		}
	}
}

// TestReadSciFact reads the real BEIR SciFact folder: 5,183 documents, 300 test queries with
// 339 judged pairs.
func TestReadSciFact(t *testing.T) {
	dir := testenv.Shared(t, "data/beir/scifact")
	docs, qs := sciFact(t)
	pairs := 0
	for _, q := range qs {
		pairs += q.Relevant.Count()
	}
	if len(docs) != 5183 || len(qs) != 300 || pairs != 339 {
		t.Fatalf("SciFact: %d docs, %d queries, %d pairs; want 5183, 300, 339", len(docs), len(qs), pairs)
	}
	if err := CheckJudged(qs, docs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadBEIR(dir, "nosuchsplit"); err == nil {
		t.Error("missing split accepted")
	}
}

var (
	sciOnce sync.Once
	sciDocs []Doc
	sciQs   []Query
	sciErr  error
)

// sciFact reads the SciFact test split once for all tests of the package.
func sciFact(t *testing.T) ([]Doc, []Query) {
	t.Helper()
	dir := testenv.Shared(t, "data/beir/scifact")
	sciOnce.Do(func() { sciDocs, sciQs, sciErr = ReadBEIR(dir, "test") })
	if sciErr != nil {
		t.Fatal(sciErr)
	}
	return sciDocs, sciQs
}

func FuzzParseCorpus(f *testing.F) {
	f.Add(`{"id":"e1","text":"x","language":"en"}`)
	f.Add(`{"_id":"1","title":"t","text":"x"}` + "\n" + `{"_id":"2","text":"y"}`)
	f.Add("{")
	f.Fuzz(func(t *testing.T, s string) {
		docs, err := ParseCorpus(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, d := range docs {
			if d.ID == "" || strings.TrimSpace(d.Text) == "" {
				t.Fatalf("accepted an empty document: %+v", d)
			}
		}
	})
}

func FuzzParseQueries(f *testing.F) {
	f.Add(`{"qid":"h1","query":"q","relevant":{"e1":1}}`)
	f.Add(`{"qid":"h1","query":"q","relevant":{"e1":-1}}`)
	f.Fuzz(func(t *testing.T, s string) {
		qs, err := ParseQueries(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, q := range qs {
			if q.Relevant.Count() == 0 {
				t.Fatalf("accepted a query with nothing relevant: %+v", q)
			}
		}
	})
}

func FuzzParseQrels(f *testing.F) {
	f.Add("query-id\tcorpus-id\tscore\n1\t2\t1\n")
	f.Add("1\t2\t0\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseQrels(strings.NewReader(s), "fuzz")
	})
}

// A BEIR folder with documents of empty text (Cranfield has some) loads: they are left out
// and counted, a document with a title but no text keeps its title, and the queries judged
// on an empty document stay (that judgement counts as a miss).
func TestReadBEIREmptyDocuments(t *testing.T) {
	b, err := ReadBEIRFolder(filepath.Join("testdata", "beir-empty"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.EmptyDocs, []string{"3", "5"}) {
		t.Fatalf("empty documents %v, want [3 5]", b.EmptyDocs)
	}
	var ids []string
	for _, d := range b.Docs {
		ids = append(ids, d.ID)
		if strings.TrimSpace(d.Text) == "" {
			t.Errorf("document %s kept without text", d.ID)
		}
	}
	if !slices.Equal(ids, []string{"1", "2", "4", "6", "7"}) {
		t.Fatalf("documents %v", ids)
	}
	if !strings.HasPrefix(b.Docs[3].Text, "approximate solutions of the incompressible laminar boundary layer") {
		t.Errorf("title-only document text %q", b.Docs[3].Text)
	}
	if len(b.Queries) != 4 || b.Queries[1].Relevant["3"] != 1 {
		t.Fatalf("queries %+v", b.Queries)
	}
	docs, qs, err := ReadBEIR(filepath.Join("testdata", "beir-empty"), "test")
	if err != nil || len(docs) != 5 || len(qs) != 4 {
		t.Fatalf("ReadBEIR: %d docs, %d queries, %v", len(docs), len(qs), err)
	}
	// A plain corpus still refuses a document without text.
	if _, err := ParseCorpus(strings.NewReader(`{"_id":"3","title":"","text":""}`), "c"); err == nil {
		t.Fatal("ParseCorpus accepted an empty document")
	}
}
