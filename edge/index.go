package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/index"
)

// IndexOptions configures a Searcher over a core/index folder (IVF-PQ + re-rank, BM25 and
// hybrid fusion, filters inside the scan).
type IndexOptions struct {
	// Dir is the index folder (`podsearch index -o DIR`).
	Dir string
	// Fingerprint returns the model the queries are embedded with; the index must have been
	// built with it. Nil (or "") accepts the index's own (a keyword-only node).
	Fingerprint func() string
	// NProbe and RerankFactor tune dense search (index defaults when 0).
	NProbe, RerankFactor int
	// Fusion ("convex" or "rrf") and DenseWeight tune hybrid search (index defaults when zero).
	Fusion      string
	DenseWeight float64
	// Descriptions maps episode ids to their plain-text descriptions for snippets; the index
	// does not store text. Nil leaves snippets empty.
	Descriptions map[string]string
}

// IndexOpener returns an Opener that opens the index folder on every (re)load; reloads see
// whatever the folder's manifest names then.
func IndexOpener(opts IndexOptions) Opener {
	return func(ctx context.Context) (Searcher, error) {
		fp := ""
		if opts.Fingerprint != nil {
			fp = opts.Fingerprint()
		}
		version, err := manifestVersion(opts.Dir)
		if err != nil {
			return nil, err
		}
		ix, err := index.Open(opts.Dir, fp)
		if err != nil {
			return nil, err
		}
		return &indexSearcher{ix: ix, opts: opts, version: version, fp: ix.Model().Fingerprint}, nil
	}
}

// manifestVersion names an index state by a hash of its manifest, which changes with
// every build, add, delete and compaction.
func manifestVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, index.ManifestName))
	if err != nil {
		return "", fmt.Errorf("index folder %s: %w (build one with `podsearch index`)", dir, err)
	}
	sum := sha256.Sum256(b)
	return filepath.Base(filepath.Clean(dir)) + "@" + hex.EncodeToString(sum[:6]), nil
}

type indexSearcher struct {
	ix      *index.Index
	opts    IndexOptions
	version string
	fp      string
}

func (s *indexSearcher) Search(ctx context.Context, q ShardQuery) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sr := s.ix.Searcher()
	if sr == nil {
		return nil, fmt.Errorf("index %s is closed", s.version)
	}
	var flt *index.Filter
	if f := q.Filters; f != (Filters{}) {
		flt = &index.Filter{From: f.From, To: f.To}
		if f.Language != "" {
			flt.Languages = []string{f.Language}
		}
		if f.ShowID != "" {
			flt.ShowIDs = []string{f.ShowID}
		}
	}
	dense := index.SearchOptions{K: q.K, NProbe: s.opts.NProbe, RerankFactor: s.opts.RerankFactor, Filter: flt}
	var hits []index.Hit
	var err error
	switch q.Mode {
	case ModeDense:
		hits, err = sr.Search(q.Vector, dense)
	case ModeKeyword:
		hits = sr.SearchKeyword(q.Keywords, q.K, flt)
	default:
		hits, err = sr.SearchHybrid(q.Vector, q.Keywords, index.HybridOptions{
			Dense: dense, Fusion: index.Fusion(s.opts.Fusion), DenseWeight: s.opts.DenseWeight,
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		// Clone: the index's strings live in memory-mapped files that a reload unmaps.
		out[i] = Hit{
			ID: strings.Clone(h.ID), Title: strings.Clone(h.Title), ShowTitle: strings.Clone(h.ShowTitle),
			Score: float64(h.Score), Text: s.opts.Descriptions[h.ID],
		}
		if !h.Date.IsZero() {
			out[i].Date = h.Date.UTC().Format(time.DateOnly)
		}
	}
	return out, nil
}

func (s *indexSearcher) IndexVersion() string { return s.version }
func (s *indexSearcher) Fingerprint() string  { return s.fp }
func (s *indexSearcher) Close() error         { return s.ix.Close() }
