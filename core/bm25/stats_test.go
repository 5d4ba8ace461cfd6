package bm25

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// statsFixture marshals the statistics of a few documents in which "quick" is held by two.
func statsFixture(t *testing.T) (*Stats, []byte) {
	t.Helper()
	b := NewBuilder()
	b.Add("the quick brown fox jumps")
	b.Add("lazy dogs and quick foxes")
	b.Add("a slow green turtle")
	st := ComputeStats([]View{{Seg: b.Build()}})
	raw, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return st, raw
}

// dfOffset returns the offset of the u32 document frequency of term in a marshalled Stats.
func dfOffset(t *testing.T, raw []byte, term string) int {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(raw[24:]))
	off := 28
	for range n {
		l := int(binary.LittleEndian.Uint16(raw[off:]))
		if string(raw[off+2:off+2+l]) == term {
			return off + 2 + l
		}
		off += 2 + l + 4
	}
	t.Fatalf("term %q not in the statistics", term)
	return 0
}

// An in-range edit of one document frequency (2 -> 1 of 3 documents: a valid value that would
// silently change keyword scores) is refused.
func TestStatsInRangeEditDetected(t *testing.T) {
	st, raw := statsFixture(t)
	term := Analyze("quick")[0]
	if st.DF[term] != 2 {
		t.Fatalf("fixture: df(%q) = %d, want 2", term, st.DF[term])
	}
	if _, err := UnmarshalStats(raw); err != nil {
		t.Fatalf("intact statistics refused: %v", err)
	}
	edited := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(edited[dfOffset(t, edited, term):], 1)
	got, err := UnmarshalStats(edited)
	if err == nil {
		t.Fatalf("edited document frequency accepted: df(%q) = %d", term, got.DF[term])
	}
	if !errors.Is(err, ErrStatsChecksum) {
		t.Fatalf("edit refused with %v, want ErrStatsChecksum", err)
	}
	// Every single-byte change and every truncation is refused as well.
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := UnmarshalStats(b); err == nil {
			t.Fatalf("flipped bit in byte %d accepted", i)
		}
		if _, err := UnmarshalStats(raw[:i]); err == nil {
			t.Fatalf("truncation to %d bytes accepted", i)
		}
	}
}

// A version 1 blob (no checksum) is refused with an error that says what to do.
func TestStatsVersion1Refused(t *testing.T) {
	_, raw := statsFixture(t)
	v1 := append([]byte("BM25STA1"), raw[8:len(raw)-4]...)
	_, err := UnmarshalStats(v1)
	if !errors.Is(err, ErrStatsVersion) {
		t.Fatalf("version 1 blob: %v, want ErrStatsVersion", err)
	}
	if !strings.Contains(err.Error(), "rebuild the index") {
		t.Fatalf("version 1 error does not say how to mend it: %v", err)
	}
}
