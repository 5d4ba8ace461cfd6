package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/x448/float16"
)

// Encoding is how a vector is stored in Redis.
type Encoding uint8

const (
	// Float16 stores each component as an IEEE 754 half (2 bytes); the default. The cosine
	// similarity to the original stays above 0.9999 for unit vectors.
	Float16 Encoding = 1
	// Int8 stores each component as a signed byte times one float32 scale per vector
	// (1 byte per component).
	Int8 Encoding = 2
	// Float32 stores the vector exactly (4 bytes per component).
	Float32 Encoding = 3
)

// String returns the name ParseEncoding accepts.
func (e Encoding) String() string {
	switch e {
	case Float16:
		return "float16"
	case Int8:
		return "int8"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// ParseEncoding parses "float16" (or "f16"), "int8" (or "i8") and "float32" (or "f32").
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "float16", "f16", "":
		return Float16, nil
	case "int8", "i8":
		return Int8, nil
	case "float32", "f32":
		return Float32, nil
	}
	return 0, fmt.Errorf("cache: unknown encoding %q (want float16, int8 or float32)", s)
}

// bytesPerComponent is the payload size of one component.
func (e Encoding) bytesPerComponent() int {
	switch e {
	case Float16:
		return 2
	case Int8:
		return 1
	case Float32:
		return 4
	}
	return 0
}

// Value layout (little endian):
//
//	0  magic 'Q' 'V'
//	2  version (1)
//	3  encoding
//	4  flags (bit 0: the vector had unit length, so decoding renormalises)
//	5  dimension (uint16)
//	7  fingerprint tag (first 4 bytes of sha256(model fingerprint))
//	11 int8 only: scale (float32)
//	.. payload
//	-4 CRC-32C of everything before it
const (
	magic0, magic1 = 'Q', 'V'
	codecVersion   = 1
	headerSize     = 11
	checksumSize   = 4
	flagUnit       = 1
	maxDim         = math.MaxUint16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errInvalid marks a stored value that cannot be trusted (corrupted, truncated, foreign).
var errInvalid = errors.New("cache: invalid stored value")

// fpTag is the 4-byte fingerprint tag stored in every value.
type fpTag [4]byte

func newFPTag(fingerprint string) fpTag {
	sum := sha256.Sum256([]byte(fingerprint))
	return fpTag(sum[:4])
}

// encodedSize is the length of an encoded value of dim components.
func encodedSize(enc Encoding, dim int) int {
	n := headerSize + dim*enc.bytesPerComponent() + checksumSize
	if enc == Int8 {
		n += 4
	}
	return n
}

// encodeValue serialises v. It refuses vectors that the encoding cannot hold faithfully
// (non-finite components, float16 overflow), so the cache never stores garbage.
func encodeValue(enc Encoding, tag fpTag, v []float32) ([]byte, error) {
	if enc.bytesPerComponent() == 0 {
		return nil, fmt.Errorf("cache: unknown encoding %d", enc)
	}
	if len(v) == 0 || len(v) > maxDim {
		return nil, fmt.Errorf("cache: cannot store a vector of %d components", len(v))
	}
	var norm2, maxAbs float64
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("cache: refusing to store a non-finite vector")
		}
		norm2 += f * f
		maxAbs = math.Max(maxAbs, math.Abs(f))
	}
	if enc == Float16 && maxAbs > 65504 {
		return nil, errors.New("cache: vector component out of float16 range")
	}
	b := make([]byte, encodedSize(enc, len(v)))
	b[0], b[1], b[2], b[3] = magic0, magic1, codecVersion, byte(enc)
	if math.Abs(math.Sqrt(norm2)-1) < 1e-3 {
		b[4] = flagUnit
	}
	binary.LittleEndian.PutUint16(b[5:], uint16(len(v)))
	copy(b[7:11], tag[:])
	p := b[headerSize:]
	switch enc {
	case Float16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(p[2*i:], float16.Fromfloat32(x).Bits())
		}
	case Float32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(p[4*i:], math.Float32bits(x))
		}
	case Int8:
		scale := float32(maxAbs / 127)
		binary.LittleEndian.PutUint32(p, math.Float32bits(scale))
		p = p[4:]
		for i, x := range v {
			q := 0.0
			if scale > 0 {
				q = math.Round(float64(x / scale))
			}
			p[i] = byte(int8(max(-127, min(127, q))))
		}
	}
	n := len(b) - checksumSize
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b, nil
}

// decodeValue parses a stored value written under the model with tag. Any inconsistency
// (length, magic, version, encoding, fingerprint, checksum) returns errInvalid.
func decodeValue(b []byte, tag fpTag) ([]float32, error) {
	if len(b) < headerSize+checksumSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the header", errInvalid, len(b))
	}
	if b[0] != magic0 || b[1] != magic1 || b[2] != codecVersion {
		return nil, fmt.Errorf("%w: bad magic or version", errInvalid)
	}
	enc := Encoding(b[3])
	if enc.bytesPerComponent() == 0 {
		return nil, fmt.Errorf("%w: unknown encoding %d", errInvalid, b[3])
	}
	dim := int(binary.LittleEndian.Uint16(b[5:]))
	if dim == 0 || len(b) != encodedSize(enc, dim) {
		return nil, fmt.Errorf("%w: length %d does not match %s x %d", errInvalid, len(b), enc, dim)
	}
	n := len(b) - checksumSize
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errInvalid)
	}
	if fpTag(b[7:11]) != tag {
		return nil, fmt.Errorf("%w: written under another model fingerprint", errInvalid)
	}
	v := make([]float32, dim)
	p := b[headerSize:n]
	switch enc {
	case Float16:
		for i := range v {
			v[i] = float16.Frombits(binary.LittleEndian.Uint16(p[2*i:])).Float32()
		}
	case Float32:
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
	case Int8:
		scale := math.Float32frombits(binary.LittleEndian.Uint32(p))
		p = p[4:]
		for i := range v {
			v[i] = float32(int8(p[i])) * scale
		}
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%w: non-finite component", errInvalid)
		}
	}
	if b[4]&flagUnit != 0 && enc != Float32 {
		normalize(v)
	}
	return v, nil
}

// normalize scales v to unit length in place (no-op for the zero vector).
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}
