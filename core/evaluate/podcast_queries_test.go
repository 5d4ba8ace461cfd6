package evaluate

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/ingest/demo"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestPodcastQuerySets checks the pooled, hand-judged podcast query sets (docs/evaluation.md):
// both halves parse, every judged id is an episode of the ingested demo corpus (the bundled
// corpus, built as `podsearch ingest --demo` does), every query carries a lang and a kind and
// the title_overlap the recorded relevant titles give, and the halves are exactly the
// stratified split (SplitStratified) of their union, batch by batch, so the split can be
// reproduced.
func TestPodcastQuerySets(t *testing.T) {
	root := testenv.Root(t)
	dev, err := ReadQueries(filepath.Join(root, "testdata", "podcast_queries_dev.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := ReadQueries(filepath.Join(root, "testdata", "podcast_queries_test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]Query{}, dev...), test...)
	if len(all) < 110 {
		t.Errorf("%d podcast queries, want at least 110", len(all))
	}
	eps, err := demo.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	title := make(map[string]string, len(eps))
	docs := make([]Doc, len(eps))
	for i, e := range eps {
		title[e.ID] = e.Title
		docs[i] = Doc{ID: e.ID, Text: e.Text}
	}
	if err := CheckJudged(all, docs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	nonEnglish, noOverlap := 0, 0
	for _, q := range all {
		if seen[q.ID] {
			t.Errorf("qid %s is in both halves", q.ID)
		}
		seen[q.ID] = true
		if q.Language == "" || q.Kind == "" || q.TitleOverlap == nil {
			t.Errorf("query %s lacks lang, kind or title_overlap", q.ID)
			continue
		}
		switch q.Kind {
		case "need", "show", "person", "place", "time":
		default:
			t.Errorf("query %s: kind %q is not need, show, person, place or time", q.ID, q.Kind)
		}
		if q.Language != "en" {
			nonEnglish++
		}
		var titles []string
		for id, g := range q.Relevant {
			if g >= 1 {
				titles = append(titles, title[id])
			}
		}
		want := TitleOverlap(q.Text, titles)
		if math.Abs(*q.TitleOverlap-want) > 0.0006 { // recorded to three decimals
			t.Errorf("query %s: title_overlap %v, the relevant titles give %.4f", q.ID, *q.TitleOverlap, want)
		}
		if want == 0 {
			noOverlap++
		}
	}
	if nonEnglish < 15 {
		t.Errorf("%d non-English queries, want at least 15", nonEnglish)
	}
	if 2*noOverlap <= len(all) {
		t.Errorf("%d of %d queries share no content word with their relevant titles, want most", noOverlap, len(all))
	}
	// Each batch of queries was split on its own, so that adding a batch left every earlier
	// query in its half: p001-p199 (written 2026-12-05), p200-p299 (2026-12-07).
	for _, b := range []struct{ from, to string }{{"p000", "p200"}, {"p200", "p300"}} {
		inBatch := func(qs []Query) []Query {
			var out []Query
			for _, q := range qs {
				if q.ID >= b.from && q.ID < b.to {
					out = append(out, q)
				}
			}
			return out
		}
		d, te := inBatch(dev), inBatch(test)
		first, second := SplitStratified(append(append([]Query{}, d...), te...))
		if !sameIDs(first, d) || !sameIDs(second, te) {
			t.Errorf("queries %s-%s: the files are not the stratified split of their union: dev %d/%d, test %d/%d queries", b.from, b.to, len(d), len(first), len(te), len(second))
		}
	}
	for _, q := range all {
		if q.ID < "p000" || q.ID >= "p300" {
			t.Errorf("qid %s is in no batch", q.ID)
		}
	}
}

// sameIDs reports whether a and b hold the same qids, in any order.
func sameIDs(a, b []Query) bool {
	if len(a) != len(b) {
		return false
	}
	ids := map[string]bool{}
	for _, q := range a {
		ids[q.ID] = true
	}
	for _, q := range b {
		if !ids[q.ID] {
			return false
		}
	}
	return true
}
