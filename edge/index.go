package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
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
		version, err := manifestVersion(opts.Dir)
		if err != nil {
			return nil, err
		}
		if len(opts.Shards) > 0 {
			sr, err := openShards(opts.Dir, fp, opts.Shards, opts.Backend)
			if err != nil {
				return nil, err
			}
			sr.opts, sr.version = opts, version
			return sr, nil
		}
		ix, err := index.OpenWith(opts.Dir, fp, index.OpenOptions{Backend: opts.Backend})
		if err != nil {
			return nil, err
		}
		return &indexSearcher{searcher: ix.Searcher, closeFn: ix.Close, opts: opts, version: version,
			fp: ix.Model().Fingerprint}, nil
	}
}

// manifestView is the part of an index manifest that openShards reads (the format is in
// docs/index-format.md).
type manifestView struct {
	Fingerprint string `json:"fingerprint"`
	Shards      int    `json:"shards"`
	Segments    []struct {
		File  string `json:"file"`
		Shard int    `json:"shard"`
	} `json:"segments"`
	Deleted   map[string]int `json:"deleted"`
	BM25Stats string         `json:"bm25_stats"`
}

// openShards opens only the segments of the given shards. core/index opens whole folders,
// so this reads the manifest itself and applies tombstones by dropping deleted ids from
// over-fetched results (tombstones are few between compactions).
func openShards(dir, fp string, shards []int, backend index.Backend) (*indexSearcher, error) {
	b, err := os.ReadFile(filepath.Join(dir, index.ManifestName))
	if err != nil {
		return nil, err
	}
	var man manifestView
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("index %s: bad manifest: %w", dir, err)
	}
	if fp != "" && man.Fingerprint != fp {
		return nil, fmt.Errorf("%w: %s was built with model %q, the encoder is %q (rebuild the index)", index.ErrWrongModel, dir, man.Fingerprint, fp)
	}
	want := map[int]bool{}
	for _, sh := range shards {
		if sh < 0 || sh >= man.Shards {
			return nil, fmt.Errorf("index %s has shards 0..%d; shard %d does not exist", dir, man.Shards-1, sh)
		}
		want[sh] = true
	}
	var views []index.View
	var segs []*index.Segment
	closeKernels := func() error { return nil }
	closeAll := func() error {
		err := closeKernels()
		for _, s := range segs {
			s.Close()
		}
		return err
	}
	for _, si := range man.Segments {
		if !want[si.Shard] {
			continue
		}
		if filepath.Base(si.File) != si.File {
			closeAll()
			return nil, fmt.Errorf("index %s: bad segment name %q", dir, si.File)
		}
		seg, err := index.OpenSegment(filepath.Join(dir, si.File), man.Fingerprint)
		if err != nil {
			closeAll()
			return nil, err
		}
		segs = append(segs, seg)
		views = append(views, index.View{Seg: seg, Shard: si.Shard})
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("index %s has no segments for shards %v", dir, shards)
	}
	// A tombstone covers the copies in segments up to its sequence number; an id re-added
	// later also has a newer copy, which search hits cannot tell apart from the old one. So
	// every tombstoned id is dropped: a deleted episode never comes back, a re-added one is
	// missing until the next compaction.
	deleted := map[string]bool{}
	for id := range man.Deleted {
		if want[index.ShardOf(id, man.Shards)] {
			deleted[id] = true
		}
	}
	if closeKernels, err = index.AttachKernels(views, backend); err != nil {
		closeKernels = func() error { return nil }
		closeAll()
		return nil, err
	}
	// Keyword scores use the whole index's statistics, so that rankings merged with the
	// peers' equal a single node's. Without the file (an older index, or one replaced while
	// this reload read it) they are counted over these shards: close, not equal.
	stats, err := index.ReadBM25Stats(dir, man.BM25Stats)
	if err != nil {
		slog.Warn("edge: keyword statistics of the whole index unavailable; counting them over this node's shards", "dir", dir, "err", err)
		stats = nil
	}
	sr, err := index.NewSearcherWithStats(views, stats)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &indexSearcher{searcher: func() *index.Searcher { return sr }, closeFn: closeAll,
		fp: man.Fingerprint, deleted: deleted}, nil
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
	searcher func() *index.Searcher
	closeFn  func() error
	opts     IndexOptions
	version  string
	fp       string
	deleted  map[string]bool // tombstoned ids to drop (shard subsets only)
}

func (s *indexSearcher) Search(ctx context.Context, q ShardQuery) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sr := s.searcher()
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
	if len(s.deleted) > 0 {
		k += min(len(s.deleted), 1000)
	}
	dense := index.SearchOptions{K: k, NProbe: s.opts.NProbe, RerankFactor: s.opts.RerankFactor, Filter: flt}
	var hits []index.Hit
	var err error
	switch q.Mode {
	case ModeDense:
		hits, err = sr.SearchContext(ctx, q.Vector, dense)
	case ModeKeyword:
		hits = sr.SearchKeyword(q.Keywords, k, flt)
	default:
		hits, err = sr.SearchHybridContext(ctx, q.Vector, q.Keywords, index.HybridOptions{
			Dense: dense, Fusion: index.Fusion(s.opts.Fusion), DenseWeight: s.opts.DenseWeight,
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Hit, 0, min(len(hits), q.K))
	for _, h := range hits {
		if len(out) == q.K {
			break
		}
		if s.deleted[h.ID] {
			continue
		}
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

func (s *indexSearcher) IndexVersion() string { return s.version }
func (s *indexSearcher) Fingerprint() string  { return s.fp }
func (s *indexSearcher) Close() error         { return s.closeFn() }

// IndexFingerprint is the model fingerprint an index folder was built with, read from its
// manifest; serve-edge gives it to the encoder pool so members of another model count as
// down.
func IndexFingerprint(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, index.ManifestName))
	if err != nil {
		return "", fmt.Errorf("index folder %s: %w (build one with `podsearch index`)", dir, err)
	}
	var man manifestView
	if err := json.Unmarshal(b, &man); err != nil {
		return "", fmt.Errorf("index %s: bad manifest: %w", dir, err)
	}
	return man.Fingerprint, nil
}
