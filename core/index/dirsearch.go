package index

import (
	"context"
	"errors"
)

// Search is Searcher().Search.
func (ix *Index) Search(ctx context.Context, query []float32, opts SearchOptions) ([]Hit, error) {
	s, err := ix.live()
	if err != nil {
		return nil, err
	}
	return s.Search(ctx, query, opts)
}

// SearchKeyword is Searcher().SearchKeyword.
func (ix *Index) SearchKeyword(text string, k int, filter *Filter) ([]Hit, error) {
	s, err := ix.live()
	if err != nil {
		return nil, err
	}
	return s.SearchKeyword(text, k, filter), nil
}

// SearchHybrid is Searcher().SearchHybrid.
func (ix *Index) SearchHybrid(ctx context.Context, query []float32, text string, opts HybridOptions) ([]Hit, error) {
	s, err := ix.live()
	if err != nil {
		return nil, err
	}
	return s.SearchHybrid(ctx, query, text, opts)
}

// errClosed is the error of a search on a closed Index.
var errClosed = errors.New("index: closed")

// live is the current Searcher, or errClosed after Close.
func (ix *Index) live() (*Searcher, error) {
	if s := ix.Searcher(); s != nil {
		return s, nil
	}
	return nil, errClosed
}
