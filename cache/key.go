package cache

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/podsearch/podsearch/core/encoder"
)

// DefaultPrefix starts every key the cache writes.
const DefaultPrefix = "podsearch:qe"

// keyer builds keys: prefix ":" fingerprint-16-hex ":" base64url(sha256(token ids)[:16]).
type keyer struct {
	head string // prefix + ":" + fingerprint part + ":"
}

func newKeyer(prefix, fingerprint string) keyer {
	return keyer{head: prefix + ":" + fingerprintPart(fingerprint) + ":"}
}

// fingerprintPart is the first 16 hex digits of a hex fingerprint (readable, so an operator
// can SCAN one model's keys), or of its sha256 when it is not hex.
func fingerprintPart(fp string) string {
	fp = strings.ToLower(fp)
	if len(fp) >= 16 && isHex(fp) {
		return fp[:16]
	}
	sum := sha256.Sum256([]byte(fp))
	return hex.EncodeToString(sum[:8])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// key returns the key of one token-id sequence. Ids beyond encoder.MaxTokens are ignored,
// because the encoder clips them and their vectors are the same.
func (k keyer) key(ids []int32) string {
	if len(ids) > encoder.MaxTokens {
		ids = ids[:encoder.MaxTokens]
	}
	buf := make([]byte, 4*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(id))
	}
	sum := sha256.Sum256(buf)
	var b strings.Builder
	b.Grow(len(k.head) + 22)
	b.WriteString(k.head)
	b.WriteString(base64.RawURLEncoding.EncodeToString(sum[:16]))
	return b.String()
}

// pattern is the SCAN/KEYS pattern matching every key of this model and prefix.
func (k keyer) pattern() string { return k.head + "*" }
