package ingest

import (
	"fmt"
	"time"

	"github.com/podsearch/podsearch/core/index"
)

// IndexDoc is the index document of a corpus episode: its ids, titles and language, its
// embedded text for the keyword index, and its date. A date that is not RFC 3339 is left
// unknown and reported as the error (the Doc is usable either way).
//
// It lives here rather than in core/index so that the index (and the edge that links it)
// does not depend on the corpus reader and its bundled demo data.
func IndexDoc(e Episode) (index.Doc, error) {
	d := index.Doc{ID: e.ID, ShowID: e.ShowID, ShowTitle: e.ShowTitle, Title: e.Title, Language: e.Language, Text: e.Text}
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
