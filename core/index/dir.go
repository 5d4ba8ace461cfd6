package index

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/podsearch/podsearch/core/bm25"
)

// Index is an index folder: N shards, each a base segment plus delta segments from Add,
// tombstones from Delete, all searched together. Searches are safe for concurrent use with
// each other and with Add, Delete and Compact.
type Index struct {
	dir string
	fp  string

	mu       sync.Mutex // serialises writers
	man      manifest
	segs     []*Segment // aligned with man.Segments
	searcher *Searcher
	retired  []*Segment // replaced by compaction; unmapped at Close
	kernels  kernelSet  // one per segment, from OpenOptions.Backend
	// stats are the whole index's keyword statistics when only some shards are open (nil
	// when all are: the searcher counts them itself).
	stats *bm25.Stats
	// subset is set when only some shards are open: the Index is then read-only.
	subset bool
	rmu    sync.RWMutex
}

// OpenOptions are the settings of Open.
type OpenOptions struct {
	// Backend runs the scan and re-rank loops of every segment; nil runs them natively in
	// Go. wasm/scan's Backend runs them in a WebAssembly guest with the same results.
	Backend Backend
	// Shards, when not empty, opens only these shards (a node serving part of a corpus split
	// over several nodes). Tombstones apply as in a whole index, keyword scores use the
	// whole index's statistics (readBM25Stats) so that rankings merged across nodes equal a
	// single node's, and the Index is read-only (Add, Delete and Compact refuse).
	Shards []int
}

// ShardOf is the shard an episode id belongs to among n shards.
func ShardOf(id string, n int) int { return int(HashID(id) % uint64(n)) }

// keepShards narrows the Index to the segments of shards and loads the whole index's
// keyword statistics (without them, an older index, keyword scores count over the open
// shards only, with a warning).
func (ix *Index) keepShards(shards []int) error {
	want := map[int]bool{}
	for _, sh := range shards {
		if sh < 0 || sh >= ix.man.Shards {
			return fmt.Errorf("index: %s has shards 0..%d; shard %d does not exist", ix.dir, ix.man.Shards-1, sh)
		}
		want[sh] = true
	}
	var keep []segmentInfo
	for _, si := range ix.man.Segments {
		if want[si.Shard] {
			keep = append(keep, si)
		}
	}
	if len(keep) == 0 {
		return fmt.Errorf("index: %s has no segments for shards %v", ix.dir, shards)
	}
	ix.man.Segments, ix.subset = keep, true
	st, err := readBM25Stats(ix.dir, ix.man.BM25Stats)
	if err != nil || st == nil {
		slog.Warn("index: whole-index keyword statistics unavailable; counting them over the open shards",
			"dir", ix.dir, "err", err)
	}
	ix.stats = st
	return nil
}

// errSubset refuses writes to an Index opened with some shards only.
var errSubset = errors.New("index: opened with some shards only (OpenOptions.Shards): read-only")

// Open opens the index in dir, memory-mapping and verifying every segment. A non-empty
// fingerprint must equal the one the index was built with (ErrWrongModel otherwise); the
// zero OpenOptions open every shard with the native Go kernel.
func Open(dir, fingerprint string, opts OpenOptions) (*Index, error) {
	man, err := readManifest(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("index: %s holds no index (no %s): build one with `podsearch index`", dir, ManifestName)
		}
		return nil, err
	}
	if fingerprint != "" && man.Fingerprint != fingerprint {
		return nil, fmt.Errorf("%w: %s was built with model %q, the encoder is %q (rebuild the index)", ErrWrongModel, dir, man.Fingerprint, fingerprint)
	}
	ix := &Index{dir: dir, fp: man.Fingerprint, man: *man, kernels: kernelSet{backend: opts.Backend}}
	if len(opts.Shards) > 0 {
		if err := ix.keepShards(opts.Shards); err != nil {
			return nil, err
		}
	}
	for _, si := range ix.man.Segments {
		seg, err := OpenSegment(filepath.Join(dir, si.File), man.Fingerprint)
		if err != nil {
			ix.closeAll()
			return nil, err
		}
		ix.segs = append(ix.segs, seg)
		if seg.Len() != si.Episodes || seg.model.ID() != man.ModelID {
			ix.closeAll()
			return nil, fmt.Errorf("%w: %s does not match the manifest (episodes %d vs %d, model %s vs %s)",
				ErrCorrupt, si.File, seg.Len(), si.Episodes, seg.model.ID(), man.ModelID)
		}
	}
	if err := ix.refresh(); err != nil {
		ix.closeAll()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) closeAll() {
	if err := ix.kernels.closeAll(); err != nil {
		slog.Warn("index: closing scan kernels", "err", err)
	}
	for _, s := range ix.segs {
		s.Close()
	}
	for _, s := range ix.retired {
		s.Close()
	}
	ix.segs, ix.retired = nil, nil
}

// Close unmaps every segment. Searches must have finished: the Index, its Searchers and
// their segments must not be used after Close.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.rmu.Lock()
	defer ix.rmu.Unlock()
	ix.closeAll()
	ix.searcher = nil
	return nil
}

// viewsOf returns the views of segs (aligned with man.Segments) with man's tombstones.
func viewsOf(man *manifest, segs []*Segment) []View {
	views := make([]View, len(segs))
	for i, seg := range segs {
		si := man.Segments[i]
		views[i] = View{Seg: seg, Shard: si.Shard}
		for id, upTo := range man.Deleted {
			if si.Seq > upTo {
				continue
			}
			if p, ok := seg.byID[id]; ok {
				if views[i].Deleted == nil {
					views[i].Deleted = make([]bool, seg.Len())
				}
				views[i].Deleted[p] = true
			}
		}
	}
	return views
}

// refresh rebuilds the searcher from the segments and tombstones.
func (ix *Index) refresh() error {
	views := viewsOf(&ix.man, ix.segs)
	for i, seg := range ix.segs {
		views[i].Kernel = ix.kernels.get(seg)
	}
	s, err := NewSearcherWithStats(views, ix.stats)
	if err != nil {
		return err
	}
	if op := ix.man.Operating; op != nil && op.NProbe > 0 && op.RerankFactor > 0 {
		s.op = *op
	}
	if f := ix.man.Fusion; f != nil {
		s.fusion = *f
	}
	ix.rmu.Lock()
	ix.searcher = s
	ix.rmu.Unlock()
	return nil
}

// Searcher returns a snapshot of the index for searching; later changes do not affect it.
func (ix *Index) Searcher() *Searcher {
	ix.rmu.RLock()
	defer ix.rmu.RUnlock()
	return ix.searcher
}

// Model is the index's model.
func (ix *Index) Model() *Model {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.model()
}

func (ix *Index) model() *Model { return ix.segs[0].model }

// Shards is the number of shards.
func (ix *Index) Shards() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.man.Shards
}

// Version names the index state the Index holds: a hash of its manifest, which changes with
// every build, add, delete and compaction (12 hex digits).
func (ix *Index) Version() string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return hex.EncodeToString(ix.man.sum[:6])
}

// Segments is the number of segment files.
func (ix *Index) Segments() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.man.Segments)
}

// Len is the number of live episodes.
func (ix *Index) Len() int { return ix.Searcher().Len() }
