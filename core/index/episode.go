package index

import (
	"fmt"
	"time"

	"github.com/podsearch/podsearch/core/ingest"
)

// DocOf is the index document of a corpus episode: its ids, titles and language, its
// embedded text for the keyword index, and its date. A date that is not RFC 3339 is left
// unknown and reported as the error (the Doc is usable either way).
func DocOf(e ingest.Episode) (Doc, error) {
	d := Doc{ID: e.ID, ShowID: e.ShowID, ShowTitle: e.ShowTitle, Title: e.Title, Language: e.Language, Text: e.Text}
	if e.Date == "" {
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, e.Date)
	if err != nil {
		return d, fmt.Errorf("index: episode %s: date %q: %w", e.ID, e.Date, err)
	}
	d.Date = t.UTC()
	return d, nil
}
