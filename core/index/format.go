package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	"github.com/podsearch/podsearch/core/tq"
)

// Segment file format, version 1 (docs/index-format.md has the full description).
//
// All integers and floats are little-endian. The file starts with a header:
//
//	offset  size  field
//	0       8     magic "PODSIDX\x00"
//	8       4     version (1)
//	12      4     section count S
//	16      64    model fingerprint: ASCII, zero-padded
//	80      32*S  section table, one entry per section:
//	                tag [4]byte, flags u32 (0), offset u64, length u64,
//	                crc32c u32 (Castagnoli, of the section's bytes), reserved u32 (0)
//	80+32*S 4     crc32c of the header bytes [0, 80+32*S)
//
// followed by the sections, each starting at a multiple of 64 bytes (zero padding between),
// in table order, so a memory-mapped file can be read in place as typed arrays.
const (
	magic          = "PODSIDX\x00"
	formatVersion  = 1
	fingerprintLen = 64
	headerFixed    = 80
	entrySize      = 32
	sectionAlign   = 64
)

// Section tags.
const (
	tagInfo   = "INFO" // shape: metric, d, nlist, M, bits, rerank bits, n, shows, languages (9 x u32)
	tagCoarse = "COAR" // coarse centroids, nlist*d f32
	tagPQ     = "PQCB" // PQ codebooks, d*2^bits f32
	tagSQ     = "SQPM" // re-rank quantizer: d f32 minima, then d f32 steps (when rerank bits > 0)
	tagLists  = "LIST" // list starts (nlist+1) u32, then for 4-bit codes block starts (nlist+1) u32
	tagCodes  = "CODE" // PQ codes: 8-bit row-major n*M, or 4-bit fast-scan blocks
	tagNorms  = "NORM" // L2 only: |reconstruction|^2 per episode, n f32
	tagSQC    = "SQCD" // re-rank codes, n*codeSize bytes (when rerank bits are 4 or 8, or 1: TQ)
	tagTQ     = "TQPM" // transform quantizer (rerank bits 1): tq.Quantizer.MarshalBinary
	tagVecs   = "VECS" // exact re-rank (rerank bits 32): n*d f32, the (normalised, for cosine) vectors
	tagAttr   = "ATTR" // n i64 dates (unix s, MinInt64 unknown), n u64 id hashes, n u32 show, n u16 language
	tagStrs   = "STRS" // string table: count u32, (count+1) u32 offsets, bytes
	tagBM25   = "BM25" // BM25 segment (bm25.Segment.MarshalBinary)
	tagSpill  = "SPIL" // spilled entries (only when present): spill starts (nlist+1) u32, then one episode number u32 per entry
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt is wrapped by errors about truncated or damaged index files.
	ErrCorrupt = errors.New("index: corrupt file")
	// ErrWrongModel is wrapped when a file was built for another encoder model.
	ErrWrongModel = errors.New("index: built for a different model")
	// ErrVersion is wrapped when a file has a format version this build cannot read.
	ErrVersion = errors.New("index: unsupported format version")
)

type section struct {
	tag  string
	data []byte
}

func (s *Segment) sections() ([]section, error) {
	m := s.model
	info := make([]byte, 0, 36)
	for _, v := range []int{int(m.Metric), m.D, m.NList, m.PQ.M, m.PQ.Bits, m.RerankBits(), s.n, len(s.showDict), len(s.langDict)} {
		info = binary.LittleEndian.AppendUint32(info, uint32(v))
	}
	secs := []section{{tagInfo, info}, {tagCoarse, f32Bytes(m.Coarse)}, {tagPQ, f32Bytes(m.PQ.Centroids)}}
	if m.SQ != nil {
		secs = append(secs, section{tagSQ, append(f32Bytes(m.SQ.Min), f32Bytes(m.SQ.Scale)...)})
	}
	if m.TQ != nil {
		b, err := m.TQ.MarshalBinary()
		if err != nil {
			return nil, err
		}
		secs = append(secs, section{tagTQ, b})
	}
	lists := u32Bytes(s.listStart)
	if m.PQ.Bits == 4 {
		lists = append(lists, u32Bytes(s.blockStart)...)
	}
	secs = append(secs, section{tagLists, lists}, section{tagCodes, s.codes})
	if s.spillStart != nil {
		secs = append(secs, section{tagSpill, append(u32Bytes(s.spillStart), u32Bytes(s.spillDoc)...)})
	}
	if m.Metric == L2 {
		secs = append(secs, section{tagNorms, f32Bytes(s.norms)})
	}
	if m.rerankCodeSize() > 0 {
		secs = append(secs, section{tagSQC, s.sqCodes})
	}
	if m.Exact {
		secs = append(secs, section{tagVecs, f32Bytes(s.vectors)})
	}
	attr := make([]byte, 0, s.n*22)
	for _, v := range s.dates {
		attr = binary.LittleEndian.AppendUint64(attr, uint64(v))
	}
	for _, v := range s.hashes {
		attr = binary.LittleEndian.AppendUint64(attr, v)
	}
	for _, v := range s.shows {
		attr = binary.LittleEndian.AppendUint32(attr, v)
	}
	for _, v := range s.langs {
		attr = binary.LittleEndian.AppendUint16(attr, v)
	}
	var strs []string
	strs = append(strs, s.ids...)
	strs = append(strs, s.titles...)
	strs = append(strs, s.showTitles...)
	strs = append(strs, s.showDict...)
	strs = append(strs, s.langDict...)
	table, err := encodeStrings(strs)
	if err != nil {
		return nil, err
	}
	bm, err := s.bm.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append(secs, section{tagAttr, attr}, section{tagStrs, table}, section{tagBM25, bm}), nil
}

func encodeStrings(strs []string) ([]byte, error) {
	total := 0
	for _, s := range strs {
		total += len(s)
	}
	if total > math.MaxUint32 || len(strs) >= math.MaxUint32 {
		return nil, errors.New("index: string table over 4 GiB")
	}
	out := make([]byte, 0, 8+4*len(strs)+total)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(strs)))
	off := uint32(0)
	out = binary.LittleEndian.AppendUint32(out, 0)
	for _, s := range strs {
		off += uint32(len(s))
		out = binary.LittleEndian.AppendUint32(out, off)
	}
	for _, s := range strs {
		out = append(out, s...)
	}
	return out, nil
}

func decodeStrings(b []byte) ([]string, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: string table of %d bytes", ErrCorrupt, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-8)/4 {
		return nil, fmt.Errorf("%w: string table claims %d strings in %d bytes", ErrCorrupt, n, len(b))
	}
	offs := b[4 : 8+4*n]
	data := b[8+4*n:]
	out := make([]string, n)
	prev := binary.LittleEndian.Uint32(offs)
	if prev != 0 {
		return nil, fmt.Errorf("%w: string table does not start at 0", ErrCorrupt)
	}
	for i := 0; i < n; i++ {
		next := binary.LittleEndian.Uint32(offs[4*(i+1):])
		if next < prev || int(next) > len(data) {
			return nil, fmt.Errorf("%w: string %d out of range", ErrCorrupt, i)
		}
		out[i] = string(data[prev:next])
		prev = next
	}
	if int(prev) != len(data) {
		return nil, fmt.Errorf("%w: %d bytes after the last string", ErrCorrupt, len(data)-int(prev))
	}
	return out, nil
}

// MarshalSegment encodes seg as a segment file.
func MarshalSegment(seg *Segment) ([]byte, error) {
	secs, err := seg.sections()
	if err != nil {
		return nil, err
	}
	fp := seg.model.Fingerprint
	if len(fp) > fingerprintLen {
		return nil, fmt.Errorf("index: fingerprint longer than %d bytes", fingerprintLen)
	}
	hdrLen := headerFixed + entrySize*len(secs) + 4
	off := alignUp(hdrLen)
	var table bytes.Buffer
	offsets := make([]int, len(secs))
	for i, s := range secs {
		offsets[i] = off
		var e [entrySize]byte
		copy(e[0:4], s.tag)
		binary.LittleEndian.PutUint64(e[8:], uint64(off))
		binary.LittleEndian.PutUint64(e[16:], uint64(len(s.data)))
		binary.LittleEndian.PutUint32(e[24:], crc32.Checksum(s.data, crcTable))
		table.Write(e[:])
		off = alignUp(off + len(s.data))
	}
	out := make([]byte, off)
	copy(out, magic)
	binary.LittleEndian.PutUint32(out[8:], formatVersion)
	binary.LittleEndian.PutUint32(out[12:], uint32(len(secs)))
	copy(out[16:16+fingerprintLen], fp)
	copy(out[headerFixed:], table.Bytes())
	hc := hdrLen - 4
	binary.LittleEndian.PutUint32(out[hc:], crc32.Checksum(out[:hc], crcTable))
	for i, s := range secs {
		copy(out[offsets[i]:], s.data)
	}
	// Trim the padding after the last section.
	last := len(secs) - 1
	return out[:offsets[last]+len(secs[last].data)], nil
}

func alignUp(n int) int { return (n + sectionAlign - 1) / sectionAlign * sectionAlign }

// WriteSegment writes seg to path atomically: a temporary file in the same folder, synced,
// then renamed over path.
func WriteSegment(path string, seg *Segment) error {
	data, err := MarshalSegment(seg)
	if err != nil {
		return err
	}
	return writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable where supported
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// OpenSegment memory-maps a segment file, verifies its header and every section checksum,
// and checks its structure. When fingerprint is not empty, a file built for another model
// is refused with ErrWrongModel.
func OpenSegment(path, fingerprint string) (*Segment, error) {
	mf, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	seg, err := parseSegment(mf.data, fingerprint)
	if err != nil {
		mf.close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seg.file = mf
	return seg, nil
}

// UnmarshalSegment parses a segment file held in memory (data must stay unchanged while
// the segment is used: arrays point into it).
func UnmarshalSegment(data []byte, fingerprint string) (*Segment, error) {
	return parseSegment(data, fingerprint)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func parseSegment(data []byte, fingerprint string) (*Segment, error) {
	if len(data) < headerFixed+4 {
		return nil, corrupt("%d bytes is shorter than a header (truncated?)", len(data))
	}
	if string(data[:8]) != magic {
		return nil, corrupt("bad magic %q: not a podsearch index segment", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrVersion, v, formatVersion)
	}
	ns := int(binary.LittleEndian.Uint32(data[12:]))
	hdrLen := headerFixed + entrySize*ns + 4
	if ns > 64 || hdrLen > len(data) {
		return nil, corrupt("header claims %d sections in %d bytes (truncated?)", ns, len(data))
	}
	if got, want := crc32.Checksum(data[:hdrLen-4], crcTable), binary.LittleEndian.Uint32(data[hdrLen-4:]); got != want {
		return nil, corrupt("header checksum %08x, stored %08x", got, want)
	}
	fp := string(bytes.TrimRight(data[16:16+fingerprintLen], "\x00"))
	if fingerprint != "" && fp != fingerprint {
		return nil, fmt.Errorf("%w: file fingerprint %q, encoder %q (rebuild the index with this model)", ErrWrongModel, fp, fingerprint)
	}
	secs := map[string][]byte{}
	prevEnd := uint64(hdrLen)
	for i := 0; i < ns; i++ {
		e := data[headerFixed+entrySize*i : headerFixed+entrySize*(i+1)]
		tag := string(e[0:4])
		off, ln := binary.LittleEndian.Uint64(e[8:]), binary.LittleEndian.Uint64(e[16:])
		if off%sectionAlign != 0 || off < prevEnd || ln > uint64(len(data)) || off > uint64(len(data))-ln {
			return nil, corrupt("section %s at %d+%d lies outside the %d-byte file (truncated?)", tag, off, ln, len(data))
		}
		prevEnd = off + ln
		b := data[off : off+ln]
		if got, want := crc32.Checksum(b, crcTable), binary.LittleEndian.Uint32(e[24:]); got != want {
			return nil, corrupt("section %s checksum %08x, stored %08x", tag, got, want)
		}
		if _, dup := secs[tag]; dup {
			return nil, corrupt("section %s appears twice", tag)
		}
		secs[tag] = b
	}
	return decodeSections(secs, fp)
}

func decodeSections(secs map[string][]byte, fp string) (*Segment, error) {
	need := func(tag string, size int) ([]byte, error) {
		b, ok := secs[tag]
		if !ok {
			return nil, corrupt("section %s is missing", tag)
		}
		if size >= 0 && len(b) != size {
			return nil, corrupt("section %s has %d bytes, want %d", tag, len(b), size)
		}
		return b, nil
	}
	info, err := need(tagInfo, 36)
	if err != nil {
		return nil, err
	}
	var v [9]int
	for i := range v {
		v[i] = int(binary.LittleEndian.Uint32(info[4*i:]))
	}
	metric, d, nlist, M, bits, rbits, n, nshows, nlangs := Metric(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
	const limit = 1 << 30
	if !metric.valid() || d <= 0 || d > 1<<16 || nlist <= 0 || nlist > limit || n > limit || nshows > limit || nlangs > math.MaxUint16+1 {
		return nil, corrupt("implausible shape: metric %d, d %d, nlist %d, n %d", v[0], d, nlist, n)
	}
	if (bits != 4 && bits != 8) || M <= 0 || d%M != 0 || (rbits != 0 && rbits != 4 && rbits != 8 && rbits != exactBits && rbits != tqBits) {
		return nil, corrupt("implausible quantizers: M %d, bits %d, re-rank bits %d", M, bits, rbits)
	}
	coarseB, err := need(tagCoarse, nlist*d*4)
	if err != nil {
		return nil, err
	}
	pqB, err := need(tagPQ, d<<bits*4)
	if err != nil {
		return nil, err
	}
	model := &Model{Metric: metric, D: d, NList: nlist, Coarse: viewF32(coarseB), Fingerprint: fp}
	if model.PQ, err = pq.New(d, M, bits, viewF32(pqB)); err != nil {
		return nil, corrupt("%v", err)
	}
	cs := 0
	model.Exact = rbits == exactBits
	if rbits == tqBits {
		b, err := need(tagTQ, -1)
		if err != nil {
			return nil, err
		}
		model.TQ = new(tq.Quantizer)
		if err := model.TQ.UnmarshalBinary(b); err != nil {
			return nil, corrupt("%v", err)
		}
		if model.TQ.D != d {
			return nil, corrupt("transform quantizer of d=%d for %d-d vectors", model.TQ.D, d)
		}
		cs = model.TQ.CodeSize()
	}
	if rbits == 4 || rbits == 8 {
		b, err := need(tagSQ, 8*d)
		if err != nil {
			return nil, err
		}
		f := viewF32(b)
		if model.SQ, err = sq.New(d, rbits, f[:d], f[d:]); err != nil {
			return nil, corrupt("%v", err)
		}
		cs = model.SQ.CodeSize()
	}
	s := &Segment{model: model, n: n}
	listLen := (nlist + 1) * 4
	if bits == 4 {
		listLen *= 2
	}
	lb, err := need(tagLists, listLen)
	if err != nil {
		return nil, err
	}
	s.listStart = viewU32(lb[:(nlist+1)*4])
	if s.listStart[0] != 0 || int(s.listStart[nlist]) != n {
		return nil, corrupt("lists cover %d..%d, want 0..%d", s.listStart[0], s.listStart[nlist], n)
	}
	for l := 0; l < nlist; l++ {
		if s.listStart[l+1] < s.listStart[l] {
			return nil, corrupt("list %d ends before it starts", l)
		}
	}
	if b, ok := secs[tagSpill]; ok {
		if bits != 4 || metric == L2 || len(b) < (nlist+1)*4 || len(b)%4 != 0 {
			return nil, corrupt("spill section of %d bytes for a %d-bit %s segment", len(b), bits, metric)
		}
		s.spillStart, s.spillDoc = viewU32(b[:(nlist+1)*4]), viewU32(b[(nlist+1)*4:])
		if s.spillStart[0] != 0 || int(s.spillStart[nlist]) != len(s.spillDoc) {
			return nil, corrupt("spilled entries cover %d..%d, want 0..%d", s.spillStart[0], s.spillStart[nlist], len(s.spillDoc))
		}
		for l := 0; l < nlist; l++ {
			if s.spillStart[l+1] < s.spillStart[l] {
				return nil, corrupt("spilled entries of list %d end before they start", l)
			}
		}
		for _, p := range s.spillDoc {
			if int(p) >= n {
				return nil, corrupt("a spilled entry names episode %d of %d", p, n)
			}
		}
		if s.spillDoc == nil {
			s.spillDoc = []uint32{}
		}
	}
	codeLen := n * M
	if bits == 4 {
		s.blockStart = viewU32(lb[(nlist+1)*4:])
		if s.blockStart[0] != 0 {
			return nil, corrupt("blocks do not start at 0")
		}
		for l := 0; l < nlist; l++ {
			cnt := s.listEntries(l)
			if int(s.blockStart[l+1])-int(s.blockStart[l]) != (cnt+pq.BlockSize-1)/pq.BlockSize {
				return nil, corrupt("list %d has %d episodes but %d blocks", l, cnt, int(s.blockStart[l+1])-int(s.blockStart[l]))
			}
		}
		codeLen = int(s.blockStart[nlist]) * M * 16
	}
	if s.codes, err = need(tagCodes, codeLen); err != nil {
		return nil, err
	}
	if metric == L2 {
		b, err := need(tagNorms, 4*n)
		if err != nil {
			return nil, err
		}
		s.norms = viewF32(b)
		if s.norms == nil {
			s.norms = []float32{}
		}
	}
	if cs > 0 {
		if s.sqCodes, err = need(tagSQC, n*cs); err != nil {
			return nil, err
		}
	}
	if model.Exact {
		b, err := need(tagVecs, 4*n*d)
		if err != nil {
			return nil, err
		}
		if s.vectors = viewF32(b); s.vectors == nil {
			s.vectors = []float32{}
		}
	}
	ab, err := need(tagAttr, n*22)
	if err != nil {
		return nil, err
	}
	s.dates = viewI64(ab[:8*n])
	s.hashes = viewU64(ab[8*n : 16*n])
	s.shows = viewU32(ab[16*n : 20*n])
	s.langs = viewU16(ab[20*n : 22*n])
	sb, err := need(tagStrs, -1)
	if err != nil {
		return nil, err
	}
	strs, err := decodeStrings(sb)
	if err != nil {
		return nil, err
	}
	if len(strs) != 3*n+nshows+nlangs {
		return nil, corrupt("%d strings, want %d", len(strs), 3*n+nshows+nlangs)
	}
	s.ids, s.titles, s.showTitles = strs[:n], strs[n:2*n], strs[2*n:3*n]
	s.showDict, s.langDict = strs[3*n:3*n+nshows], strs[3*n+nshows:]
	s.showIndex = make(map[string]uint32, nshows)
	for i, id := range s.showDict {
		s.showIndex[id] = uint32(i)
	}
	s.langIndex = make(map[string]uint16, nlangs)
	for i, l := range s.langDict {
		s.langIndex[l] = uint16(i)
	}
	if len(s.showIndex) != nshows || len(s.langIndex) != nlangs {
		return nil, corrupt("show or language dictionary holds duplicates")
	}
	for p := 0; p < n; p++ {
		if int(s.shows[p]) >= nshows || int(s.langs[p]) >= nlangs {
			return nil, corrupt("episode %d names show %d of %d or language %d of %d", p, s.shows[p], nshows, s.langs[p], nlangs)
		}
		if s.hashes[p] != HashID(s.ids[p]) {
			return nil, corrupt("episode %d's id hash does not match its id", p)
		}
	}
	s.buildIDIndex()
	if len(s.byID) != n {
		return nil, corrupt("episode ids are not unique")
	}
	bb, err := need(tagBM25, -1)
	if err != nil {
		return nil, err
	}
	if s.bm, err = bm25.Unmarshal(bb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if s.bm.NumDocs() != n {
		return nil, corrupt("keyword index holds %d episodes, want %d", s.bm.NumDocs(), n)
	}
	return s, nil
}
