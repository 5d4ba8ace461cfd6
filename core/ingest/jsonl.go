package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// DefaultJSONLMapping reads the Taddy export (uuid, series_uuid, name, description,
// subtitle, date_published) and common alternatives (the flattened RSS layout's guid,
// episode_title, episode_description, show_title, show_description, pub_date, language).
var DefaultJSONLMapping = Mapping{
	FieldID:              {"uuid", "id", "guid", "episode_id"},
	FieldShowID:          {"series_uuid", "show_id", "podcast_uuid", "podcast_id", "feed_file"},
	FieldShowTitle:       {"show_title", "series_name", "podcast_title"},
	FieldShowDescription: {"show_description", "series_description", "podcast_description"},
	FieldTitle:           {"name", "title", "episode_title"},
	FieldDescription:     {"description", "episode_description", "summary", "subtitle"},
	FieldDate:            {"date_published", "pub_date", "published", "date"},
	FieldLanguage:        {"language", "lang"},
}

// ReadJSONL reads JSON Lines episodes from r (name is used in origins), taking each field
// from the keys m names. Top-level string, number and boolean values are used; null, arrays
// and objects count as absent. A line that is not a JSON object is rejected as malformed.
func ReadJSONL(r io.Reader, name string, m Mapping) (*Batch, error) {
	b := &Batch{}
	err := eachLine(r, func(n int, line []byte) error {
		b.Read++
		origin := fmt.Sprintf("%s:%d", name, n)
		// Values stay raw until a mapped key asks for one: most keys are never decoded.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
			detail := "not a JSON object"
			if err != nil {
				detail = err.Error()
			}
			b.Rejects = append(b.Rejects, Reject{Kind: KindEpisode, Source: SourceJSONL,
				Origin: origin, Reason: ReasonMalformed, Detail: detail})
			return nil
		}
		rec := m.record(func(key string) string { return scalar(obj[key]) })
		rec.Source, rec.Origin = SourceJSONL, origin
		b.Records = append(b.Records, rec)
		return nil
	})
	return b, err
}

// scalar renders a raw JSON scalar as text (a number as written); composite values, null
// and absent keys are "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9'):
		return string(raw)
	}
	return ""
}
