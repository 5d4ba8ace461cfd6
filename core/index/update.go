package index

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/vec"
)

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
		ModelID: model.ID(), Model: model.String(), Config: model.Config().String(), Shards: shards, NextSeq: 1,
		Analyzer: bm25.AnalyzerName}
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
		if cur.Contains(id) {
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

// Contains reports whether the episode id is live in the searcher's snapshot.
func (s *Searcher) Contains(id string) bool {
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

// VectorsFile is the file of episode vectors an index folder keeps beside its segments
// (.fvecs: the build's in corpus order, then the episodes of each Update in order), for
// retraining and for `podsearch bench index --index DIR`.
const VectorsFile = "vectors.fvecs"

// UpdateOptions are the changes Update makes to an index folder, in this order.
type UpdateOptions struct {
	// Delete are episode ids to tombstone (Index.Delete; unknown ids are ignored).
	Delete []string
	// Add, when set, is called after the deletions with the index's vector width and returns
	// the episodes to add (Index.Add: an id already in the index is replaced), their vectors
	// (row-major) and the fingerprint of the model that made them, which must be the
	// index's (ErrWrongModel otherwise; "" skips the check).
	Add func(d int) (docs []Doc, vectors []float32, fingerprint string, err error)
	// Compact merges each shard's segments at the end, dropping deleted episodes
	// (Index.Compact).
	Compact bool
}

// Update applies the daily changes of o to the index in dir without a rebuild: deletions,
// then additions as delta segments (their vectors also appended to the folder's
// VectorsFile when it has one), then compaction, logging each step (log/slog).
func Update(dir string, o UpdateOptions) error {
	ix, err := Open(dir, "", OpenOptions{})
	if err != nil {
		return err
	}
	defer ix.Close()
	if len(o.Delete) > 0 {
		n, err := ix.Delete(o.Delete)
		if err != nil {
			return err
		}
		slog.Info("deleted", "episodes", n, "asked", len(o.Delete))
	}
	if o.Add != nil {
		model := ix.Model()
		docs, flat, fp, err := o.Add(model.D)
		if err != nil {
			return err
		}
		if want := model.Fingerprint; fp != "" && want != "" && fp != want {
			return fmt.Errorf("%w: the index was built with model %q, the encoder is %q (rebuild the index)", ErrWrongModel, want, fp)
		}
		if err := ix.Add(docs, flat); err != nil {
			return err
		}
		if err := appendVectors(filepath.Join(dir, VectorsFile), flat, model.D); err != nil {
			return fmt.Errorf("the episodes were added, but %s was not extended: %w", VectorsFile, err)
		}
		slog.Info("added", "episodes", len(docs), "segments", ix.Segments())
	}
	if o.Compact {
		if err := ix.Compact(); err != nil {
			return err
		}
		slog.Info("compacted", "segments", ix.Segments(), "episodes", ix.Len())
	}
	return nil
}

// appendVectors appends rows of width d to the .fvecs file at path when it exists (an index
// built from precomputed vectors elsewhere may have none); a file of another width is
// refused.
func appendVectors(path string, rows []float32, d int) error {
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Size()%int64(4+4*d) != 0 {
		return fmt.Errorf("%s is not a file of %d-d vectors (%d bytes)", path, d, st.Size())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if err := vec.WriteFvecs(f, rows, d); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
