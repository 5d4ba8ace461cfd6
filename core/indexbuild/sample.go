package indexbuild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/core/vec"
)

// ErrField is returned by ReadQueryTexts for a field other than query, description or both.
var ErrField = errors.New("the field must be query, description or both")

// QuerySampleTexts returns the query sample's texts: file's (ReadQueryTexts, the query
// field), or the corpus's own synthetic training queries (core/pairs with the defaults of
// `podsearch pairs`, train split) when file is empty, and a name for their source.
func QuerySampleTexts(file, corpus string) ([]string, string, error) {
	if file != "" {
		texts, err := ReadQueryTexts(file, "query")
		return texts, file, err
	}
	eps, err := ingest.ReadCorpus(corpus)
	if err != nil {
		return nil, "", err
	}
	ps, _ := pairs.Generate(eps, pairs.DefaultGenerators(eps, pairs.DefaultSeed), pairs.DefaultPerEpisode, nil)
	split := pairs.SplitByEpisode(ps, pairs.DefaultEvalFrac, pairs.DefaultTestFrac, pairs.DefaultSeed)
	texts := make([]string, len(split.Train))
	for i, p := range split.Train {
		texts[i] = p.Query
	}
	return texts, "synthetic training queries of " + filepath.Base(corpus), nil
}

// ReadQueryTexts reads query texts from path: a plain-text line is one query, a JSON line
// gives its query field, its description field, or both (field: query, description or
// both; ErrField otherwise). Blank lines and empty texts are skipped; a file without
// queries is an error.
func ReadQueryTexts(path, field string) ([]string, error) {
	if field != "query" && field != "description" && field != "both" {
		return nil, ErrField
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "{") { // a plain-text line is one query
			out = append(out, line)
			continue
		}
		var q struct {
			Query       string `json:"query"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			return nil, fmt.Errorf("queries %s: %w", path, err)
		}
		switch field {
		case "query":
			out = append(out, q.Query)
		case "description":
			out = append(out, q.Description)
		default:
			out = append(out, q.Query, q.Description)
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(out) == 0 {
		return nil, fmt.Errorf("queries %s: no queries", path)
	}
	return out, sc.Err()
}

// EvenSample returns at most limit of items, evenly spaced (all when limit <= 0).
func EvenSample[T any](items []T, limit int) []T {
	if limit <= 0 || len(items) <= limit {
		return items
	}
	step := float64(len(items)) / float64(limit)
	out := make([]T, limit)
	for i := range out {
		out[i] = items[int(float64(i)*step)]
	}
	return out
}

// EncodeQueries encodes query texts with the encoder on the CPU (vectors cached per model
// under $PODSEARCH_HOME/vectors; progress bars on progress, nil: none), through the query
// side of the adapter at adapterPath when given (a query tower encodes the texts itself),
// as unit vectors, and returns them row-major
// with their width. wantFP, when set, is the fingerprint the vectors must be made for (an
// index's): a mismatch is an error.
func EncodeQueries(ctx context.Context, texts []string, adapterPath, wantFP string, progress io.Writer) ([]float32, int, error) {
	if len(texts) == 0 {
		return nil, 0, errors.New("no query texts to encode")
	}
	enc, err := corpusembed.NewEncoder("cpu", filepath.Join(assets.Home(), "vectors"), DefaultBatch, progress)
	if err != nil {
		return nil, 0, err
	}
	defer enc.Close()
	fp := enc.Fingerprint()
	var ad *adapter.Adapter
	if adapterPath != "" {
		if ad, err = adapter.LoadFor(adapterPath, fp); err != nil {
			return nil, 0, err
		}
		fp = ad.Fingerprint()
	}
	if wantFP != "" && fp != wantFP {
		return nil, 0, fmt.Errorf("query vectors would come from model %s but the index was built for %s (give the --adapter it was built with)", short12(fp), short12(wantFP))
	}
	qenc := enc
	if ad != nil && ad.Kind == adapter.Tower {
		// A tuned query tower embeds the texts itself, as the encoder service serves it.
		if qenc, err = enc.QueryTower(ad); err != nil {
			return nil, 0, err
		}
		defer qenc.Close()
	}
	vs, err := qenc.Encode(ctx, "queries", texts)
	if err != nil {
		return nil, 0, err
	}
	if ad != nil && ad.Kind != adapter.Tower {
		if vs, err = ad.ApplyAll(vs, false); err != nil {
			return nil, 0, err
		}
	}
	d := len(vs[0])
	flat := make([]float32, 0, len(vs)*d)
	for _, v := range vs {
		flat = append(flat, v...)
	}
	for i := range len(vs) {
		vec.Normalize(vec.Row(flat, d, i))
	}
	return flat, d, nil
}

// short12 is the first 12 characters of a fingerprint, as logs show it.
func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
