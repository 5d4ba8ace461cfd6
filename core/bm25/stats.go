package bm25

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"unicode/utf8"
)

// Stats are the corpus statistics BM25 scores with: the number of live documents, their
// total length and each term's document frequency. A node that serves some shards of a
// corpus scores with the whole corpus's Stats, so its scores equal those of a node serving
// every shard and rankings merged across nodes are exact.
type Stats struct {
	Docs     int
	TotalLen int64
	// DF maps a term (as Analyze makes it) to the number of live documents holding it.
	DF map[string]int
}

// ComputeStats returns the statistics of the live documents of views.
func ComputeStats(views []View) *Stats {
	st := &Stats{DF: map[string]int{}}
	for _, v := range views {
		n, t := v.liveStats()
		st.Docs += n
		st.TotalLen += t
		seg := v.Seg
		for i, term := range seg.terms {
			df := 0
			for _, d := range seg.docs[seg.offsets[i]:seg.offsets[i+1]] {
				if v.Deleted == nil || !v.Deleted(d) {
					df++
				}
			}
			if df > 0 {
				st.DF[term] += df
			}
		}
	}
	return st
}

// statsMagic opens a marshalled Stats of the current version (2: with a checksum);
// statsMagicV1 opened version 1, which had none and is refused (ErrStatsVersion).
const (
	statsMagic   = "BM25STA2"
	statsMagicV1 = "BM25STA1"
)

// statsHeader is the length of the fixed header: magic, documents, total length, terms.
const statsHeader = 28

// ErrStatsVersion is wrapped when a statistics blob has a format version this build does not
// read (version 1 had no checksum); its writer rewrites it in the current version.
var ErrStatsVersion = errors.New("bm25: unsupported statistics format version")

// ErrStatsChecksum is wrapped when a statistics blob's checksum does not match its bytes
// (the file was edited, truncated or damaged).
var ErrStatsChecksum = errors.New("bm25: statistics checksum mismatch")

// crcTable is CRC-32C (Castagnoli), as the index's segment files use.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary writes the statistics little-endian: magic, u64 documents, u64 total
// length, u32 term count, then per term (sorted): u16 length, bytes, u32 frequency, and
// last a u32 CRC-32C (Castagnoli) of every byte before it.
func (st *Stats) MarshalBinary() ([]byte, error) {
	terms := make([]string, 0, len(st.DF))
	for t := range st.DF {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	b := append([]byte(statsMagic), make([]byte, statsHeader-len(statsMagic))...)
	binary.LittleEndian.PutUint64(b[8:], uint64(st.Docs))
	binary.LittleEndian.PutUint64(b[16:], uint64(st.TotalLen))
	binary.LittleEndian.PutUint32(b[24:], uint32(len(terms)))
	for _, t := range terms {
		if len(t) > math.MaxUint16 {
			return nil, fmt.Errorf("bm25: term of %d bytes", len(t))
		}
		df := st.DF[t]
		if df <= 0 || df > st.Docs {
			return nil, fmt.Errorf("bm25: term %q has document frequency %d of %d documents", t, df, st.Docs)
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
		b = binary.LittleEndian.AppendUint32(b, uint32(df))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// UnmarshalStats reads what MarshalBinary wrote. Damaged, edited or truncated input is an
// error (ErrStatsChecksum when the checksum does not match), and so is a blob of another
// format version (ErrStatsVersion).
func UnmarshalStats(b []byte) (*Stats, error) {
	if len(b) >= len(statsMagicV1) && string(b[:len(statsMagicV1)]) == statsMagicV1 {
		return nil, fmt.Errorf("%w: version 1 (no checksum); rebuild the index (any `podsearch index` run rewrites the statistics)", ErrStatsVersion)
	}
	if len(b) < statsHeader+4 || string(b[:8]) != statsMagic {
		return nil, errors.New("bm25: not a statistics blob (bad magic or too short)")
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x over %d bytes", ErrStatsChecksum, want, got, len(body))
	}
	docs, total := binary.LittleEndian.Uint64(body[8:]), binary.LittleEndian.Uint64(body[16:])
	n := binary.LittleEndian.Uint32(body[24:])
	if docs > math.MaxInt32 || total > math.MaxInt64/2 || uint64(n) > uint64(len(body)-statsHeader)/7 {
		return nil, fmt.Errorf("bm25: implausible statistics: %d documents, length %d, %d terms in %d bytes", docs, total, n, len(b))
	}
	st := &Stats{Docs: int(docs), TotalLen: int64(total), DF: make(map[string]int, n)}
	r := body[statsHeader:]
	prev := ""
	for i := uint32(0); i < n; i++ {
		if len(r) < 2 {
			return nil, errors.New("bm25: statistics truncated")
		}
		l := int(binary.LittleEndian.Uint16(r))
		if len(r) < 2+l+4 {
			return nil, errors.New("bm25: statistics truncated")
		}
		t := string(r[2 : 2+l])
		df := binary.LittleEndian.Uint32(r[2+l:])
		if (i > 0 && t <= prev) || !utf8.ValidString(t) || df == 0 || uint64(df) > docs {
			return nil, fmt.Errorf("bm25: statistics term %d (%q, frequency %d) out of order or range", i, t, df)
		}
		st.DF[t] = int(df)
		prev = t
		r = r[2+l+4:]
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("bm25: %d bytes after the statistics", len(r))
	}
	return st, nil
}
