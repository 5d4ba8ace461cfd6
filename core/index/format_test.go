package index

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func buildTestSegment(t testing.TB, cfg Config) (*Segment, []Doc, []float32) {
	t.Helper()
	docs, vecs := loadEpisodes(t)
	cfg.Iters, cfg.Seed, cfg.Fingerprint = 5, 1, "test-fingerprint"
	m, err := Train(vecs, testDim, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := BuildSegment(m, docs, vecs)
	if err != nil {
		t.Fatal(err)
	}
	return seg, docs, vecs
}

var formatConfigs = []Config{
	{Metric: Cosine, NList: 8, Bits: 4, M: 16, Rerank: RerankSQ8},
	{Metric: L2, NList: 4, Bits: 8, M: 8, Rerank: RerankSQ4},
	{Metric: InnerProduct, NList: 4, Bits: 4, M: 8, Rerank: RerankNone},
	{Metric: L2, NList: 4, Bits: 4, M: 8, Rerank: RerankFlat},
	{Metric: Cosine, NList: 4, Bits: 4, M: 16, Rerank: RerankTQ, RerankBytes: 24},
	{Metric: L2, NList: 4, Bits: 8, M: 8, Rerank: RerankTQ, RerankBytes: 20},
}

func searchIDs(t testing.TB, s *Searcher, q []float32, opts SearchOptions) []Hit {
	t.Helper()
	hits, err := s.Search(context.Background(), q, opts)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestSegmentRoundTripAndCorruption writes segments of every layout, reads them back (same
// results), then damages one byte inside each section, the header, and the length, and
// expects a clear refusal every time.
func TestSegmentRoundTripAndCorruption(t *testing.T) {
	for _, cfg := range formatConfigs {
		seg, _, vecs := buildTestSegment(t, cfg)
		data, err := MarshalSegment(seg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSegment(data, "test-fingerprint")
		if err != nil {
			t.Fatalf("%s: %v", seg.model, err)
		}
		s1, _ := NewSearcher([]View{{Seg: seg}})
		s2, _ := NewSearcher([]View{{Seg: back}})
		for qi := 0; qi < 20; qi++ {
			q := vecs[qi*testDim : (qi+1)*testDim]
			opts := SearchOptions{K: 10, NProbe: 2}
			if a, b := searchIDs(t, s1, q, opts), searchIDs(t, s2, q, opts); !slices.Equal(a, b) {
				t.Fatalf("%s: results differ after a round trip", seg.model)
			}
		}
		if again, err := MarshalSegment(back); err != nil || !slices.Equal(again, data) {
			t.Fatalf("%s: re-encoding differs (%v)", seg.model, err)
		}

		ns := int(binary.LittleEndian.Uint32(data[12:]))
		tags := map[string]bool{}
		for i := 0; i < ns; i++ {
			e := data[headerFixed+entrySize*i:]
			tag := string(e[:4])
			off, ln := binary.LittleEndian.Uint64(e[8:]), binary.LittleEndian.Uint64(e[16:])
			if ln == 0 {
				continue
			}
			tags[tag] = true
			for _, at := range []uint64{off, off + ln/2, off + ln - 1} {
				bad := slices.Clone(data)
				bad[at] ^= 0x40
				_, err := UnmarshalSegment(bad, "")
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: flipped byte %d of section %s: got %v, want ErrCorrupt", seg.model, at-off, tag, err)
				}
			}
		}
		for _, want := range []string{tagInfo, tagCoarse, tagPQ, tagLists, tagCodes, tagAttr, tagStrs, tagBM25} {
			if !tags[want] {
				t.Errorf("%s: section %s missing from the file", seg.model, want)
			}
		}
		for _, at := range []int{0, 12, 20, headerFixed + 9, headerFixed + entrySize*ns} {
			bad := slices.Clone(data)
			bad[at] ^= 0x01
			if _, err := UnmarshalSegment(bad, ""); err == nil {
				t.Fatalf("%s: flipped header byte %d accepted", seg.model, at)
			}
		}
		for _, n := range []int{0, 10, headerFixed + 3, len(data) / 2, len(data) - 1} {
			if _, err := UnmarshalSegment(data[:n], ""); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: truncated to %d bytes: got %v, want ErrCorrupt", seg.model, n, err)
			}
		}
		if _, err := UnmarshalSegment(data, "another-model"); !errors.Is(err, ErrWrongModel) {
			t.Fatalf("%s: wrong fingerprint: got %v, want ErrWrongModel", seg.model, err)
		}
		bad := slices.Clone(data)
		binary.LittleEndian.PutUint32(bad[8:], 99)
		if _, err := UnmarshalSegment(bad, ""); !errors.Is(err, ErrVersion) {
			t.Fatalf("%s: version 99: got %v, want ErrVersion", seg.model, err)
		}
	}
}

func TestOpenSegmentFromDisk(t *testing.T) {
	seg, _, _ := buildTestSegment(t, formatConfigs[0])
	dir := t.TempDir()
	path := filepath.Join(dir, "s.seg")
	if err := WriteSegment(path, seg); err != nil {
		t.Fatal(err)
	}
	got, err := OpenSegment(path, "test-fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Len() != seg.Len() || got.model.ID() != seg.model.ID() {
		t.Fatalf("reopened segment differs: %d vs %d episodes", got.Len(), seg.Len())
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("folder holds %d entries, want 1", len(ents))
	}
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, raw[:len(raw)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSegment(path, ""); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated file: got %v", err)
	}
}

func FuzzUnmarshalSegment(f *testing.F) {
	docs := []Doc{{ID: "a", Text: "alpha beta", Language: "en"}, {ID: "b", Text: "beta gamma", ShowID: "s"}}
	vecs := []float32{1, 0, 0, 1, 0, 1, 1, 0}
	for _, cfg := range []Config{{Metric: L2, NList: 1, M: 2, Bits: 8, Rerank: RerankSQ4}, {Metric: Cosine, NList: 2, M: 2, Bits: 4}} {
		data := tinySegment(f, cfg, docs, vecs)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		seg, err := UnmarshalSegment(data, "")
		if err != nil {
			return
		}
		s, err := NewSearcher([]View{{Seg: seg}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Search(context.Background(), make([]float32, seg.model.D), SearchOptions{K: 3, NProbe: 2}); err != nil {
			t.Fatal(err)
		}
		s.SearchKeyword("beta", 3, nil)
	})
}

// fixChecksums rewrites the section and header checksums of a (mutated) segment file so
// fuzzing reaches the structural checks behind them.
func fixChecksums(data []byte) []byte {
	data = slices.Clone(data)
	if len(data) < headerFixed+4 {
		return data
	}
	ns := int(binary.LittleEndian.Uint32(data[12:]))
	hdrLen := headerFixed + entrySize*ns + 4
	if ns > 64 || hdrLen > len(data) {
		return data
	}
	for i := 0; i < ns; i++ {
		e := data[headerFixed+entrySize*i:]
		off, ln := binary.LittleEndian.Uint64(e[8:]), binary.LittleEndian.Uint64(e[16:])
		if ln <= uint64(len(data)) && off <= uint64(len(data))-ln {
			binary.LittleEndian.PutUint32(e[24:], crc32.Checksum(data[off:off+ln], crcTable))
		}
	}
	binary.LittleEndian.PutUint32(data[hdrLen-4:], crc32.Checksum(data[:hdrLen-4], crcTable))
	return data
}

// FuzzSegmentStructure mutates segment files and repairs their checksums, so the
// structural validation (shapes, offsets, dictionaries, postings) must refuse bad files
// without panicking, and accepted files must be searchable.
func FuzzSegmentStructure(f *testing.F) {
	docs := []Doc{{ID: "a", Text: "alpha beta", Language: "en"}, {ID: "b", Text: "beta gamma", ShowID: "s"}, {ID: "c", Text: "gamma"}}
	vecs := []float32{1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}
	for _, cfg := range []Config{{Metric: L2, NList: 2, M: 2, Bits: 8, Rerank: RerankSQ4}, {Metric: Cosine, NList: 2, M: 2, Bits: 4}} {
		data := tinySegment(f, cfg, docs, vecs)
		f.Add(data, uint16(0), byte(0))
		f.Add(data, uint16(headerFixed+8), byte(1))
		f.Add(data, uint16(len(data)-5), byte(0x80))
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint16, x byte) {
		if int(at) < len(data) {
			data = slices.Clone(data)
			data[at] ^= x
		}
		seg, err := UnmarshalSegment(fixChecksums(data), "")
		if err != nil {
			return
		}
		s, err := NewSearcher([]View{{Seg: seg}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Search(context.Background(), make([]float32, seg.model.D), SearchOptions{K: 3, NProbe: 2, Filter: &Filter{Languages: []string{"en"}}}); err != nil {
			t.Fatal(err)
		}
		s.SearchKeyword("beta gamma", 3, nil)
	})
}

// tinySegment trains a 4-d model with cfg on repeated vectors (PQ needs at least 2^bits
// training points) and returns the serialised segment of docs, a fuzzing seed.
func tinySegment(f *testing.F, cfg Config, docs []Doc, vecs []float32) []byte {
	f.Helper()
	var train []float32
	for i := 0; i < 256; i++ {
		train = append(train, float32(i%7), float32(i%5), float32(i%3), float32(i%2))
	}
	cfg.Iters = 2
	m, err := Train(train, 4, cfg)
	if err != nil {
		f.Fatal(err)
	}
	seg, err := BuildSegment(m, docs, vecs)
	if err != nil {
		f.Fatal(err)
	}
	data, err := MarshalSegment(seg)
	if err != nil {
		f.Fatal(err)
	}
	return data
}
