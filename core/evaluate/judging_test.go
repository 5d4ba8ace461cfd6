package evaluate

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/metrics"
)

// TestScoreQueries: a search that returns the relevant document first for one query and
// nothing relevant for the other scores each query (1 and 0) and, averaged, Recall@30 and
// MRR@30 of 0.5; a failing search stops the scoring and names the query.
func TestScoreQueries(t *testing.T) {
	qs := []Query{
		{ID: "1", Text: "first query", Relevant: metrics.Qrels{"a": 2}},
		{ID: "2", Text: "second query", Relevant: metrics.Qrels{"b": 1}},
	}
	ms := metrics.MustParseAll("recall@30", "ndcg@10", "mrr@30")
	per, err := ScoreQueries(qs, ms, func(text string) ([]string, error) {
		if text == "first query" {
			return []string{"a", "x"}, nil
		}
		return []string{"x", "y"}, nil
	})
	if err != nil || len(per) != 2 || per[0]["ndcg@10"] != 1 || per[1]["ndcg@10"] != 0 {
		t.Fatalf("per query %v, err %v", per, err)
	}
	if v := MeanScores(per, ms); v["recall@30"] != 0.5 || v["mrr@30"] != 0.5 || v["ndcg@10"] != 0.5 {
		t.Fatalf("means %v", v)
	}
	boom := errors.New("boom")
	_, err = ScoreQueries(qs, ms, func(string) ([]string, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "query 1") {
		t.Fatalf("err %v", err)
	}
}

// TestComparePaired counts wins, ties and losses beyond the tie margin and gives the mean
// difference with its standard error; unequal or empty inputs are refused.
func TestComparePaired(t *testing.T) {
	p, err := ComparePaired([]float64{1, 0.5, 0.2, 0}, []float64{0, 0.5, 0.4, 0.0005}, 0.001)
	if err != nil || p.Wins != 1 || p.Ties != 2 || p.Losses != 1 {
		t.Fatalf("%+v, %v", p, err)
	}
	// Differences 1, 0, -0.2, -0.0005: mean 0.199875; sample sd over 4, divided by 2.
	if math.Abs(p.Mean-0.199875) > 1e-9 || math.Abs(p.StdErr-0.27083) > 1e-4 {
		t.Fatalf("mean %v, standard error %v", p.Mean, p.StdErr)
	}
	if _, err := ComparePaired([]float64{1}, nil, 0); err == nil {
		t.Fatal("unequal lengths accepted")
	}
	if _, err := ComparePaired(nil, nil, 0); err == nil {
		t.Fatal("no values accepted")
	}
}

// TestSetTitleOverlapsAndSummary: each query's overlap is taken with the titles of its
// relevant documents only; a query without a kind is refused; the summary counts queries,
// zero overlaps, the mean and the strata.
func TestSetTitleOverlapsAndSummary(t *testing.T) {
	docs := []Doc{{ID: "a", Title: "Medieval beekeeping"}, {ID: "b", Title: "Jazz history"}}
	qs := []Query{
		{ID: "q1", Text: "beekeeping monks", Language: "en", Kind: "need", Relevant: metrics.Qrels{"a": 2, "b": 0}},
		{ID: "q2", Text: "space travel", Language: "en", Kind: "place", Relevant: metrics.Qrels{"b": 1}},
	}
	if err := SetTitleOverlaps(qs, docs, "q.jsonl"); err != nil {
		t.Fatal(err)
	}
	if *qs[0].TitleOverlap != 0.5 || *qs[1].TitleOverlap != 0 {
		t.Fatalf("overlaps %v %v", *qs[0].TitleOverlap, *qs[1].TitleOverlap)
	}
	want := "2 queries, 1 with no title overlap, mean overlap 0.250; kind=need:1 kind=place:1 lang=en:2"
	if got := SplitSummary(qs); got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	bad := []Query{{ID: "q3", Text: "x", Language: "en"}}
	if err := SetTitleOverlaps(bad, docs, "q.jsonl"); err == nil || !strings.Contains(err.Error(), "q.jsonl: query q3 needs a lang and a kind") {
		t.Errorf("query without a kind: %v", err)
	}
}
