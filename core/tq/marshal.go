package tq

import (
	"encoding/binary"
	"fmt"
	"math"
)

// magic opens a marshalled quantizer; version is the layout written by MarshalBinary.
const (
	magic   = "PSTQ"
	version = 1
	header  = 16 // magic, version, D, R
	maxD    = 1 << 16
)

// MarshalBinary writes the quantizer little-endian: "PSTQ", uint32 version, uint32 D,
// uint32 R, then float32 Mean[D], uint8 Bits[R], float32 Min[R], float32 Scale[R] and
// float32 Rot[R*D].
func (q *Quantizer) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, marshalledSize(q.D, q.R))
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(q.D))
	b = binary.LittleEndian.AppendUint32(b, uint32(q.R))
	b = appendFloats(b, q.Mean)
	b = append(b, q.Bits...)
	b = appendFloats(b, q.Min)
	b = appendFloats(b, q.Scale)
	b = appendFloats(b, q.Rot)
	return b, nil
}

func marshalledSize(d, r int) int { return int(marshalledSize64(uint32(d), uint32(r))) }

func marshalledSize64(d, r uint32) uint64 {
	return header + 4*uint64(d) + 9*uint64(r) + 4*uint64(r)*uint64(d)
}

func appendFloats(b []byte, f []float32) []byte {
	for _, v := range f {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// UnmarshalBinary replaces q with the quantizer MarshalBinary wrote into b. A truncated,
// oversized or corrupt blob (wrong magic or version, impossible shape, widths outside
// 1..MaxBits, non-finite values, non-positive steps) is refused with an error.
func (q *Quantizer) UnmarshalBinary(b []byte) error {
	if len(b) < header {
		return fmt.Errorf("tq: %d bytes, shorter than the %d-byte header", len(b), header)
	}
	if string(b[:4]) != magic {
		return fmt.Errorf("tq: bad magic %q, want %q", b[:4], magic)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != version {
		return fmt.Errorf("tq: version %d, want %d", v, version)
	}
	d64, r64 := binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:])
	if d64 == 0 || d64 > maxD || r64 == 0 || r64 > d64 {
		return fmt.Errorf("tq: shape D=%d R=%d, want 1 <= R <= D <= %d", d64, r64, maxD)
	}
	// The size in 64 bits: it can pass 2^32 where int is 32 bits wide.
	if want := marshalledSize64(d64, r64); uint64(len(b)) != want {
		return fmt.Errorf("tq: %d bytes for D=%d R=%d, want %d", len(b), d64, r64, want)
	}
	d, r := int(d64), int(r64)
	p := b[header:]
	mean, p := readFloats(p, d)
	bits := make([]uint8, r)
	copy(bits, p[:r])
	p = p[r:]
	minv, p := readFloats(p, r)
	scale, p := readFloats(p, r)
	rot, _ := readFloats(p, r*d)
	for i, v := range bits {
		if v < 1 || v > MaxBits {
			return fmt.Errorf("tq: axis %d has width %d, want 1..%d", i, v, MaxBits)
		}
	}
	for _, part := range []struct {
		name string
		f    []float32
	}{{"mean", mean}, {"minimum", minv}, {"step", scale}, {"rotation", rot}} {
		for i, v := range part.f {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tq: %s value %d is %v", part.name, i, v)
			}
		}
	}
	for i, v := range scale {
		if !(v > 0) {
			return fmt.Errorf("tq: axis %d has step %v, want > 0", i, v)
		}
	}
	*q = Quantizer{D: d, R: r, Mean: mean, Rot: rot, Bits: bits, Min: minv, Scale: scale}
	q.layout()
	return nil
}

func readFloats(b []byte, n int) ([]float32, []byte) {
	f := make([]float32, n)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f, b[4*n:]
}
