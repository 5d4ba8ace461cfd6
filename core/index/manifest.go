package index

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/podsearch/podsearch/core/bm25"
)

// ManifestName is the file naming an index directory's segments and tombstones.
const ManifestName = "manifest.json"

// manifest is the JSON document that makes a folder an index. It is replaced atomically
// (temporary file + rename) on every change, so a reader sees the old or the new state.
type manifest struct {
	Format      string `json:"format"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	ModelID     string `json:"model_id"`
	Model       string `json:"model"`
	// Config is the factory string of the model's shape (ParseConfig, Config.String): what
	// `podsearch index --config` takes to train a model of the same shape again. Indexes
	// written before it have none.
	Config   string        `json:"config,omitempty"`
	Shards   int           `json:"shards"`
	NextSeq  int           `json:"next_seq"`
	Segments []segmentInfo `json:"segments"`
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
	// Analyzer is the keyword analyzer the segments' BM25 terms were made with
	// (bm25.AnalyzerName); an index made with other rules is refused (ErrVersion) and must be
	// rebuilt. Indexes written before it have none (a light suffix stemmer).
	Analyzer string `json:"analyzer,omitempty"`
	// Fusion is the hybrid fusion chosen on the corpus's judged queries (SetFusion); nil for
	// DefaultFusion and DefaultDenseWeight.
	Fusion *FusionSetting `json:"fusion,omitempty"`

	sum [sha256.Size]byte // of the manifest's bytes as read or written: the index version
}

type segmentInfo struct {
	File     string `json:"file"`
	Shard    int    `json:"shard"`
	Seq      int    `json:"seq"`
	Episodes int    `json:"episodes"`
}

const manifestFormat = "podsearch-index"

func segName(shard, seq int) string { return fmt.Sprintf("shard-%03d-%06d.seg", shard, seq) }

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
	if m.Analyzer != bm25.AnalyzerName {
		was := m.Analyzer
		if was == "" {
			was = "light suffix stemming (before 2026-12-06)"
		}
		return nil, fmt.Errorf("%w: keyword terms made by analyzer %q, this build analyzes with %q: rebuild the index (podsearch index)", ErrVersion, was, bm25.AnalyzerName)
	}
	if m.Shards <= 0 || len(m.Segments) == 0 {
		return nil, fmt.Errorf("%w: manifest lists %d shards and %d segments", ErrCorrupt, m.Shards, len(m.Segments))
	}
	if op := m.Operating; op != nil && (op.NProbe < 0 || op.NProbe > 1<<20 || op.RerankFactor < 0 || op.RerankFactor > maxRerankFactor) {
		return nil, fmt.Errorf("%w: manifest operating point %+v is out of range", ErrCorrupt, *op)
	}
	if f := m.Fusion; f != nil {
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("%w: manifest fusion: %v", ErrCorrupt, err)
		}
	}
	for _, s := range m.Segments {
		if s.Shard < 0 || s.Shard >= m.Shards || s.Seq <= 0 || s.Seq >= m.NextSeq || filepath.Base(s.File) != s.File {
			return nil, fmt.Errorf("%w: manifest segment %+v is out of range", ErrCorrupt, s)
		}
	}
	return &m, nil
}

// Check reports whether dir holds an index this build can open, from its manifest alone
// (format, version, keyword analyzer, segment list): nil, or an error wrapping
// fs.ErrNotExist, ErrCorrupt or ErrVersion (an index to rebuild).
func Check(dir string) error {
	_, err := readManifest(dir)
	return err
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

// ManifestFingerprint is the encoder fingerprint the index in dir was built with, read from
// its manifest (a serving node gives it to its encoder pool before opening the shards).
func ManifestFingerprint(dir string) (string, error) {
	man, err := readManifest(dir)
	if err != nil {
		return "", fmt.Errorf("index folder %s: %w (build one with `podsearch index`)", dir, err)
	}
	return man.Fingerprint, nil
}
