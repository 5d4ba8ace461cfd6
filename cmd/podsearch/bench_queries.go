package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/vec"
)

// Text queries for the index benchmark: listeners' queries are short texts whose vectors lie
// off the episode distribution, so the index is measured with text queries encoded by the
// serving model, not with held-out episode vectors.

// defaultQueryTextFiles are the query sets `bench index --index DIR` uses when no query flag
// is given: the TREC 2020 podcast topics (when ../shared is present) and the hand-written
// queries of testdata.
func defaultQueryTextFiles() []string {
	var files []string
	if trec := filepath.Join("..", "shared", "data", "queries", "trec_podcasts_topics.jsonl"); fileExists(trec) {
		files = append(files, trec)
	}
	if hw := filepath.Join("testdata", "handwritten_queries.jsonl"); fileExists(hw) {
		files = append(files, hw)
	}
	return files
}

// queryTextSet is text queries encoded as an index benchmark or a build reads them.
type queryTextSet struct {
	vectors []float32 // row-major
	d, n    int
	label   string // names the files, e.g. "trec_podcasts_topics+handwritten_queries"
}

// encodeQueryTexts reads the queries of files (JSON Lines with a query field, or one query
// per plain line), keeps at most limit of them (0: all; an even sample) and encodes them
// (encodeQueries).
func encodeQueryTexts(ctx context.Context, files []string, limit int, adapterPath, wantFP string) (*queryTextSet, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no query files (give --query-texts FILE)", errUsage)
	}
	var texts, names []string
	for _, f := range files {
		ts, err := readBenchQueries(f, "query")
		if err != nil {
			return nil, err
		}
		texts = append(texts, ts...)
		names = append(names, strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".jsonl"))
	}
	set, err := encodeQueries(ctx, evenSample(texts, limit), adapterPath, wantFP)
	if err != nil {
		return nil, err
	}
	set.label = strings.Join(names, "+")
	fmt.Fprintf(os.Stderr, "queries: %d texts from %s\n", set.n, set.label)
	return set, nil
}

// evenSample returns at most limit of items, evenly spaced (all when limit <= 0).
func evenSample[T any](items []T, limit int) []T {
	if limit <= 0 || len(items) <= limit {
		return items
	}
	step := float64(len(items)) / float64(limit)
	out := make([]T, limit)
	for i := range out {
		out[i] = items[int(float64(i)*step)]
	}
	return out
}

// encodeQueries encodes query texts with the encoder (vectors cached per model under
// $PODSEARCH_HOME/vectors), through the query adapter at adapterPath when given, as unit
// vectors. wantFP, when set, is the fingerprint the vectors must be made for (an index's): a
// mismatch is an error.
func encodeQueries(ctx context.Context, texts []string, adapterPath, wantFP string) (*queryTextSet, error) {
	if len(texts) == 0 {
		return nil, errors.New("no query texts to encode")
	}
	enc, err := newVecEncoder("cpu", filepath.Join(assets.Home(), "vectors"), 32)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	fp := enc.fingerprint()
	var ad *adapter.Adapter
	if adapterPath != "" {
		if ad, err = adapter.LoadFor(adapterPath, fp); err != nil {
			return nil, err
		}
		fp = ad.Fingerprint()
	}
	if wantFP != "" && fp != wantFP {
		return nil, fmt.Errorf("query vectors would come from model %s but the index was built for %s (give the --adapter it was built with)", short12(fp), short12(wantFP))
	}
	vs, err := enc.encode(ctx, "queries", texts)
	if err != nil {
		return nil, err
	}
	if ad != nil {
		if vs, err = ad.ApplyAll(vs, false); err != nil {
			return nil, err
		}
	}
	set := &queryTextSet{d: len(vs[0]), n: len(vs)}
	set.vectors = make([]float32, 0, set.n*set.d)
	for _, v := range vs {
		set.vectors = append(set.vectors, v...)
	}
	for i := 0; i < set.n; i++ {
		vec.Normalize(vec.Row(set.vectors, set.d, i))
	}
	return set, nil
}
