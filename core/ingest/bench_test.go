package ingest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"testing"
)

// kaggleBenchCSV is a Kaggle-shaped episodes.csv of 100,000 rows (quoted descriptions with
// doubled quotes and a line break, as encoding/csv writes them).
func kaggleBenchCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"title", "audio", "audio_length", "description", "pub_date", "uuid", "podcast_uuid"})
	for i := 0; i < 100000; i++ {
		_ = w.Write([]string{fmt.Sprintf("Episode %d: a title, with comma", i), "https://a/x.mp3", "1800",
			"<p>Some description with \"quotes\" and\nnew lines, commas, and more text to make it a realistic length for a podcast episode description.</p>",
			"2018-01-01 07:00:00+00", fmt.Sprintf("e-%d", i), "p-1"})
	}
	w.Flush()
	return b.Bytes()
}

// BenchmarkCSVSplitter reads kaggleBenchCSV with the Kaggle reader's record splitter.
func BenchmarkCSVSplitter(b *testing.B) {
	data := kaggleBenchCSV()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		s := newCSVSplitter(bytes.NewReader(data))
		for {
			if _, _, _, err := s.next(); err == io.EOF {
				break
			}
		}
	}
}

// BenchmarkEncodingCSV reads kaggleBenchCSV with encoding/csv (LazyQuotes), the reader
// the splitter replaced, for comparison.
func BenchmarkEncodingCSV(b *testing.B) {
	data := kaggleBenchCSV()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		r := csv.NewReader(bytes.NewReader(data))
		r.LazyQuotes = true
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			}
		}
	}
}
