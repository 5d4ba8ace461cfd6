package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Episode is one line of the corpus file: a cleaned podcast episode ready to embed.
type Episode struct {
	// ID is the source's own episode id: the Kaggle episode id, the RSS guid (else the
	// enclosure URL or link), the JSONL id field (Taddy: uuid).
	ID string `json:"id"`
	// ShowID is the source's id of the show (podcast): Kaggle podcast id, the feed's own URL,
	// the JSONL show id field (Taddy: series_uuid). May be empty for JSONL without one.
	ShowID string `json:"show_id"`
	// ShowTitle is the show's cleaned title; empty when the source has none (Taddy).
	ShowTitle string `json:"show_title"`
	// ShowDescription is the show's cleaned description; empty when the source has none.
	ShowDescription string `json:"show_description,omitempty"`
	// Title is the episode's cleaned title.
	Title string `json:"title"`
	// Description is the episode's cleaned description (plain text).
	Description string `json:"description"`
	// Text is what gets embedded: "title. description. show title. show description"
	// with empty parts left out.
	Text string `json:"text"`
	// Language is an ISO 639-1 code ("en", "de", ...), "und" when unknown.
	Language string `json:"language"`
	// LanguageFrom says where Language came from: "source" (feed or column tag) or
	// "detected" (guessed from the text); empty when unknown.
	LanguageFrom string `json:"language_from,omitempty"`
	// Date is the publication time in RFC 3339, UTC; empty when absent or unparseable.
	Date string `json:"date"`
	// Source is the input layout the episode came from: "kaggle", "rss" or "jsonl".
	Source string `json:"source"`
}

// ReadCorpus reads a corpus file (JSON Lines of Episode; gzip when the name ends in .gz).
func ReadCorpus(path string) ([]Episode, error) {
	return ReadLines[Episode](path)
}

// WriteCorpus writes episodes as a corpus file (JSON Lines; gzip when the name ends in .gz).
func WriteCorpus(path string, episodes []Episode) error {
	return WriteLines(path, episodes)
}

// ReadLines reads a JSON Lines file of T, one value a line (blank lines skipped); a file
// whose name ends in .gz is gunzipped. A bad line is an error naming the file and line.
func ReadLines[T any](path string) ([]T, error) {
	rc, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []T
	err = eachLine(rc, func(n int, line []byte) error {
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// WriteLines writes items as JSON Lines to path (gzip when the name ends in .gz),
// replacing the file.
func WriteLines[T any](path string, items []T) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	var w io.Writer = f
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw = gzip.NewWriter(f)
		w = zw
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			return fmt.Errorf("%s: item %d: %w", path, i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// Open opens path for reading, gunzipping it when its name ends in .gz.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &gzipFile{Reader: zr, f: f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzipFile) Close() error {
	return errors.Join(g.Reader.Close(), g.f.Close())
}

// eachLine calls fn with every non-blank line of r (without its line break) and its
// 1-based line number; lines may be of any length.
func eachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if ferr := fn(n, t); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
