package ingest

import (
	"strings"
	"time"
)

// dateLayouts are the publication-date forms seen in feeds and datasets: RFC 3339, SQL
// timestamps with or without zone (Taddy, Kaggle) and the RFC 822 / 1123 family that RSS
// uses, with the variants real feeds write.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
	time.RFC1123Z,
	time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04 MST",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"Mon, 02 Jan 06 15:04:05 -0700",
	time.RFC850,
	time.ANSIC,
	time.UnixDate,
}

// NormalizeDate parses a publication date in any of the common forms and returns it in
// RFC 3339, UTC; ok is false (and the result "") when the text is blank or not a date.
func NormalizeDate(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339), true
		}
	}
	return "", false
}
