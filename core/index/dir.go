package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/vec"
)

// ManifestName is the file naming an index directory's segments and tombstones.
const ManifestName = "manifest.json"

// manifest is the JSON document that makes a folder an index. It is replaced atomically
// (temporary file + rename) on every change, so a reader sees the old or the new state.
type manifest struct {
	Format      string        `json:"format"`
	Version     int           `json:"version"`
	Fingerprint string        `json:"fingerprint"`
	ModelID     string        `json:"model_id"`
	Model       string        `json:"model"`
	Shards      int           `json:"shards"`
	NextSeq     int           `json:"next_seq"`
	Segments    []segmentInfo `json:"segments"`
	// Deleted maps a deleted episode id to the sequence number of the newest segment at the
	// time of deletion: copies in segments up to that number are deleted, a later re-add is
	// not.
	Deleted map[string]int `json:"deleted,omitempty"`
	// BM25Stats names the file of the keyword statistics of all live episodes of every
	// shard (bm25.Stats), for nodes that serve some shards only (readBM25Stats).
	BM25Stats string `json:"bm25_stats,omitempty"`
	// Operating is the default search setting chosen at build time (SetOperatingPoint); nil
	// for nprobe 16 and re-rank factor 4.
	Operating *OperatingPoint `json:"operating_point,omitempty"`

	sum [sha256.Size]byte // of the manifest's bytes as read or written: the index version
}

type segmentInfo struct {
	File     string `json:"file"`
	Shard    int    `json:"shard"`
	Seq      int    `json:"seq"`
	Episodes int    `json:"episodes"`
}

const manifestFormat = "podsearch-index"

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

func segName(shard, seq int) string { return fmt.Sprintf("shard-%03d-%06d.seg", shard, seq) }

// Create writes a new index of docs and their vectors into dir (made if absent), in
// shards segments assigned by hash of episode id, encoded with model. An index already in
// dir is replaced.
func Create(dir string, model *Model, shards int, docs []Doc, vectors []float32) error {
	return CreateSpill(dir, model, shards, docs, vectors, nil)
}

// CreateSpill is Create with secondary list assignments (Model.Spill): extra[i] are the
// lists besides its own that docs[i] is also stored in; nil spills nothing.
func CreateSpill(dir string, model *Model, shards int, docs []Doc, vectors []float32, extra [][]int32) error {
	if shards <= 0 || shards > 1000 {
		return fmt.Errorf("index: %d shards, want 1..1000", shards)
	}
	if len(docs) == 0 {
		return errors.New("index: no episodes to index")
	}
	if len(vectors) != len(docs)*model.D {
		return fmt.Errorf("index: %d vector values for %d episodes of width %d", len(vectors), len(docs), model.D)
	}
	if extra != nil && len(extra) != len(docs) {
		return fmt.Errorf("index: %d spill assignments for %d episodes", len(extra), len(docs))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := readManifest(dir)
	man := manifest{Format: manifestFormat, Version: formatVersion, Fingerprint: model.Fingerprint,
		ModelID: model.ID(), Model: model.String(), Shards: shards, NextSeq: 1}
	if old != nil {
		man.NextSeq = old.NextSeq
	}
	seq := man.NextSeq
	man.NextSeq++
	parts, pvecs, pextra := split(docs, vectors, extra, model.D, shards)
	var segs []*Segment
	for sh := 0; sh < shards; sh++ {
		if len(parts[sh]) == 0 {
			continue
		}
		seg, err := BuildSegmentSpill(model, parts[sh], pvecs[sh], pextra[sh])
		if err != nil {
			return err
		}
		segs = append(segs, seg)
		name := segName(sh, seq)
		if err := WriteSegment(filepath.Join(dir, name), seg); err != nil {
			return err
		}
		man.Segments = append(man.Segments, segmentInfo{File: name, Shard: sh, Seq: seq, Episodes: seg.Len()})
	}
	if err := writeStats(dir, &man, segs); err != nil {
		return err
	}
	if err := writeManifest(dir, &man); err != nil {
		return err
	}
	if old != nil {
		removeUnlisted(dir, old, &man)
	}
	return nil
}

// writeStats writes the keyword statistics of the live episodes of segs (aligned with
// man.Segments, tombstones from man.Deleted) to a new file and names it in man.
func writeStats(dir string, man *manifest, segs []*Segment) error {
	views := viewsOf(man, segs)
	bv := make([]bm25.View, len(views))
	for i, v := range views {
		bv[i] = bm25View(v)
	}
	b, err := bm25.ComputeStats(bv).MarshalBinary()
	if err != nil {
		return err
	}
	man.BM25Stats = fmt.Sprintf("bm25-%06d.stats", man.NextSeq-1)
	return writeAtomic(filepath.Join(dir, man.BM25Stats), b)
}

// readBM25Stats reads the keyword statistics file named in an index manifest: what an Index
// over some shards scores with so that its keyword scores equal a whole-index search's. An empty name (an index written before the file existed)
// gives nil, nil: statistics are then counted over the searched shards.
func readBM25Stats(dir, name string) (*bm25.Stats, error) {
	if name == "" {
		return nil, nil
	}
	if filepath.Base(name) != name {
		return nil, fmt.Errorf("%w: bad statistics file name %q", ErrCorrupt, name)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	st, err := bm25.UnmarshalStats(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return st, nil
}

// split groups docs, vectors and spill assignments (nil: none) by shard, keeping their
// order.
func split(docs []Doc, vectors []float32, extra [][]int32, d, shards int) ([][]Doc, [][]float32, [][][]int32) {
	parts := make([][]Doc, shards)
	pvecs := make([][]float32, shards)
	pextra := make([][][]int32, shards)
	for i, doc := range docs {
		sh := ShardOf(doc.ID, shards)
		parts[sh] = append(parts[sh], doc)
		pvecs[sh] = append(pvecs[sh], vec.Row(vectors, d, i)...)
		if extra != nil {
			pextra[sh] = append(pextra[sh], extra[i])
		}
	}
	return parts, pvecs, pextra
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	m := manifest{sum: sha256.Sum256(b)}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestName, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("%w: %s is not a podsearch index manifest", ErrCorrupt, ManifestName)
	}
	if m.Version != formatVersion {
		return nil, fmt.Errorf("%w: manifest version %d, this build reads %d", ErrVersion, m.Version, formatVersion)
	}
	if m.Shards <= 0 || len(m.Segments) == 0 {
		return nil, fmt.Errorf("%w: manifest lists %d shards and %d segments", ErrCorrupt, m.Shards, len(m.Segments))
	}
	if op := m.Operating; op != nil && (op.NProbe < 0 || op.NProbe > 1<<20 || op.RerankFactor < 0 || op.RerankFactor > maxRerankFactor) {
		return nil, fmt.Errorf("%w: manifest operating point %+v is out of range", ErrCorrupt, *op)
	}
	for _, s := range m.Segments {
		if s.Shard < 0 || s.Shard >= m.Shards || s.Seq <= 0 || s.Seq >= m.NextSeq || filepath.Base(s.File) != s.File {
			return nil, fmt.Errorf("%w: manifest segment %+v is out of range", ErrCorrupt, s)
		}
	}
	return &m, nil
}

func writeManifest(dir string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	m.sum = sha256.Sum256(b)
	return writeAtomic(filepath.Join(dir, ManifestName), b)
}

// removeUnlisted deletes the segment files old listed that cur does not.
func removeUnlisted(dir string, old, cur *manifest) {
	keep := map[string]bool{cur.BM25Stats: true}
	for _, s := range cur.Segments {
		keep[s.File] = true
	}
	if old.BM25Stats != "" && !keep[old.BM25Stats] {
		if err := os.Remove(filepath.Join(dir, old.BM25Stats)); err != nil && !os.IsNotExist(err) {
			slog.Warn("index: removing replaced keyword statistics", "file", old.BM25Stats, "err", err)
		}
	}
	for _, s := range old.Segments {
		if !keep[s.File] {
			if err := os.Remove(filepath.Join(dir, s.File)); err != nil && !os.IsNotExist(err) {
				slog.Warn("index: removing a replaced segment", "file", s.File, "err", err)
			}
		}
	}
}

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

// ManifestFingerprint is the encoder fingerprint the index in dir was built with, read from
// its manifest (a serving node gives it to its encoder pool before opening the shards).
func ManifestFingerprint(dir string) (string, error) {
	man, err := readManifest(dir)
	if err != nil {
		return "", fmt.Errorf("index folder %s: %w (build one with `podsearch index`)", dir, err)
	}
	return man.Fingerprint, nil
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

// Search is Searcher().Search.
func (ix *Index) Search(ctx context.Context, query []float32, opts SearchOptions) ([]Hit, error) {
	s := ix.Searcher()
	if s == nil {
		return nil, errors.New("index: closed")
	}
	return s.Search(ctx, query, opts)
}

// Add encodes new episodes into delta segments (one per shard that receives episodes),
// searched with the others from now on. An id already in the index is replaced: its old
// copy gets a tombstone.
func (ix *Index) Add(docs []Doc, vectors []float32) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.subset {
		return errSubset
	}
	if len(docs) == 0 {
		return nil
	}
	model := ix.model()
	if len(vectors) != len(docs)*model.D {
		return fmt.Errorf("index: %d vector values for %d episodes of width %d", len(vectors), len(docs), model.D)
	}
	man := ix.man
	man.Segments = slices.Clone(man.Segments)
	man.Deleted = cloneMap(man.Deleted)
	seq := man.NextSeq
	man.NextSeq++
	for _, doc := range docs {
		for _, seg := range ix.segs {
			if _, ok := seg.byID[doc.ID]; ok {
				if man.Deleted == nil {
					man.Deleted = map[string]int{}
				}
				man.Deleted[doc.ID] = seq - 1
				break
			}
		}
	}
	parts, pvecs, _ := split(docs, vectors, nil, model.D, man.Shards)
	var added []*Segment
	var files []string
	cleanup := func() {
		for i, s := range added {
			s.Close()
			os.Remove(filepath.Join(ix.dir, files[i]))
		}
	}
	for sh, part := range parts {
		if len(part) == 0 {
			continue
		}
		seg, err := BuildSegment(model, part, pvecs[sh])
		if err != nil {
			cleanup()
			return err
		}
		name := segName(sh, seq)
		path := filepath.Join(ix.dir, name)
		if err := WriteSegment(path, seg); err != nil {
			cleanup()
			return err
		}
		mapped, err := OpenSegment(path, ix.fp)
		if err != nil {
			cleanup()
			return err
		}
		added = append(added, mapped)
		files = append(files, name)
		man.Segments = append(man.Segments, segmentInfo{File: name, Shard: sh, Seq: seq, Episodes: seg.Len()})
	}
	segs := append(slices.Clone(ix.segs), added...)
	if err := writeStats(ix.dir, &man, segs); err != nil {
		cleanup()
		return err
	}
	if err := writeManifest(ix.dir, &man); err != nil {
		cleanup()
		return err
	}
	old := ix.man
	ix.man = man
	ix.segs = segs
	removeUnlisted(ix.dir, &old, &man)
	return ix.refresh()
}

func cloneMap(m map[string]int) map[string]int {
	if m == nil {
		return nil
	}
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Delete tombstones the episodes with these ids; it returns how many live episodes it
// deleted (unknown ids are ignored).
func (ix *Index) Delete(ids []string) (int, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.subset {
		return 0, errSubset
	}
	man := ix.man
	man.Deleted = cloneMap(man.Deleted)
	if man.Deleted == nil {
		man.Deleted = map[string]int{}
	}
	top := man.NextSeq - 1
	cur := ix.Searcher()
	n := 0
	for _, id := range ids {
		if ix.liveIn(cur, id) {
			n++
			man.Deleted[id] = top
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := writeStats(ix.dir, &man, ix.segs); err != nil {
		return 0, err
	}
	if err := writeManifest(ix.dir, &man); err != nil {
		return 0, err
	}
	old := ix.man
	ix.man = man
	removeUnlisted(ix.dir, &old, &man)
	return n, ix.refresh()
}

func (ix *Index) liveIn(s *Searcher, id string) bool {
	for _, v := range s.views {
		if p, ok := v.Seg.byID[id]; ok && (v.Deleted == nil || !v.Deleted[p]) {
			return true
		}
	}
	return false
}

// Compact merges each shard's segments into one, dropping deleted episodes, and clears the
// tombstones. Codes are copied, not re-encoded: the result equals a fresh build of the live
// episodes with the same model.
func (ix *Index) Compact() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.subset {
		return errSubset
	}
	cur := ix.Searcher()
	man := ix.man
	man.Segments = nil
	man.Deleted = nil
	seq := man.NextSeq
	man.NextSeq++
	byShard := map[int][]int{}
	for i, si := range ix.man.Segments {
		byShard[si.Shard] = append(byShard[si.Shard], i)
	}
	shards := make([]int, 0, len(byShard))
	for sh := range byShard {
		shards = append(shards, sh)
	}
	sort.Ints(shards)
	var segs []*Segment
	for _, sh := range shards {
		idx := byShard[sh]
		in := make([]*Segment, len(idx))
		for j, i := range idx {
			in[j] = ix.segs[i]
		}
		merged, err := MergeSegments(in, func(j int, p uint32) bool {
			del := cur.views[idx[j]].Deleted
			return del == nil || !del[p]
		})
		if err != nil {
			return err
		}
		if merged.Len() == 0 {
			continue
		}
		name := segName(sh, seq)
		path := filepath.Join(ix.dir, name)
		if err := WriteSegment(path, merged); err != nil {
			return err
		}
		mapped, err := OpenSegment(path, ix.fp)
		if err != nil {
			return err
		}
		segs = append(segs, mapped)
		man.Segments = append(man.Segments, segmentInfo{File: name, Shard: sh, Seq: seq, Episodes: merged.Len()})
	}
	if len(segs) == 0 {
		return errors.New("index: compaction would leave no episodes; delete the folder instead")
	}
	if err := writeStats(ix.dir, &man, segs); err != nil {
		return err
	}
	if err := writeManifest(ix.dir, &man); err != nil {
		return err
	}
	old := ix.man
	ix.retired = append(ix.retired, ix.segs...)
	ix.man, ix.segs = man, segs
	removeUnlisted(ix.dir, &old, &man)
	return ix.refresh()
}

// SearchKeyword is Searcher().SearchKeyword.
func (ix *Index) SearchKeyword(text string, k int, filter *Filter) ([]Hit, error) {
	s := ix.Searcher()
	if s == nil {
		return nil, errors.New("index: closed")
	}
	return s.SearchKeyword(text, k, filter), nil
}

// SearchHybrid is Searcher().SearchHybrid.
func (ix *Index) SearchHybrid(ctx context.Context, query []float32, text string, opts HybridOptions) ([]Hit, error) {
	s := ix.Searcher()
	if s == nil {
		return nil, errors.New("index: closed")
	}
	return s.SearchHybrid(ctx, query, text, opts)
}
