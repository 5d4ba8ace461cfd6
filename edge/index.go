package edge

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/vec"
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
	// Fusion ("zscore", "convex" or "rrf") and DenseWeight tune hybrid search (index defaults
	// when zero: the fusion recorded in the manifest, else index.DefaultFusion at
	// index.DefaultDenseWeight).
	Fusion      string
	DenseWeight float64
	// Shards lists the shards this node serves; empty serves them all. A corpus split over
	// several nodes gives each its shards and names the others as Config.Peers.
	Shards []int
	// Backend runs the scan and re-rank loops of the shards: wasm/scan's Backend runs them
	// in WebAssembly guests (the edge's default in serve-edge), nil natively in Go. The hits
	// are the same either way.
	Backend index.Backend
	// Descriptions maps episode ids to their plain-text descriptions for snippets (the
	// corpus's cleaned "description"); the index does not store text. Nil leaves snippets
	// empty.
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
		var ix *index.Index
		// Opening reads (checksums) the mapped files: one truncated meanwhile must not
		// crash the process either.
		err := guardMapped(func() (err error) {
			ix, err = index.Open(opts.Dir, fp, index.OpenOptions{Backend: opts.Backend, Shards: opts.Shards})
			return err
		})
		if err != nil {
			return nil, err
		}
		// The version of the state opened, not of a manifest read before or after it.
		version := filepath.Base(filepath.Clean(opts.Dir)) + "@" + ix.Version()
		op := ix.Searcher().OperatingPoint()
		nprobe, rerank := op.NProbe, op.RerankFactor
		if opts.NProbe > 0 {
			nprobe = opts.NProbe
		}
		if opts.RerankFactor > 0 {
			rerank = opts.RerankFactor
		}
		fusion := ix.Searcher().Fusion()
		fusionFrom := fusion.Source
		if fusionFrom == "" {
			fusionFrom = "default"
		}
		slog.Info("index opened", "version", version, "config", ix.Config(), "episodes", ix.Len(),
			"bytes_per_vector", ix.BytesPerVector(), "nprobe", nprobe, "rerank_factor", rerank,
			"operating_point_recall", op.Recall, "operating_point_target", op.Target,
			"fusion", fusion.Fusion, "dense_weight", fusion.DenseWeight, "fusion_chosen_on", fusionFrom,
			"half_precision_query_matrices", vec.HalfKernel)
		return &indexSearcher{ix: ix, opts: opts, version: version, fp: ix.Model().Fingerprint}, nil
	}
}

type indexSearcher struct {
	ix      *index.Index
	opts    IndexOptions
	version string
	fp      string
}

// Search reads the memory-mapped segments under guardMapped: a file truncated or
// rewritten under the node gives an error wrapping ErrShardsUnreadable, not a crash.
func (s *indexSearcher) Search(ctx context.Context, q ShardQuery) (out []Hit, err error) {
	err = guardMapped(func() error {
		out, err = s.search(ctx, q)
		return err
	})
	return out, err
}

func (s *indexSearcher) search(ctx context.Context, q ShardQuery) ([]Hit, error) {
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
	k := q.K
	dense := index.SearchOptions{K: k, NProbe: s.opts.NProbe, RerankFactor: s.opts.RerankFactor, Filter: flt}
	var hits []index.Hit
	var err error
	switch q.Mode {
	case ModeDense:
		hits, err = sr.Search(ctx, q.Vector, dense)
	case ModeKeyword:
		hits = sr.SearchKeyword(q.Keywords, k, flt)
	default:
		hits, err = sr.SearchHybrid(ctx, q.Vector, q.Keywords, index.HybridOptions{
			Dense: dense, Fusion: index.Fusion(s.opts.Fusion), DenseWeight: s.opts.DenseWeight,
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Hit, 0, len(hits))
	for _, h := range hits {
		// Clone: the index's strings live in memory-mapped files that a reload unmaps.
		hit := Hit{
			ID: strings.Clone(h.ID), Title: strings.Clone(h.Title), ShowTitle: strings.Clone(h.ShowTitle),
			Score: h.Score, Text: s.opts.Descriptions[h.ID],
		}
		if !h.Date.IsZero() {
			hit.Date = h.Date.UTC().Format(time.DateOnly)
		}
		out = append(out, hit)
	}
	return out, nil
}

// Fusion is the hybrid fusion the index records (index.Searcher.Fusion): what a node that
// fans out fuses its peers' rankings with unless its Config says otherwise.
func (s *indexSearcher) Fusion() index.FusionSetting { return s.ix.Searcher().Fusion() }

func (s *indexSearcher) IndexVersion() string { return s.version }
func (s *indexSearcher) Fingerprint() string  { return s.fp }
func (s *indexSearcher) Close() error         { return s.ix.Close() }

// IndexFingerprint is the model fingerprint an index folder was built with, read from its
// manifest; serve-edge gives it to the encoder pool so members of another model count as
// down.
func IndexFingerprint(dir string) (string, error) { return index.ManifestFingerprint(dir) }
