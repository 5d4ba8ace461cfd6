package evaluate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/podsearch/podsearch/core/adapter"
)

// PoolSystems ranks every query with the pool command's systems, each to depth: BM25, dense
// base, hybrid base (min-max convex fusion, dense weight weight) and, given an adapter, dense
// and hybrid tuned (exact search). Documents and queries are encoded through enc. It returns
// the systems in that order and each one's letter in the pool's output (B, D, H, T, h).
func PoolSystems(ctx context.Context, enc Encoder, docs []Doc, qs []Query, ad *adapter.Adapter, depth int, weight float64) ([]System, []string, error) {
	dtexts := make([]string, len(docs))
	for i, d := range docs {
		dtexts[i] = d.Text
	}
	qtexts := make([]string, len(qs))
	for i, q := range qs {
		qtexts[i] = q.Text
	}
	dv, err := enc.Encode(ctx, "corpus", dtexts)
	if err != nil {
		return nil, nil, err
	}
	qv, err := enc.Encode(ctx, "queries", qtexts)
	if err != nil {
		return nil, nil, err
	}
	kw := BM25(docs, qs)
	systems := []System{{Name: "bm25", Ranked: RankSparse(kw, len(docs), depth)}}
	letters := []string{"B"}
	add := func(name, dl, hl string, q, d [][]float32) error {
		dense, err := Search(q, d, depth)
		if err != nil {
			return err
		}
		hybrid, err := Hybrid(q, d, kw, weight, depth)
		if err != nil {
			return err
		}
		systems = append(systems, System{Name: "dense " + name, Ranked: dense}, System{Name: "hybrid " + name, Ranked: hybrid})
		letters = append(letters, dl, hl)
		return nil
	}
	if err := add(Base, "D", "H", qv, dv); err != nil {
		return nil, nil, err
	}
	if ad != nil {
		tq, err := ad.ApplyAll(qv, false)
		if err != nil {
			return nil, nil, err
		}
		td, err := ad.ApplyAll(dv, true)
		if err != nil {
			return nil, nil, err
		}
		if err := add(Tuned, "T", "h", tq, td); err != nil {
			return nil, nil, err
		}
	}
	return systems, letters, nil
}

// SetTitleOverlaps records each judged query's TitleOverlap with the titles of its relevant
// documents (grade >= 1) among docs; every query needs a language and a kind (the strata of
// SplitStratified). name names the queries' file in errors.
func SetTitleOverlaps(qs []Query, docs []Doc, name string) error {
	title := make(map[string]string, len(docs))
	for _, d := range docs {
		title[d.ID] = d.Title
	}
	for i, q := range qs {
		if q.Language == "" || q.Kind == "" {
			return fmt.Errorf("%s: query %s needs a lang and a kind", name, q.ID)
		}
		var titles []string
		for id, g := range q.Relevant {
			if g >= 1 {
				titles = append(titles, title[id])
			}
		}
		o := TitleOverlap(q.Text, titles)
		qs[i].TitleOverlap = &o
	}
	return nil
}

// SplitSummary describes queries whose TitleOverlap is set (SetTitleOverlaps): how many, how
// many share no content word with their relevant titles, the mean overlap, and the count per
// language and kind.
func SplitSummary(qs []Query) string {
	zero, sum := 0, 0.0
	by := map[string]int{}
	for _, q := range qs {
		if *q.TitleOverlap == 0 {
			zero++
		}
		sum += *q.TitleOverlap
		by["lang="+q.Language]++
		by["kind="+q.Kind]++
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, by[k])
	}
	return fmt.Sprintf("%d queries, %d with no title overlap, mean overlap %.3f; %s", len(qs), zero, sum/float64(max(1, len(qs))), strings.Join(parts, " "))
}
