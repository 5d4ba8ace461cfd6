package evaluate

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/podsearch/podsearch/core/metrics"
)

// Doc is one retrievable document (an episode, or a BEIR passage).
type Doc struct {
	ID       string
	Title    string // may be empty; pseudo-query generation uses it
	Text     string // what the encoder reads
	Language string
	// Show is the show's title when the corpus has one (ingest's show_title); may be empty.
	Show string
	// Description is the episode's description alone (ingest's description; a BEIR
	// document's text without its title); may be empty. Passages splits it.
	Description string
}

// Query is one evaluation query with its judged documents.
type Query struct {
	ID       string
	Text     string
	Relevant metrics.Qrels
	// Language and Method (how a synthetic query was made) label subset rows; may be empty.
	Language string
	Method   string
	// Kind is what a hand-written query asks for (need, show, person, place, time); it
	// labels subset rows too; may be empty.
	Kind string
	// TitleOverlap is the share of the query's content words found in the titles of its
	// relevant episodes, as recorded in the queries file (see TitleOverlap); nil when absent.
	TitleOverlap *float64
}

// maxLine bounds one JSONL line (a long episode description fits easily).
const maxLine = 16 << 20

func openLines(path string, each func(line []byte, n int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return readLines(f, path, each)
}

func readLines(r io.Reader, name string, each func(line []byte, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := each(line, n); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// corpusLine accepts the ingest corpus format (id, title, text, language) and BEIR's
// (_id, title, text).
type corpusLine struct {
	ID          string `json:"id"`
	BeirID      string `json:"_id"`
	Title       string `json:"title"`
	Text        string `json:"text"`
	Language    string `json:"language"`
	Show        string `json:"show_title"`
	Description string `json:"description"`
}

// ReadCorpus reads a JSONL corpus: the ingest command's output (id, text, language; text
// already holds the title) or a BEIR corpus.jsonl (_id, title, text; the text encoded is
// "title. text"). Duplicate ids and lines without an id or text are errors.
func ReadCorpus(path string) ([]Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCorpus(f, path)
}

// ParseCorpus is ReadCorpus on a reader; name labels errors.
func ParseCorpus(r io.Reader, name string) ([]Doc, error) {
	docs, _, err := parseCorpus(r, name, false)
	return docs, err
}

// parseCorpus is ParseCorpus; with skipEmpty a document without text is left out and its id
// returned in empty instead of being an error.
func parseCorpus(r io.Reader, name string, skipEmpty bool) (docs []Doc, empty []string, err error) {
	seen := map[string]bool{}
	err = readLines(r, name, func(line []byte, _ int) error {
		var c corpusLine
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("bad JSON: %w", err)
		}
		d := Doc{ID: c.ID, Title: strings.TrimSpace(c.Title), Text: c.Text, Language: c.Language, Show: c.Show, Description: c.Description}
		if c.BeirID != "" {
			d.ID, d.Description = c.BeirID, c.Text
			if t := strings.TrimSpace(c.Title); t != "" {
				d.Text = strings.TrimRight(t, ".") + ". " + c.Text
			}
		}
		if d.ID == "" {
			return errors.New("document without an id")
		}
		if seen[d.ID] {
			return fmt.Errorf("duplicate document id %q", d.ID)
		}
		seen[d.ID] = true
		if strings.TrimSpace(d.Text) == "" {
			if !skipEmpty {
				return fmt.Errorf("document %q has no text", d.ID)
			}
			empty = append(empty, d.ID)
			return nil
		}
		docs = append(docs, d)
		return nil
	})
	return docs, empty, err
}

type queryLine struct {
	QID          string          `json:"qid"`
	Query        string          `json:"query"`
	Relevant     map[string]int  `json:"relevant"`
	Language     string          `json:"language"`
	Lang         string          `json:"lang"`
	Kind         string          `json:"kind"`
	TitleOverlap *float64        `json:"title_overlap"`
	Note         json.RawMessage `json:"note"`
}

// ReadQueries reads a queries file: one JSON object a line,
// {"qid": "...", "query": "...", "relevant": {"<doc id>": grade, ...}} (grades >= 1 relevant;
// an optional "language" or "lang" and "kind" label subset rows; an optional
// "title_overlap" records the query's overlap with its relevant titles).
func ReadQueries(path string) ([]Query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQueries(f, path)
}

// ReadDrafts reads a queries file whose queries need not be judged yet (an empty or missing
// "relevant"), as the pool command reads queries before they are judged.
func ReadDrafts(path string) ([]Query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseQueries(f, path, false)
}

// ParseQueries is ReadQueries on a reader; name labels errors.
func ParseQueries(r io.Reader, name string) ([]Query, error) {
	return parseQueries(r, name, true)
}

func parseQueries(r io.Reader, name string, judged bool) ([]Query, error) {
	var qs []Query
	seen := map[string]bool{}
	err := readLines(r, name, func(line []byte, _ int) error {
		var q queryLine
		if err := json.Unmarshal(line, &q); err != nil {
			return fmt.Errorf("bad JSON: %w", err)
		}
		if q.QID == "" || strings.TrimSpace(q.Query) == "" {
			return errors.New("query needs a qid and a query text")
		}
		if seen[q.QID] {
			return fmt.Errorf("duplicate qid %q", q.QID)
		}
		seen[q.QID] = true
		if judged && metrics.Qrels(q.Relevant).Count() == 0 {
			return fmt.Errorf("query %q has no relevant document (grade >= 1)", q.QID)
		}
		if q.Language != "" && q.Lang != "" && q.Language != q.Lang {
			return fmt.Errorf("query %q: language %q and lang %q disagree", q.QID, q.Language, q.Lang)
		}
		if o := q.TitleOverlap; o != nil && (*o < 0 || *o > 1) {
			return fmt.Errorf("query %q: title_overlap %v outside [0, 1]", q.QID, *o)
		}
		lang := q.Language
		if lang == "" {
			lang = q.Lang
		}
		qs = append(qs, Query{ID: q.QID, Text: q.Query, Relevant: q.Relevant, Language: lang,
			Kind: q.Kind, TitleOverlap: q.TitleOverlap})
		return nil
	})
	return qs, err
}

// CheckJudged reports judged documents missing from the corpus (a typo in a queries file
// would otherwise silently lower every score).
func CheckJudged(qs []Query, docs []Doc) error {
	ids := make(map[string]bool, len(docs))
	for _, d := range docs {
		ids[d.ID] = true
	}
	var missing []string
	for _, q := range qs {
		for id, g := range q.Relevant {
			if g >= 1 && !ids[id] {
				missing = append(missing, q.ID+"->"+id)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("evaluate: %d judged documents are not in the corpus: %s", len(missing), strings.Join(first(missing, 5), ", "))
	}
	return nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ReadBEIR reads a BEIR folder: corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv (header line,
// then query-id, corpus-id, score tab separated). Only queries with a qrel of score >= 1 are
// kept, as BEIR does. Documents without text (nor title) are left out; ReadBEIRFolder
// counts them.
func ReadBEIR(dir, split string) ([]Doc, []Query, error) {
	b, err := ReadBEIRFolder(dir, split)
	if err != nil {
		return nil, nil, err
	}
	return b.Docs, b.Queries, nil
}

// BEIR is what ReadBEIRFolder read from a BEIR folder.
type BEIR struct {
	// Docs are the documents with text, Queries the queries of the split with a judged
	// document.
	Docs    []Doc
	Queries []Query
	// EmptyDocs are the ids of the documents left out because they have neither title nor
	// text (Cranfield has some): nothing can retrieve them, and a judgement of one counts
	// as a miss.
	EmptyDocs []string
}

// ReadBEIRFolder is ReadBEIR, also returning the documents it left out for having no text.
func ReadBEIRFolder(dir, split string) (*BEIR, error) {
	cpath := filepath.Join(dir, "corpus.jsonl")
	cf, err := os.Open(cpath)
	if err != nil {
		return nil, err
	}
	docs, empty, err := parseCorpus(cf, cpath, true)
	cf.Close()
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("evaluate: %s holds no document with text", cpath)
	}
	qpath := filepath.Join(dir, "qrels", split+".tsv")
	qf, err := os.Open(qpath)
	if err != nil {
		return nil, err
	}
	defer qf.Close()
	qrels, err := ParseQrels(qf, qpath)
	if err != nil {
		return nil, err
	}
	var qs []Query
	tpath := filepath.Join(dir, "queries.jsonl")
	err = openLines(tpath, func(line []byte, _ int) error {
		var q struct {
			ID   string `json:"_id"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(line, &q); err != nil {
			return fmt.Errorf("bad JSON: %w", err)
		}
		if rel, ok := qrels[q.ID]; ok && rel.Count() > 0 {
			qs = append(qs, Query{ID: q.ID, Text: q.Text, Relevant: rel})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("evaluate: %s: no query of split %q has a judged document", dir, split)
	}
	return &BEIR{Docs: docs, Queries: qs, EmptyDocs: empty}, nil
}

// ParseQrels reads a BEIR qrels TSV (a header, then query-id, corpus-id, score).
func ParseQrels(r io.Reader, name string) (map[string]metrics.Qrels, error) {
	cr := csv.NewReader(r)
	cr.Comma = '\t'
	cr.FieldsPerRecord = 3
	cr.ReuseRecord = true
	out := map[string]metrics.Qrels{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if line == 1 && rec[0] == "query-id" {
			continue
		}
		g, err := strconv.Atoi(strings.TrimSpace(rec[2]))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: score %q is not an integer", name, line, rec[2])
		}
		q, d := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if q == "" || d == "" {
			return nil, fmt.Errorf("%s:%d: empty id", name, line)
		}
		if out[q] == nil {
			out[q] = metrics.Qrels{}
		}
		out[q][d] = g
	}
	return out, nil
}
