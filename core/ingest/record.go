package ingest

import (
	"fmt"
	"sort"
	"strings"
)

// Source names, as they appear in Episode.Source and Reject.Source.
const (
	SourceKaggle = "kaggle"
	SourceRSS    = "rss"
	SourceJSONL  = "jsonl"
)

// Reject kinds: what a Reject is about.
const (
	// KindEpisode is one episode (a CSV row, an RSS item, a JSONL line): these are counted
	// in Stats.Read, so read = written + episode rejects.
	KindEpisode = "episode"
	// KindPodcast is a show row of the Kaggle layout (no episodes, repeated id, malformed).
	KindPodcast = "podcast"
	// KindFeed is a whole input (a feed or file) that could not be parsed.
	KindFeed = "feed"
)

// Reject reasons.
const (
	ReasonMalformed      = "malformed"       // the row, line or feed could not be parsed
	ReasonPodcastMissing = "podcast-missing" // the episode's podcast id is not in podcasts.csv
	ReasonNoEpisodes     = "no-episodes"     // a podcast that no episode refers to
	ReasonMissingID      = "missing-id"      // no id in the id field(s)
	ReasonEmpty          = "empty"           // neither title nor description after cleaning
	ReasonDuplicateID    = "duplicate-id"    // an id already taken by an earlier record
	ReasonDuplicateText  = "duplicate-text"  // exactly the text of an earlier episode
)

// Reject is one thing that did not make it into the corpus, and why; ingest writes them all
// to the rejects file so that nothing disappears silently.
type Reject struct {
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// Origin locates it: file and line, or feed file and item number.
	Origin string `json:"origin"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Record is one episode as a reader found it, before cleaning: raw strings, HTML included.
type Record struct {
	Source          string
	Origin          string
	ID              string
	ShowID          string
	ShowTitle       string
	ShowDescription string
	Title           string
	Description     string
	Date            string
	Language        string
}

// Batch is what a reader returns for one input: the records it read, what it rejected, and
// how many episode units (rows, items, lines) it saw.
type Batch struct {
	Records []Record
	Rejects []Reject
	// Read counts episode units seen: len(Records) plus the KindEpisode rejects.
	Read int
}

// Fields a Mapping may map.
const (
	FieldID              = "id"
	FieldShowID          = "show_id"
	FieldShowTitle       = "show_title"
	FieldShowDescription = "show_description"
	FieldTitle           = "title"
	FieldDescription     = "description"
	FieldDate            = "date"
	FieldLanguage        = "language"
)

var knownFields = []string{FieldID, FieldShowID, FieldShowTitle, FieldShowDescription,
	FieldTitle, FieldDescription, FieldDate, FieldLanguage}

// Mapping names, for each episode field, the input columns or JSON keys to take it from,
// in order: the first non-empty one wins.
type Mapping map[string][]string

// ParseMapping parses "field=name|name,field=name" (for example
// "id=uuid,description=description|subtitle"). Fields are those of the Field constants.
func ParseMapping(s string) (Mapping, error) {
	m := Mapping{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		field, names, ok := strings.Cut(part, "=")
		field = strings.TrimSpace(field)
		if !ok || !isKnownField(field) {
			return nil, fmt.Errorf("mapping %q: want field=name|name with field one of %s",
				part, strings.Join(knownFields, ", "))
		}
		var list []string
		for _, n := range strings.Split(names, "|") {
			if n = strings.TrimSpace(n); n != "" {
				list = append(list, n)
			}
		}
		m[field] = list
	}
	return m, nil
}

// With returns a copy of m with the fields of over replaced.
func (m Mapping) With(over Mapping) Mapping {
	out := Mapping{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// String formats m in the syntax ParseMapping reads, fields in a fixed order.
func (m Mapping) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fieldRank(keys[i]) < fieldRank(keys[j]) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strings.Join(m[k], "|"))
	}
	return strings.Join(parts, ",")
}

func isKnownField(f string) bool { return fieldRank(f) < len(knownFields) }

func fieldRank(f string) int {
	for i, k := range knownFields {
		if k == f {
			return i
		}
	}
	return len(knownFields)
}

// pick returns the first non-blank value of field's names, looked up by get.
func (m Mapping) pick(field string, get func(name string) string) string {
	for _, name := range m[field] {
		if v := strings.TrimSpace(get(name)); v != "" {
			return v
		}
	}
	return ""
}

// record fills a Record's mapped fields with get.
func (m Mapping) record(get func(name string) string) Record {
	return Record{
		ID:              m.pick(FieldID, get),
		ShowID:          m.pick(FieldShowID, get),
		ShowTitle:       m.pick(FieldShowTitle, get),
		ShowDescription: m.pick(FieldShowDescription, get),
		Title:           m.pick(FieldTitle, get),
		Description:     m.pick(FieldDescription, get),
		Date:            m.pick(FieldDate, get),
		Language:        m.pick(FieldLanguage, get),
	}
}
