// Package vcache keeps encoded vectors on disk, keyed by the model fingerprint and the exact
// texts, so repeated evaluations and training runs do not encode the same corpus again.
//
// One file per (fingerprint, text list): magic "PSVEC001", uint32 count, uint32 width, the
// fingerprint as 64 ASCII bytes (padded), float32 little-endian vectors, then a sha256 of all
// of it. A truncated or corrupted file is treated as a miss (and rewritten), never trusted.
package vcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
)

const magic = "PSVEC001"

const fpLen = 64

// Cache is a folder of vector files. The zero value (empty Dir) caches nothing.
type Cache struct {
	Dir string
}

// Key names the vectors of texts under the model fingerprint fp.
func Key(fp string, texts []string) string {
	h := sha256.New()
	h.Write([]byte(fp))
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(texts)))
	h.Write(n[:])
	for _, t := range texts {
		binary.LittleEndian.PutUint64(n[:], uint64(len(t)))
		h.Write(n[:])
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c Cache) path(key string) string { return filepath.Join(c.Dir, key[:2], key+".vec") }

// Get returns the cached vectors for key, or ok false on a miss (including an unreadable or
// damaged file).
func (c Cache) Get(key, fp string) (vs [][]float32, ok bool) {
	if c.Dir == "" {
		return nil, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			slog.Warn("vcache: unreadable entry, re-encoding", "key", key[:12], "err", err)
		}
		return nil, false
	}
	vs, err = Decode(b, fp)
	if err != nil {
		slog.Warn("vcache: damaged entry, re-encoding", "key", key[:12], "err", err)
		return nil, false
	}
	return vs, true
}

// Put stores vectors under key (atomically: temp file, then rename).
func (c Cache) Put(key, fp string, vs [][]float32) error {
	if c.Dir == "" {
		return nil
	}
	b, err := Encode(vs, fp)
	if err != nil {
		return err
	}
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".vec-*")
	if err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("vcache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vcache: %w", err)
	}
	return os.Rename(tmp.Name(), p)
}

// GetOrCompute returns the cached vectors of texts under fp, computing and storing them on a
// miss. It reports whether the cache answered.
func (c Cache) GetOrCompute(ctx context.Context, fp string, texts []string,
	compute func(ctx context.Context, texts []string) ([][]float32, error)) ([][]float32, bool, error) {
	key := Key(fp, texts)
	if vs, ok := c.Get(key, fp); ok && len(vs) == len(texts) {
		return vs, true, nil
	}
	vs, err := compute(ctx, texts)
	if err != nil {
		return nil, false, err
	}
	if len(vs) != len(texts) {
		return nil, false, fmt.Errorf("vcache: %d vectors for %d texts", len(vs), len(texts))
	}
	if err := c.Put(key, fp, vs); err != nil {
		slog.Warn("vcache: could not store vectors", "err", err)
	}
	return vs, false, nil
}

// Encode serialises vectors (all of one width) with the fingerprint.
func Encode(vs [][]float32, fp string) ([]byte, error) {
	if len(fp) > fpLen {
		return nil, fmt.Errorf("vcache: fingerprint longer than %d bytes", fpLen)
	}
	dim := 0
	if len(vs) > 0 {
		dim = len(vs[0])
	}
	var buf bytes.Buffer
	buf.Grow(len(magic) + 8 + fpLen + 4*len(vs)*dim + sha256.Size)
	buf.WriteString(magic)
	_ = binary.Write(&buf, binary.LittleEndian, [2]uint32{uint32(len(vs)), uint32(dim)})
	var f [fpLen]byte
	copy(f[:], fp)
	buf.Write(f[:])
	b := buf.Bytes()
	for i, v := range vs {
		if len(v) != dim {
			return nil, fmt.Errorf("vcache: vector %d has width %d, want %d", i, len(v), dim)
		}
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// Decode parses what Encode wrote, checking the checksum and that the fingerprint is fp.
func Decode(b []byte, fp string) ([][]float32, error) {
	head := len(magic) + 8 + fpLen
	if len(b) < head+sha256.Size || string(b[:len(magic)]) != magic {
		return nil, errors.New("vcache: not a vector file")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("vcache: checksum mismatch")
	}
	n := int(binary.LittleEndian.Uint32(b[len(magic):]))
	dim := int(binary.LittleEndian.Uint32(b[len(magic)+4:]))
	if got := string(bytes.TrimRight(b[len(magic)+8:head], "\x00")); got != fp {
		return nil, fmt.Errorf("vcache: vectors of model %q, want %q", got, fp)
	}
	if n > 0 && dim == 0 {
		return nil, errors.New("vcache: vectors of width 0")
	}
	if uint64(len(body)-head) != 4*uint64(n)*uint64(dim) {
		return nil, fmt.Errorf("vcache: %d bytes for %d vectors of width %d", len(body)-head, n, dim)
	}
	data := body[head:]
	flat := make([]float32, n*dim)
	for i := range flat {
		flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	vs := make([][]float32, n)
	for i := range vs {
		vs[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return vs, nil
}
