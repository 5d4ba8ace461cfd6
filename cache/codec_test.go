package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"github.com/podsearch/podsearch/cache/internal/standin"
	"github.com/podsearch/podsearch/core/vec"
)

func cosine(a, b []float32) float64 { return vec.Cosine(a, b) }

func TestCodecRoundTrip(t *testing.T) {
	tag := newFPTag("model-a")
	// Worst-case bounds: float16 keeps 11 significant bits (relative error 2^-11 per
	// component); int8 errs by at most scale/2 per component.
	minCos := map[Encoding]float64{Float16: 0.99999, Int8: 0.999, Float32: 1 - 1e-12}
	for _, enc := range []Encoding{Float16, Int8, Float32} {
		for q := int32(0); q < 50; q++ {
			v := standin.Vector([]int32{q, q * 7, 11}, 512)
			b, err := encodeValue(enc, tag, "k", sealer{}, v)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != encodedSize(enc, 512, checksumSize) {
				t.Fatalf("%s: %d bytes, want %d", enc, len(b), encodedSize(enc, 512, checksumSize))
			}
			got, err := decodeValue(b, tag, "k", sealer{})
			if err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			if c := cosine(v, got); c < minCos[enc] {
				t.Fatalf("%s: cosine %v < %v", enc, c, minCos[enc])
			}
			if enc == Float32 {
				for i := range v {
					if v[i] != got[i] {
						t.Fatalf("float32 not exact at %d", i)
					}
				}
			} else if n := cosine(got, got); math.Abs(math.Sqrt(n)-1) > 1e-6 {
				t.Fatalf("%s: decoded unit vector not renormalised", enc)
			}
		}
	}
	if s := encodedSize(Float16, 512, checksumSize); s != 1047 {
		t.Fatalf("float16 value of 512 components is %d bytes, want 1047", s)
	}
}

func TestCodecNonUnitVectorKeptAsIs(t *testing.T) {
	v := []float32{3, -4, 0.5}
	b, err := encodeValue(Float16, fpTag{}, "k", sealer{}, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeValue(b, fpTag{}, "k", sealer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if got[i] != v[i] { // these values are exact in float16
			t.Fatalf("component %d: %v want %v", i, got[i], v[i])
		}
	}
}

func TestCodecRefusesGarbage(t *testing.T) {
	for name, v := range map[string][]float32{
		"empty": {},
		"nan":   {1, float32(math.NaN())},
		"inf":   {float32(math.Inf(1))},
		"big":   {1e6},
	} {
		if _, err := encodeValue(Float16, fpTag{}, "k", sealer{}, v); err == nil {
			t.Errorf("%s: encoded without error", name)
		}
	}
	if _, err := encodeValue(Encoding(9), fpTag{}, "k", sealer{}, []float32{1}); err == nil {
		t.Error("unknown encoding accepted")
	}
}

// Every single-byte corruption, every truncation, a foreign fingerprint and another key
// are detected, with and without a secret.
func TestCodecDetectsCorruption(t *testing.T) {
	tag := newFPTag("model-a")
	for _, seal := range []sealer{{}, {secret: []byte("0123456789abcdef")}} {
		for _, enc := range []Encoding{Float16, Int8, Float32} {
			name := fmt.Sprintf("%s (secret %v)", enc, seal.secret != nil)
			good, err := encodeValue(enc, tag, "key-a", seal, standin.Vector([]int32{1, 2, 3}, 64))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeValue(good, tag, "key-a", seal); err != nil {
				t.Fatalf("%s: good value refused: %v", name, err)
			}
			for i := range good {
				bad := append([]byte(nil), good...)
				bad[i] ^= 0x5a
				if _, err := decodeValue(bad, tag, "key-a", seal); err == nil {
					t.Fatalf("%s: flipping byte %d went unnoticed", name, i)
				}
			}
			for n := 0; n < len(good); n++ {
				if _, err := decodeValue(good[:n], tag, "key-a", seal); err == nil {
					t.Fatalf("%s: truncation to %d bytes went unnoticed", name, n)
				}
			}
			if _, err := decodeValue(append(append([]byte(nil), good...), 0), tag, "key-a", seal); err == nil {
				t.Fatalf("%s: trailing byte went unnoticed", name)
			}
			if _, err := decodeValue(good, newFPTag("model-b"), "key-a", seal); refusalReason(err) != reasonModel {
				t.Fatalf("%s: value of another model: %v", name, err)
			}
			if _, err := decodeValue(good, tag, "key-b", seal); refusalReason(err) != reasonKey {
				t.Fatalf("%s: value read under another key: %v", name, err)
			}
		}
	}
}

// A value bound to key A is refused under key B even when its key tag is rewritten to B's
// and its checksum recomputed, once a secret is configured (without one, such a forgery
// by a Redis writer passes: that is what the secret is for).
func TestCodecSecretRefusesForgeries(t *testing.T) {
	tag := newFPTag("model-a")
	secret := sealer{secret: []byte("0123456789abcdef")}
	v := standin.Vector([]int32{4, 5}, 32)
	signed, err := encodeValue(Float16, tag, "key-a", secret, v)
	if err != nil {
		t.Fatal(err)
	}
	// Retag for key-b keeping the MAC of key-a.
	retag := append([]byte(nil), signed...)
	kt := keyTag("key-b")
	copy(retag[11:19], kt[:])
	if _, err := decodeValue(retag, tag, "key-b", secret); refusalReason(err) != reasonAuth {
		t.Fatalf("retagged value: %v, want an auth refusal", err)
	}
	// A value forged without the secret (a valid CRC-sealed value for key-b).
	forged, err := encodeValue(Float16, tag, "key-b", sealer{}, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeValue(forged, tag, "key-b", secret); refusalReason(err) != reasonAuth {
		t.Fatalf("unauthenticated value: %v, want an auth refusal", err)
	}
	if _, err := decodeValue(forged, tag, "key-b", sealer{}); err != nil {
		t.Fatalf("without a secret, a well-formed value is accepted: %v", err)
	}
	// An HMAC under another secret, and an HMAC a cache without a secret cannot check.
	other, _ := encodeValue(Float16, tag, "key-a", sealer{secret: []byte("fedcba9876543210")}, v)
	if _, err := decodeValue(other, tag, "key-a", secret); refusalReason(err) != reasonAuth {
		t.Fatalf("value under another secret: %v", err)
	}
	if _, err := decodeValue(signed, tag, "key-a", sealer{}); refusalReason(err) != reasonAuth {
		t.Fatalf("authenticated value read without a secret: %v", err)
	}
	if got := encodedSize(Float16, 512, macSize); len(signed) != encodedSize(Float16, 32, macSize) || got != 1075 {
		t.Fatalf("authenticated float16 value of 512 components is %d bytes, want 1075", got)
	}
}

// Values of the previous codec version (no key tag) are refused as old_format, not a crash.
func TestCodecOldFormatIsAMiss(t *testing.T) {
	// A version-1 float16 value of 3 components: 11-byte header, payload, CRC-32C.
	old := []byte{'Q', 'V', 1, byte(Float16), flagUnit, 3, 0, 1, 2, 3, 4, 0, 0x3c, 0, 0, 0, 0}
	old = binary.LittleEndian.AppendUint32(old, crc32.Checksum(old, castagnoli))
	for _, b := range [][]byte{old, old[:3], {'Q', 'V'}, nil} {
		if _, err := decodeValue(b, fpTag{1, 2, 3, 4}, "k", sealer{}); err == nil || !errors.Is(err, errInvalid) {
			t.Fatalf("%x: %v, want errInvalid", b, err)
		}
	}
	if _, err := decodeValue(old, fpTag{1, 2, 3, 4}, "k", sealer{}); refusalReason(err) != reasonFormat {
		t.Fatalf("version-1 value: %v, want an old_format refusal", err)
	}
}

func TestParseEncoding(t *testing.T) {
	for in, want := range map[string]Encoding{"float16": Float16, "f16": Float16, "": Float16, "int8": Int8, "float32": Float32, "f32": Float32} {
		got, err := ParseEncoding(in)
		if err != nil || got != want {
			t.Errorf("ParseEncoding(%q) = %v, %v", in, got, err)
		}
		if back, err := ParseEncoding(want.String()); err != nil || back != want {
			t.Errorf("ParseEncoding(%q) = %v, %v", want.String(), back, err)
		}
	}
	if _, err := ParseEncoding("bf16"); err == nil {
		t.Error("bf16 accepted")
	}
}

func FuzzDecodeValue(f *testing.F) {
	tag := newFPTag("fz")
	for _, enc := range []Encoding{Float16, Int8, Float32} {
		b, _ := encodeValue(enc, tag, "k", sealer{}, standin.Vector([]int32{5}, 8))
		f.Add(b)
	}
	f.Add([]byte("QV"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b, tag, "k", sealer{})
		if err != nil {
			return
		}
		// Anything accepted must survive a round trip with the same encoding.
		b2, err := encodeValue(Encoding(b[3]), tag, "k", sealer{}, v)
		if err != nil {
			t.Fatalf("decoded value cannot be re-encoded: %v", err)
		}
		if _, err := decodeValue(b2, tag, "k", sealer{}); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
	})
}

func TestKeys(t *testing.T) {
	fpA := "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"
	a := newKeyer(DefaultPrefix, fpA)
	b := newKeyer(DefaultPrefix, "0"+fpA[1:])
	ids := []int32{10, 20, 30}
	if a.key(ids) != a.key([]int32{10, 20, 30}) {
		t.Fatal("same ids, different keys")
	}
	if a.key(ids) == a.key([]int32{10, 20, 31}) || a.key(ids) == a.key([]int32{10, 20}) {
		t.Fatal("different ids, same key")
	}
	if a.key(ids) == b.key(ids) {
		t.Fatal("different models, same key")
	}
	want := DefaultPrefix + ":" + fpA[:16] + ":"
	if k := a.key(ids); len(k) != len(want)+22 || k[:len(want)] != want {
		t.Fatalf("key %q does not start with %q + 22 characters", k, want)
	}
	if a.pattern() != want+"*" {
		t.Fatalf("pattern %q", a.pattern())
	}
	long := make([]int32, 200)
	for i := range long {
		long[i] = int32(i)
	}
	if a.key(long) != a.key(long[:128]) {
		t.Fatal("ids past the encoder's 128-token limit changed the key")
	}
	if fingerprintPart("not hex at all") == fingerprintPart("not hex at all!") || len(fingerprintPart("x")) != 16 {
		t.Fatal("non-hex fingerprints are not hashed to 16 distinct hex digits")
	}
}
