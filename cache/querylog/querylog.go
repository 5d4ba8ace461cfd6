package querylog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/textclean"
)

// Entry is one distinct normalised query and how often the log asked it.
type Entry struct {
	Query string
	Count int64
}

// MaxLineBytes bounds one log line; longer lines are an error, not a silent cut.
const MaxLineBytes = 1 << 20

// Normalize is textclean.NormalizeQuery: the one query normalisation the edge and the
// warm-up job share.
func Normalize(q string) string { return textclean.NormalizeQuery(q) }

// Format is the layout of a query log.
type Format int

const (
	// Auto decides from the first non-empty line: a JSON object makes the file JSONL;
	// otherwise each line is TSV when its last tab-separated field is an integer, else a
	// plain query.
	Auto Format = iota
	// Lines: every line is one query, taken whole (tabs and braces included).
	Lines
	// TSV: every line is query<TAB>count.
	TSV
	// JSONL: every line is a JSON object (see the package doc).
	JSONL
	// mixed is what Auto becomes for a file that is not JSONL: plain or TSV per line.
	mixed Format = -1
)

// ParseFormat parses "auto", "lines", "tsv" or "jsonl".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "lines":
		return Lines, nil
	case "tsv":
		return TSV, nil
	case "jsonl":
		return JSONL, nil
	}
	return 0, fmt.Errorf("querylog: unknown format %q (auto, lines, tsv, jsonl)", s)
}

// Read parses a query log in the Auto format; see ReadFormat.
func Read(r io.Reader) ([]Entry, error) { return ReadFormat(r, Auto) }

// ReadFormat parses a query log from r, normalises the queries, drops empty ones, merges
// duplicates and returns them by descending count (ties in order of first appearance), so
// the most asked queries are warmed first.
func ReadFormat(r io.Reader, f Format) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	index := map[string]int{}
	var out []Entry
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if f == Auto {
			if t := bytes.TrimSpace(line); len(t) > 0 {
				f = mixed
				if t[0] == '{' && json.Valid(t) {
					f = JSONL
				}
			}
		}
		q, count, err := parseLine(line, f)
		if err != nil {
			return nil, fmt.Errorf("querylog: line %d: %w", n, err)
		}
		q = Normalize(q)
		if q == "" || count == 0 {
			continue
		}
		if i, ok := index[q]; ok {
			out[i].Count = min(out[i].Count+count, maxTotal) // saturate instead of overflowing
			continue
		}
		index[q] = len(out)
		out = append(out, Entry{Query: q, Count: count})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("querylog: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out, nil
}

// ReadFile is ReadFormat on a file, gunzipped when its name ends in .gz (as the pairs
// job's output may be).
func ReadFile(path string, f Format) ([]Entry, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var r io.Reader = file
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(file)
		if err != nil {
			return nil, fmt.Errorf("querylog: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return ReadFormat(r, f)
}

// maxCount bounds the count of one line; maxTotal the sum of one query's counts.
const (
	maxCount = 1 << 40
	maxTotal = 1 << 62
)

// parseLine returns the query and count of one line in format f.
func parseLine(line []byte, f Format) (string, int64, error) {
	if !utf8.Valid(line) {
		return "", 0, fmt.Errorf("not valid UTF-8")
	}
	switch f {
	case JSONL:
		t := bytes.TrimSpace(line)
		if len(t) == 0 {
			return "", 0, nil
		}
		return parseJSON(t)
	case TSV, mixed:
		i := bytes.LastIndexByte(line, '\t')
		if i >= 0 {
			field := strings.TrimSpace(string(line[i+1:]))
			if c, err := strconv.ParseInt(field, 10, 64); err == nil {
				if c < 0 || c > maxCount {
					return "", 0, fmt.Errorf("count %d out of range", c)
				}
				return string(line[:i]), c, nil
			}
		}
		if f == TSV && len(bytes.TrimSpace(line)) > 0 {
			return "", 0, fmt.Errorf("not query<TAB>count")
		}
	}
	return string(line), 1, nil
}

func parseJSON(line []byte) (string, int64, error) {
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", 0, fmt.Errorf("bad JSON: %v", err)
	}
	var q string
	found := false
	for _, field := range []string{"query", "q", "text"} {
		if raw, ok := rec[field]; ok {
			if err := json.Unmarshal(raw, &q); err != nil {
				return "", 0, fmt.Errorf("field %q is not a string", field)
			}
			found = true
			break
		}
	}
	if !found {
		return "", 0, fmt.Errorf(`JSON object has no "query", "q" or "text" field`)
	}
	count := int64(1)
	if raw, ok := rec["count"]; ok {
		if err := json.Unmarshal(raw, &count); err != nil {
			return "", 0, fmt.Errorf(`"count" is not an integer`)
		}
		if count < 0 || count > maxCount {
			return "", 0, fmt.Errorf("count %d out of range", count)
		}
	}
	return q, count, nil
}
