package ingest

import (
	"testing"
	"time"
)

// TestIndexDoc: an episode's fields carry over, an RFC 3339 date becomes UTC, and a bad date
// is reported while the document stays usable (undated).
func TestIndexDoc(t *testing.T) {
	e := Episode{ID: "e1", ShowID: "s", ShowTitle: "Show", Title: "T", Language: "en", Text: "T. d", Date: "2023-12-05T08:00:00+01:00"}
	d, err := IndexDoc(e)
	if err != nil || d.ID != "e1" || d.ShowTitle != "Show" || d.Text != "T. d" || !d.Date.Equal(time.Date(2023, 12, 5, 7, 0, 0, 0, time.UTC)) || d.Date.Location() != time.UTC {
		t.Fatalf("IndexDoc = %+v, %v", d, err)
	}
	e.Date = "yesterday"
	if d, err := IndexDoc(e); err == nil || !d.Date.IsZero() || d.ID != "e1" {
		t.Fatalf("bad date: %+v, %v", d, err)
	}
	e.Date = ""
	if d, err := IndexDoc(e); err != nil || !d.Date.IsZero() {
		t.Fatalf("no date: %+v, %v", d, err)
	}
}
