package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxCSVRecordBytes bounds one CSV record (and one line): a quoted field still open after
// this many bytes is taken for a stray quote.
const maxCSVRecordBytes = 1 << 20

// csvLine is one physical line of CSV input without its line ending.
type csvLine struct {
	text string
	n    int  // 1-based line number
	long bool // the line was longer than maxCSVRecordBytes; text is empty
}

// csvSplitter reads CSV records (RFC 4180: comma-separated, fields optionally quoted, ""
// inside a quoted field for a quote, quoted fields may span lines) so that a bad quote costs
// at most its own record. encoding/csv, even with LazyQuotes, lets one unterminated quote
// swallow every later row into one field; here a quoted field that runs onto later lines
// and then meets a quote that neither closes it nor is doubled, reaches the end of the
// input or maxCSVRecordBytes, or closes into a record of the wrong number of fields, marks
// the quote as stray: the record's first line is rejected and reading resumes at the line
// after it, so the rows it had swallowed are read as records again.
//
// Like LazyQuotes it accepts a quote inside an unquoted field, and a quote inside a
// one-line quoted field that is not followed by a comma or the line end, as a literal
// character. Blank lines are skipped, \r\n ends a line as \n does, and a line break
// inside a quoted field reads as \n.
type csvSplitter struct {
	br      *bufio.Reader
	lines   int       // lines read so far
	pending []csvLine // lines read but not yet consumed
	done    bool      // the input is exhausted (or failed: err)
	err     error     // a read error other than io.EOF
	// want is the number of fields a record should have (the header's), once known; a
	// record spanning several lines with another count is taken for a stray quote.
	want int
}

func newCSVSplitter(r io.Reader) *csvSplitter {
	return &csvSplitter{br: bufio.NewReaderSize(r, 64<<10)}
}

// readLine reads the next physical line into pending; false at the end of the input.
func (s *csvSplitter) readLine() bool {
	if s.done {
		return false
	}
	var b []byte
	long := false
	for {
		frag, err := s.br.ReadSlice('\n')
		if !long {
			if len(b)+len(frag) > maxCSVRecordBytes+2 {
				long, b = true, nil
			} else {
				b = append(b, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			s.done = true
			if err != io.EOF {
				s.err = err
			}
			if len(frag) == 0 && len(b) == 0 && !long {
				return false
			}
		}
		break
	}
	s.lines++
	text := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	s.pending = append(s.pending, csvLine{text: text, n: s.lines, long: long})
	return true
}

// fill makes pending hold at least n lines; false when the input ends first.
func (s *csvSplitter) fill(n int) bool {
	for len(s.pending) < n {
		if !s.readLine() {
			return false
		}
	}
	return true
}

// consume drops the first n pending lines.
func (s *csvSplitter) consume(n int) {
	s.pending = append(s.pending[:0], s.pending[n:]...)
}

// next returns the next record's fields and the number of its first line, or for a record
// that cannot be read, its line and why (bad; fields nil). At the end of the input it returns
// io.EOF, and a read error as it is.
func (s *csvSplitter) next() (fields []string, line int, bad string, err error) {
	for {
		if !s.fill(1) {
			if s.err != nil {
				return nil, 0, "", s.err
			}
			return nil, 0, "", io.EOF
		}
		first := s.pending[0]
		switch {
		case first.long:
			s.consume(1)
			return nil, first.n, fmt.Sprintf("line longer than %d bytes", maxCSVRecordBytes), nil
		case first.text == "":
			s.consume(1)
			continue
		}
		fields, used, why := s.parse()
		if why != "" {
			s.consume(1)
			return nil, first.n, why, nil
		}
		s.consume(used)
		return fields, first.n, "", nil
	}
}

// parse reads one record starting at the first pending line. It returns the fields and the
// number of lines they take, or why the record's quote is taken for a stray one.
func (s *csvSplitter) parse() (fields []string, used int, stray string) {
	li := 0
	text := s.pending[0].text
	size := len(text)
	pos := 0
	var field strings.Builder
	for {
		if pos < len(text) && text[pos] == '"' {
			pos++
			open := li
			// The common case, a quoted field closed on its line without a quote inside,
			// is a substring of the line.
			if j := strings.IndexByte(text[pos:], '"'); j >= 0 && (pos+j+1 == len(text) || text[pos+j+1] == ',') {
				fields = append(fields, text[pos:pos+j])
				pos += j + 1
				if pos == len(text) {
					break
				}
				pos++ // the comma
				continue
			}
		quoted:
			for {
				j := strings.IndexByte(text[pos:], '"')
				if j < 0 {
					field.WriteString(text[pos:])
					if !s.fill(li+2) || s.pending[li+1].long {
						return nil, 0, fmt.Sprintf("unterminated quoted field (quote opened on line %d never closes)", s.pending[open].n)
					}
					li++
					text, pos = s.pending[li].text, 0
					if size += len(text) + 1; size > maxCSVRecordBytes {
						return nil, 0, fmt.Sprintf("quoted field opened on line %d still open after %d bytes", s.pending[open].n, maxCSVRecordBytes)
					}
					field.WriteByte('\n')
					continue
				}
				field.WriteString(text[pos : pos+j])
				pos += j + 1
				switch {
				case pos < len(text) && text[pos] == '"':
					field.WriteByte('"') // a doubled quote
					pos++
				case pos == len(text) || text[pos] == ',':
					break quoted // the closing quote
				case li > open:
					return nil, 0, fmt.Sprintf("stray quote: the quoted field opened on line %d runs into line %d", s.pending[open].n, s.pending[li].n)
				default:
					field.WriteByte('"') // a literal quote inside a one-line quoted field
				}
			}
			fields = append(fields, field.String())
			field.Reset()
		} else {
			j := strings.IndexByte(text[pos:], ',')
			if j < 0 {
				j = len(text) - pos
			}
			fields = append(fields, text[pos:pos+j])
			pos += j
		}
		if pos == len(text) {
			break
		}
		pos++ // the comma
	}
	if li > 0 && s.want > 0 && len(fields) != s.want {
		return nil, 0, fmt.Sprintf("stray quote: a record from line %d to %d has %d fields, the header %d", s.pending[0].n, s.pending[li].n, len(fields), s.want)
	}
	return fields, li + 1, ""
}

// errNoHeader is returned for CSV input without a header row.
var errNoHeader = errors.New("no header row")
