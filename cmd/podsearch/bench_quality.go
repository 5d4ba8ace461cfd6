package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	fs := newFlagSet("bench quality", "--edge URL [--queries FILE,...] [--modes default,dense,keyword] [--json]",
		"Sends every judged query ({\"qid\",\"query\",\"relevant\":{id:grade}} a line) to a running edge\n"+
			"(`make run`, `serve-edge`) as GET /v1/search?q=...&k=30 in each mode and scores the answers as\n"+
			"served: Recall@30, nDCG@10 (graded), MRR@30. `default` sends no mode (the edge's default).")
	edge := fs.String("edge", "http://127.0.0.1:8080", "edge base URL")
	files := fs.String("queries", "testdata/podcast_queries_test.jsonl,testdata/handwritten_queries.jsonl", "comma-separated judged query files")
	modes := fs.String("modes", "default,dense,keyword", "modes to measure: default (the edge's), hybrid, dense, keyword")
	asJSON := fs.Bool("json", false, "print one JSON object per file and mode")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ms := metrics.MustParseAll("recall@30", "ndcg@10", "mrr@30")
	client := &http.Client{Timeout: *timeout}
	if !*asJSON {
		fmt.Fprintf(w, "%-34s %-8s %4s %10s %8s %7s\n", "queries", "mode", "n", "Recall@30", "nDCG@10", "MRR@30")
	}
	for _, file := range splitList(*files) {
		qs, err := evaluate.ReadQueries(file)
		if err != nil {
			return err
		}
		for _, mode := range splitList(*modes) {
			n, values, err := evaluate.ScoreSearch(qs, ms, func(text string) ([]string, error) {
				return edgeSearch(context.Background(), client, *edge, text, mode)
			})
			if err != nil {
				return err
			}
			row := qualityRow{Queries: strings.TrimSuffix(filepath.Base(file), ".jsonl"), Mode: mode, N: n, Metrics: values}
			if *asJSON {
				b, err := json.Marshal(row)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(b))
				continue
			}
			fmt.Fprintf(w, "%-34s %-8s %4d %10.3f %8.3f %7.3f\n", row.Queries, row.Mode, row.N,
				row.Metrics["recall@30"], row.Metrics["ndcg@10"], row.Metrics["mrr@30"])
		}
	}
	return nil
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
