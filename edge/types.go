package edge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Tokenizer turns a normalised query into model token ids. The wasm tokenizer pool
// (wasm/tokenize) satisfies it; NativeTokenizer adapts core/tokenizer.
type Tokenizer interface {
	Encode(ctx context.Context, text string) ([]int32, error)
}

// NativeTokenizer adapts an in-process tokenizer such as core/tokenizer's Unigram.
func NativeTokenizer(t interface{ Encode(text string) []int32 }) Tokenizer { return nativeTokenizer{t} }

type nativeTokenizer struct {
	t interface{ Encode(text string) []int32 }
}

func (n nativeTokenizer) Encode(_ context.Context, text string) ([]int32, error) {
	return n.t.Encode(text), nil
}

// Mode selects the retrieval method of a query.
type Mode string

// The retrieval modes.
const (
	// ModeDense ranks by the cosine of the query and episode embeddings.
	ModeDense Mode = "dense"
	// ModeKeyword ranks by BM25 over the episode text; it needs no encoder.
	ModeKeyword Mode = "keyword"
	// ModeHybrid fuses the dense and keyword rankings.
	ModeHybrid Mode = "hybrid"
)

// ParseMode returns the Mode named s; the empty string means def.
func ParseMode(s string, def Mode) (Mode, error) {
	switch Mode(s) {
	case "":
		return def, nil
	case ModeDense, ModeKeyword, ModeHybrid:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode must be dense, keyword or hybrid, not %q", truncate(s, 32))
}

// Filters restrict a search to matching episodes; zero fields do not restrict.
type Filters struct {
	// Language is a language code such as "en" (matched case-insensitively).
	Language string `json:"lang,omitempty"`
	// ShowID keeps the episodes of one show (the source's show or series id).
	ShowID string `json:"show,omitempty"`
	// From and To bound the publication date, both inclusive.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Match reports whether an episode with these attributes passes the filters. Searchers
// apply filters inside the search; Match is the reference definition they share.
func (f Filters) Match(lang, showID string, date time.Time) bool {
	if f.Language != "" && !equalFoldASCII(f.Language, lang) {
		return false
	}
	if f.ShowID != "" && f.ShowID != showID {
		return false
	}
	if !f.From.IsZero() && (date.IsZero() || date.Before(f.From)) {
		return false
	}
	if !f.To.IsZero() && (date.IsZero() || date.After(f.To)) {
		return false
	}
	return true
}

// Vector is a query embedding. In JSON (the peer protocol) it is the base64 of its
// little-endian float32 values: exact, and a third of the size of decimal numbers.
type Vector []float32

// MarshalJSON implements json.Marshaler.
func (v Vector) MarshalJSON() ([]byte, error) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return json.Marshal(b)
}

// UnmarshalJSON implements json.Unmarshaler; it refuses non-finite values.
func (v *Vector) UnmarshalJSON(data []byte) error {
	var b []byte
	if string(data) == "null" {
		*v = nil
		return nil
	}
	if len(data) == 0 || data[0] != '"' {
		return fmt.Errorf("vector: want base64 of little-endian float32s in a string")
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("vector: want base64 of little-endian float32s: %w", err)
	}
	if len(b)%4 != 0 {
		return fmt.Errorf("vector: %d bytes is not a whole number of float32s", len(b))
	}
	out := make(Vector, len(b)/4)
	for i := range out {
		x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("vector: component %d is not finite", i)
		}
		out[i] = x
	}
	*v = out
	return nil
}

// ShardQuery is one query as a Searcher sees it.
type ShardQuery struct {
	// Vector is the unit-length query embedding; nil in keyword mode.
	Vector Vector `json:"vector,omitempty"`
	// Keywords is the normalised query text for keyword retrieval.
	Keywords string `json:"keywords"`
	// Filters restrict the episodes searched.
	Filters Filters `json:"filters"`
	// K is how many hits to return.
	K int `json:"k"`
	// Mode is the retrieval method.
	Mode Mode `json:"mode"`
}

// Hit is one search result.
type Hit struct {
	// ID is the source's own episode id (Taddy uuid, RSS guid, ...).
	ID string `json:"id"`
	// Title is the episode title.
	Title string `json:"title"`
	// ShowTitle is the title of the show, when known.
	ShowTitle string `json:"show_title"`
	// Date is the publication date, YYYY-MM-DD, when known.
	Date string `json:"date,omitempty"`
	// Score orders the hits, higher is better; its scale depends on the mode. It is a
	// float32, the precision the index computes in (and shortest in JSON).
	Score float32 `json:"score"`
	// Snippet is a short plain-text excerpt of the description around the query words.
	Snippet string `json:"snippet"`
	// Text is the plain-text description the snippet is cut from (Searchers clean HTML
	// once, at load time, not per query); never sent to clients.
	Text string `json:"-"`
}

// Searcher searches the shards one edge node holds. Implementations must be safe for
// concurrent use; the edge closes one only after every query that used it has finished.
type Searcher interface {
	// Search returns at most q.K hits, best first.
	Search(ctx context.Context, q ShardQuery) ([]Hit, error)
	// IndexVersion names the loaded shards (changes on every reload of new shards).
	IndexVersion() string
	// Fingerprint is the model fingerprint of the stored episode vectors; "" when the
	// searcher holds no vectors (keyword only).
	Fingerprint() string
	// Close releases the shards.
	Close() error
}

// Opener loads the node's shards; the edge calls it at start and on every reload.
type Opener func(ctx context.Context) (Searcher, error)

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes for error messages, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
