package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/metrics"
)

func init() {
	registerBench("quality", "judged queries through a running edge (what users get): Recall@30, nDCG@10, MRR@30 per mode", benchQuality)
}

// qualityRow is one query file and mode measured through an edge.
type qualityRow struct {
	Queries string             `json:"queries"`
	Mode    string             `json:"mode"`
	N       int                `json:"n"`
	Metrics map[string]float64 `json:"metrics"`
}

func benchQuality(args []string) error { return benchQualityTo(os.Stdout, args) }

// benchQualityTo runs `podsearch bench quality` printing its rows to w.
func benchQualityTo(w io.Writer, args []string) error {
	fs := newFlagSet("bench quality", "--edge URL [--queries FILE,...] [--modes default,dense,keyword] [--compare A,B] [--json]",
		"Sends every judged query ({\"qid\",\"query\",\"relevant\":{id:grade}} a line) to a running edge\n"+
			"(`make run`, `serve-edge`) as GET /v1/search?q=...&k=30 in each mode and scores the answers as\n"+
			"served: Recall@30, nDCG@10 (graded), MRR@30. `default` sends no mode (the edge's default).")
	edge := fs.String("edge", "http://127.0.0.1:8080", "edge base URL")
	files := fs.String("queries", "testdata/podcast_queries_test.jsonl,testdata/handwritten_queries.jsonl", "comma-separated judged query files")
	modes := fs.String("modes", "default,dense,keyword", "modes to measure: default (the edge's), hybrid, dense, keyword")
	asJSON := fs.Bool("json", false, "print one JSON object per file and mode")
	compare := fs.String("compare", "", "`A,B`: also list, per query file, every query's nDCG@10 in mode A against mode B (e.g. default,keyword), best wins first, with the wins, ties and losses and the mean difference")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var pair []string
	if *compare != "" {
		if pair = splitList(*compare); len(pair) != 2 || pair[0] == pair[1] {
			return fmt.Errorf("%w: --compare takes two different modes, A,B", errUsage)
		}
	}
	ms := metrics.MustParseAll("recall@30", "ndcg@10", "mrr@30")
	client := &http.Client{Timeout: *timeout}
	if !*asJSON {
		fmt.Fprintf(w, "%-34s %-8s %4s %10s %8s %7s\n", "queries", "mode", "n", "Recall@30", "nDCG@10", "MRR@30")
	}
	var comparisons []func() error
	for _, file := range splitList(*files) {
		qs, err := evaluate.ReadQueries(file)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		per := map[string][]map[string]float64{} // mode -> each query's values
		score := func(mode string) ([]map[string]float64, error) {
			if v, ok := per[mode]; ok {
				return v, nil
			}
			v, err := evaluate.ScoreQueries(qs, ms, func(text string) ([]string, error) {
				return edgeSearch(context.Background(), client, *edge, text, mode)
			})
			per[mode] = v
			return v, err
		}
		for _, mode := range splitList(*modes) {
			values, err := score(mode)
			if err != nil {
				return err
			}
			row := qualityRow{Queries: name, Mode: mode, N: len(values), Metrics: evaluate.MeanScores(values, ms)}
			if *asJSON {
				if err := writeJSONLine(w, row); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(w, "%-34s %-8s %4d %10.3f %8.3f %7.3f\n", row.Queries, row.Mode, row.N,
				row.Metrics["recall@30"], row.Metrics["ndcg@10"], row.Metrics["mrr@30"])
		}
		if pair == nil {
			continue
		}
		a, err := score(pair[0])
		if err != nil {
			return err
		}
		b, err := score(pair[1])
		if err != nil {
			return err
		}
		c, err := compareQueries(name, pair, qs, a, b)
		if err != nil {
			return err
		}
		// After every file's table rows.
		comparisons = append(comparisons, func() error {
			if *asJSON {
				return writeJSONLine(w, c)
			}
			c.print(w)
			return nil
		})
	}
	for _, f := range comparisons {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// writeJSONLine writes v as one line of JSON (the --json output of the commands).
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// qualityComparison is two modes' nDCG@10 on one query file, query by query.
type qualityComparison struct {
	Queries string `json:"queries"`
	// Compare names the modes, A,B; Metric the metric compared.
	Compare string `json:"compare"`
	Metric  string `json:"metric"`
	// Wins, Ties and Losses count the queries where A is ahead, level (within 0.001) and
	// behind; MeanDiff is the mean of A - B and StdErr its standard error.
	Wins     int            `json:"wins"`
	Ties     int            `json:"ties"`
	Losses   int            `json:"losses"`
	MeanDiff float64        `json:"mean_diff"`
	StdErr   float64        `json:"std_err"`
	PerQuery []queryCompare `json:"per_query"`
}

// queryCompare is one query's values in modes A and B.
type queryCompare struct {
	QID   string  `json:"qid"`
	Query string  `json:"query"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

// compareQueries pairs the nDCG@10 of modes pair[0] and pair[1] over qs, largest win first.
func compareQueries(name string, pair []string, qs []evaluate.Query, a, b []map[string]float64) (qualityComparison, error) {
	const metric = "ndcg@10"
	av, bv := make([]float64, len(qs)), make([]float64, len(qs))
	c := qualityComparison{Queries: name, Compare: strings.Join(pair, ","), Metric: metric}
	for i, q := range qs {
		av[i], bv[i] = a[i][metric], b[i][metric]
		c.PerQuery = append(c.PerQuery, queryCompare{QID: q.ID, Query: q.Text, A: av[i], B: bv[i]})
	}
	p, err := evaluate.ComparePaired(av, bv, 0.001)
	if err != nil {
		return c, err
	}
	c.Wins, c.Ties, c.Losses, c.MeanDiff, c.StdErr = p.Wins, p.Ties, p.Losses, p.Mean, p.StdErr
	slices.SortStableFunc(c.PerQuery, func(x, y queryCompare) int { return cmp.Compare(y.A-y.B, x.A-x.B) })
	return c, nil
}

// print writes the comparison as text: a summary line, then one line per query.
func (c qualityComparison) print(w io.Writer) {
	ab := strings.SplitN(c.Compare, ",", 2)
	fmt.Fprintf(w, "\n%s: %s against %s, %s per query: %d wins, %d ties, %d losses; mean difference %+.4f (standard error %.4f)\n",
		c.Queries, ab[0], ab[1], c.Metric, c.Wins, c.Ties, c.Losses, c.MeanDiff, c.StdErr)
	fmt.Fprintf(w, "%-10s %8s %8s %7s  %s\n", "qid", ab[0], ab[1], "diff", "query")
	for _, q := range c.PerQuery {
		fmt.Fprintf(w, "%-10s %8.3f %8.3f %+7.3f  %s\n", q.QID, q.A, q.B, q.A-q.B, q.Query)
	}
}

// edgeSearch returns the ids of the edge's top 30 for text in mode ("default": the edge's).
func edgeSearch(ctx context.Context, client *http.Client, base, text, mode string) ([]string, error) {
	v := url.Values{"q": {text}, "k": {"30"}}
	if mode != "default" {
		v.Set("mode", mode)
	}
	var resp *http.Response
	var body []byte
	// The edge rate-limits each client (serve-edge -rate-limit, 20/s by default): on 429,
	// wait as Retry-After says and ask again.
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/search?"+v.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if resp, err = client.Do(req); err != nil {
			return nil, err
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusTooManyRequests || attempt == 20 {
			break
		}
		wait := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("edge answered %s: %.200s", resp.Status, body)
	}
	var out struct {
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("edge answer: %w", err)
	}
	ids := make([]string, len(out.Results))
	for i, r := range out.Results {
		ids[i] = r.ID
	}
	return ids, nil
}
