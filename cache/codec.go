package cache

import (
	"crypto/hmac"
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
//	2  version (2)
//	3  encoding
//	4  flags (bit 0: the vector had unit length, so decoding renormalises; bit 1: the
//	   trailer is an HMAC-SHA256, not a CRC)
//	5  dimension (uint16)
//	7  fingerprint tag (first 4 bytes of sha256(model fingerprint))
//	11 key tag (first 8 bytes of sha256(the Redis key)): a value copied to another key is
//	   refused
//	19 int8 only: scale (float32)
//	.. payload
//	-4 CRC-32C of everything before it, or
//	-32 with flag bit 1: HMAC-SHA256 under the cache secret of the key followed by everything
//	   before it
//
// Version 1 values (no key tag) are refused as a miss and rewritten.
const (
	magic0, magic1 = 'Q', 'V'
	codecVersion   = 2
	headerSize     = 19
	checksumSize   = 4
	macSize        = sha256.Size
	flagUnit       = 1
	flagMAC        = 2
	maxDim         = math.MaxUint16
	// MinSecretBytes is the shortest cache secret Config accepts.
	MinSecretBytes = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errInvalid marks a stored value that cannot be trusted (corrupted, truncated, foreign,
// copied from another key, forged).
var errInvalid = errors.New("cache: invalid stored value")

// Reasons a stored value is refused, the "reason" label of the refused-values metric.
const (
	reasonCorrupt = "corrupt"    // length, magic, encoding, checksum or a non-finite component
	reasonFormat  = "old_format" // an older codec version
	reasonModel   = "model"      // written under another model fingerprint
	reasonKey     = "key"        // written under another key (copied or swapped)
	reasonAuth    = "auth"       // missing or wrong HMAC, or an HMAC this cache cannot check
)

// invalidValue is a refused value: it wraps errInvalid and says why.
type invalidValue struct {
	reason string
	detail string
}

func (e *invalidValue) Error() string { return errInvalid.Error() + ": " + e.detail }
func (e *invalidValue) Unwrap() error { return errInvalid }

func invalid(reason, format string, args ...any) error {
	return &invalidValue{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// refusalReason returns the reason of a decodeValue error.
func refusalReason(err error) string {
	var iv *invalidValue
	if errors.As(err, &iv) {
		return iv.reason
	}
	return reasonCorrupt
}

// fpTag is the 4-byte fingerprint tag stored in every value.
type fpTag [4]byte

func newFPTag(fingerprint string) fpTag {
	sum := sha256.Sum256([]byte(fingerprint))
	return fpTag(sum[:4])
}

// keyTag is the 8-byte tag of the key a value is stored under.
func keyTag(key string) [8]byte {
	sum := sha256.Sum256([]byte(key))
	return [8]byte(sum[:8])
}

// sealer writes and checks the trailer of values: a CRC-32C, or an HMAC-SHA256 under a
// secret (which also covers the key).
type sealer struct {
	secret []byte // nil: CRC-32C
}

func (s sealer) trailerSize() int {
	if s.secret != nil {
		return macSize
	}
	return checksumSize
}

func (s sealer) mac(key string, body []byte) []byte {
	h := hmac.New(sha256.New, s.secret)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	h.Write(body)
	return h.Sum(nil)
}

// encodedSize is the length of an encoded value of dim components with a trailer of
// trailer bytes.
func encodedSize(enc Encoding, dim, trailer int) int {
	n := headerSize + dim*enc.bytesPerComponent() + trailer
	if enc == Int8 {
		n += 4
	}
	return n
}

// encodeValue serialises v for the Redis key key. It refuses vectors that the encoding
// cannot hold faithfully (non-finite components, float16 overflow), so the cache never
// stores garbage.
func encodeValue(enc Encoding, tag fpTag, key string, s sealer, v []float32) ([]byte, error) {
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
	b := make([]byte, encodedSize(enc, len(v), s.trailerSize()))
	b[0], b[1], b[2], b[3] = magic0, magic1, codecVersion, byte(enc)
	if math.Abs(math.Sqrt(norm2)-1) < 1e-3 {
		b[4] |= flagUnit
	}
	if s.secret != nil {
		b[4] |= flagMAC
	}
	binary.LittleEndian.PutUint16(b[5:], uint16(len(v)))
	copy(b[7:11], tag[:])
	kt := keyTag(key)
	copy(b[11:19], kt[:])
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
	n := len(b) - s.trailerSize()
	if s.secret != nil {
		copy(b[n:], s.mac(key, b[:n]))
	} else {
		binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	}
	return b, nil
}

// decodeValue parses a value read from the Redis key key, written under the model with
// tag. Any inconsistency (length, magic, version, encoding, checksum or HMAC, key,
// fingerprint) returns an error wrapping errInvalid whose refusalReason says which. With a
// secret, only values carrying a valid HMAC under it are accepted; without one, values
// carrying an HMAC are refused (they cannot be checked).
func decodeValue(b []byte, tag fpTag, key string, s sealer) ([]float32, error) {
	if len(b) < 3 || b[0] != magic0 || b[1] != magic1 {
		return nil, invalid(reasonCorrupt, "bad magic")
	}
	if b[2] != codecVersion {
		return nil, invalid(reasonFormat, "codec version %d (this cache reads %d)", b[2], codecVersion)
	}
	if len(b) < headerSize+checksumSize {
		return nil, invalid(reasonCorrupt, "%d bytes is shorter than the header", len(b))
	}
	enc := Encoding(b[3])
	if enc.bytesPerComponent() == 0 {
		return nil, invalid(reasonCorrupt, "unknown encoding %d", b[3])
	}
	if b[4]&^(flagUnit|flagMAC) != 0 {
		return nil, invalid(reasonCorrupt, "unknown flags %#x", b[4])
	}
	mac := b[4]&flagMAC != 0
	trailer := checksumSize
	if mac {
		trailer = macSize
	}
	dim := int(binary.LittleEndian.Uint16(b[5:]))
	if dim == 0 || len(b) != encodedSize(enc, dim, trailer) {
		return nil, invalid(reasonCorrupt, "length %d does not match %s x %d", len(b), enc, dim)
	}
	n := len(b) - trailer
	if !mac && crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return nil, invalid(reasonCorrupt, "checksum mismatch")
	}
	if kt := keyTag(key); [8]byte(b[11:19]) != kt {
		return nil, invalid(reasonKey, "written under another key")
	}
	switch {
	case s.secret != nil && !mac:
		return nil, invalid(reasonAuth, "not authenticated, and this cache has a secret")
	case s.secret == nil && mac:
		return nil, invalid(reasonAuth, "authenticated under a secret this cache does not have")
	case mac && !hmac.Equal(s.mac(key, b[:n]), b[n:]):
		return nil, invalid(reasonAuth, "HMAC mismatch")
	}
	if fpTag(b[7:11]) != tag {
		return nil, invalid(reasonModel, "written under another model fingerprint")
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
			return nil, invalid(reasonCorrupt, "non-finite component")
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
