package evaluate

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/podsearch/podsearch/core/metrics"
)

func TestBM25AndHybrid(t *testing.T) {
	docs := []Doc{
		{ID: "a", Text: "Staying healthy over Christmas: eating well during the holidays"},
		{ID: "b", Text: "The history of the Roman empire"},
		{ID: "c", Text: "Holiday travel tips for Christmas in Europe"},
	}
	qs := []Query{{ID: "q", Text: "healthy christmas eating", Relevant: metrics.Qrels{"a": 1}}}
	kw := BM25(docs, qs)
	if _, ok := kw[0][1]; ok {
		t.Errorf("doc b shares no term with the query but was scored: %v", kw[0])
	}
	ranked := RankSparse(kw, len(docs), 10)
	if !reflect.DeepEqual(ranked[0], []int{0, 2}) {
		t.Errorf("bm25 ranking = %v, want [0 2] (a matches three terms, c one, b none)", ranked[0])
	}
	// A query that matches no document ranks nothing (and does not fail).
	if none := RankSparse(BM25(docs, []Query{{Text: "zzz qqq"}}), len(docs), 10); len(none[0]) != 0 {
		t.Errorf("unmatched query ranked %v", none[0])
	}
	// Hybrid at weight 1 is dense search; at weight 0 it ranks keyword matches first.
	rng := rand.New(rand.NewPCG(9, 9))
	dv := randVecs(rng, 3, 8)
	qv := [][]float32{append([]float32(nil), dv[1]...)} // dense favours b
	dense, _ := Search(qv, dv, 3)
	h1, err := Hybrid(qv, dv, kw, 1, 3)
	if err != nil || !reflect.DeepEqual(h1, dense) {
		t.Errorf("hybrid weight 1 = %v, dense = %v (%v)", h1, dense, err)
	}
	h0, _ := Hybrid(qv, dv, kw, 0, 3)
	if h0[0][0] != 0 || h0[0][1] != 2 {
		t.Errorf("hybrid weight 0 = %v, want keyword order first", h0[0])
	}
	if _, err := Hybrid(qv, dv, kw, 1.5, 3); err == nil {
		t.Error("weight outside [0, 1] accepted")
	}
	if _, err := Hybrid(qv, dv, nil, 0.5, 3); err == nil {
		t.Error("missing keyword scores accepted")
	}
}

// TestPseudoPairsSciFact makes pseudo-queries for 300 real SciFact abstracts with the pairs
// generators: every pair names its own document, at most three per document, deterministic.
func TestPseudoPairsSciFact(t *testing.T) {
	docs, _ := sciFact(t)
	docs = docs[:300]
	ps := PseudoPairs(docs, 3, 1)
	per := map[string]int{}
	methods := map[string]int{}
	ids := map[string]bool{}
	for _, d := range docs {
		ids[d.ID] = true
	}
	for _, p := range ps {
		if !ids[p.EpisodeID] || p.Query == "" || p.Text == "" {
			t.Fatalf("bad pair %+v", p)
		}
		per[p.EpisodeID]++
		methods[p.Method]++
	}
	for id, n := range per {
		if n > 3 {
			t.Fatalf("document %s got %d pairs", id, n)
		}
	}
	if len(ps) < 600 || methods["title"] == 0 || methods["inverse-cloze"] == 0 {
		t.Errorf("%d pairs by method %v: expected about 3 per document from titles and sentences", len(ps), methods)
	}
	if again := PseudoPairs(docs, 3, 1); !reflect.DeepEqual(again, ps) {
		t.Error("same seed gave different pairs")
	}
}

func TestSubsample(t *testing.T) {
	docs := []Doc{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}
	qs := []Query{{Relevant: metrics.Qrels{"c": 1, "d": 0}}}
	got := Subsample(docs, qs, 2)
	if len(got) != 2 || got[0].ID != "c" || got[1].ID != "a" {
		t.Errorf("Subsample = %v, want judged c first, then a", got)
	}
	if len(Subsample(docs, qs, 0)) != 4 {
		t.Error("maxDocs 0 should keep everything")
	}
}
