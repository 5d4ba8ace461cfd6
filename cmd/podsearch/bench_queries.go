package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/podsearch/podsearch/core/indexbuild"
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
	set, err := encodeQueries(ctx, indexbuild.EvenSample(texts, limit), adapterPath, wantFP)
	if err != nil {
		return nil, err
	}
	set.label = strings.Join(names, "+")
	fmt.Fprintf(os.Stderr, "queries: %d texts from %s\n", set.n, set.label)
	return set, nil
}

// encodeQueries encodes query texts as a queryTextSet (indexbuild.EncodeQueries, progress
// bars on stderr).
func encodeQueries(ctx context.Context, texts []string, adapterPath, wantFP string) (*queryTextSet, error) {
	vectors, d, err := indexbuild.EncodeQueries(ctx, texts, adapterPath, wantFP, os.Stderr)
	if err != nil {
		return nil, err
	}
	return &queryTextSet{vectors: vectors, d: d, n: len(vectors) / d}, nil
}
