// Package vcache keeps encoded vectors on disk, keyed by the model fingerprint and the text,
// so repeated evaluations and training runs never encode the same text twice: a test split,
// the training episodes and the whole corpus share the vectors of the episodes they have in
// common.
//
// One append-only file per fingerprint (DIR/FINGERPRINT.veclog): a header (magic "PSVLOG01",
// uint32 width, the fingerprint padded to 64 bytes), then records of sha256(text) (32
// bytes), the float32 little-endian vector, and a CRC-32 of the record. Loading stops at the
// first short or damaged record, and the file is cut back to the last good one before new
// records are appended, so an interrupted run loses only its unsaved tail. One process
// writes a cache folder at a time.
package vcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
)

const (
	magic   = "PSVLOG01"
	fpLen   = 64
	hdrLen  = len(magic) + 4 + fpLen
	hashLen = sha256.Size
)

// Cache is a folder of vector logs. The zero value (empty Dir) caches nothing.
type Cache struct {
	Dir string

	mu   sync.Mutex
	logs map[string]*vlog
}

// vlog is one fingerprint's vectors in memory plus where its file ends.
type vlog struct {
	dim  int
	vecs map[[hashLen]byte][]float32
	path string
	good int64 // length of the valid prefix of the file
}

func (c *Cache) open(fp string) (*vlog, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.logs[fp]; ok {
		return l, nil
	}
	if len(fp) == 0 || len(fp) > fpLen || filepath.Base(fp) != fp {
		return nil, fmt.Errorf("vcache: unusable fingerprint %q", fp)
	}
	l := &vlog{vecs: map[[hashLen]byte][]float32{}, path: filepath.Join(c.Dir, fp+".veclog")}
	b, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("vcache: %w", err)
	default:
		if err := l.parse(b, fp); err != nil {
			slog.Warn("vcache: unusable cache file, starting it again", "path", l.path, "err", err)
			l.vecs, l.good, l.dim = map[[hashLen]byte][]float32{}, 0, 0
		}
	}
	if c.logs == nil {
		c.logs = map[string]*vlog{}
	}
	c.logs[fp] = l
	return l, nil
}

// parse reads a log file's valid records.
func (l *vlog) parse(b []byte, fp string) error {
	if len(b) < hdrLen || string(b[:len(magic)]) != magic {
		return errors.New("not a vector log")
	}
	l.dim = int(binary.LittleEndian.Uint32(b[len(magic):]))
	if got := string(bytes.TrimRight(b[len(magic)+4:hdrLen], "\x00")); got != fp {
		return fmt.Errorf("vectors of model %q, want %q", got, fp)
	}
	if l.dim < 1 || l.dim > 1<<16 {
		return fmt.Errorf("width %d out of range", l.dim)
	}
	rec := hashLen + 4*l.dim + 4
	off := hdrLen
	for ; off+rec <= len(b); off += rec {
		r := b[off : off+rec]
		if crc32.ChecksumIEEE(r[:rec-4]) != binary.LittleEndian.Uint32(r[rec-4:]) {
			break
		}
		var h [hashLen]byte
		copy(h[:], r)
		v := make([]float32, l.dim)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(r[hashLen+4*i:]))
		}
		l.vecs[h] = v
	}
	if off < len(b) {
		slog.Warn("vcache: ignoring a damaged or partial tail", "path", l.path, "bytes", len(b)-off)
	}
	l.good = int64(off)
	return nil
}

// append writes new vectors to the log file.
func (l *vlog) append(fp string, hs [][hashLen]byte, vs [][]float32) error {
	if len(vs) == 0 {
		return nil
	}
	if l.dim == 0 {
		l.dim = len(vs[0])
	}
	rec := hashLen + 4*l.dim + 4
	buf := make([]byte, 0, hdrLen+len(vs)*rec)
	if l.good == 0 {
		buf = append(buf, magic...)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(l.dim))
		var f [fpLen]byte
		copy(f[:], fp)
		buf = append(buf, f[:]...)
	}
	for i, v := range vs {
		if len(v) != l.dim {
			return fmt.Errorf("vcache: vector of width %d, cache holds %d", len(v), l.dim)
		}
		start := len(buf)
		buf = append(buf, hs[i][:]...)
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
		buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf[start:]))
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(l.good); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	if _, err := f.Seek(l.good, io.SeekStart); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	l.good += int64(len(buf))
	for i, v := range vs {
		l.vecs[hs[i]] = v
	}
	return f.Close()
}

// GetOrCompute returns one vector per text under the model fingerprint fp: cached vectors
// where the cache has them, and compute's for the rest (each distinct missing text once),
// which are then stored. It reports how many texts the cache answered.
func (c *Cache) GetOrCompute(ctx context.Context, fp string, texts []string,
	compute func(ctx context.Context, texts []string) ([][]float32, error)) ([][]float32, int, error) {
	if c.Dir == "" {
		vs, err := compute(ctx, texts)
		if err == nil && len(vs) != len(texts) {
			err = fmt.Errorf("vcache: %d vectors for %d texts", len(vs), len(texts))
		}
		return vs, 0, err
	}
	l, err := c.open(fp)
	if err != nil {
		return nil, 0, err
	}
	hashes := make([][hashLen]byte, len(texts))
	var missing []string
	var missingHash [][hashLen]byte
	queued := map[[hashLen]byte]bool{}
	for i, t := range texts {
		hashes[i] = sha256.Sum256([]byte(t))
		if _, ok := l.vecs[hashes[i]]; !ok && !queued[hashes[i]] {
			queued[hashes[i]] = true
			missing = append(missing, t)
			missingHash = append(missingHash, hashes[i])
		}
	}
	if len(missing) > 0 {
		vs, err := compute(ctx, missing)
		if err != nil {
			return nil, 0, err
		}
		if len(vs) != len(missing) {
			return nil, 0, fmt.Errorf("vcache: %d vectors for %d texts", len(vs), len(missing))
		}
		if err := l.append(fp, missingHash, vs); err != nil {
			return nil, 0, err
		}
	}
	out := make([][]float32, len(texts))
	hits := 0
	for i, h := range hashes {
		out[i] = l.vecs[h]
		if !queued[h] {
			hits++
		}
	}
	return out, hits, nil
}
