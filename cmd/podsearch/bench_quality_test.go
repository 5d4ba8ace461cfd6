package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchQualityScoresWhatTheEdgeAnswers: the command sends each query with k=30 and the
// mode (none for default) and scores the ids the server answers: a server that returns the
// relevant episode first for one query and nothing relevant for the other gives Recall@30
// and MRR@30 of 0.5.
func TestBenchQualityScoresWhatTheEdgeAnswers(t *testing.T) {
	var modes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" || r.URL.Query().Get("k") != "30" {
			http.Error(w, "bad request", 400)
			return
		}
		modes = append(modes, r.URL.Query().Get("mode"))
		ids := []string{"x", "y"}
		if r.URL.Query().Get("q") == "first query" {
			ids = []string{"a", "x"}
		}
		var out struct {
			Results []map[string]string `json:"results"`
		}
		for _, id := range ids {
			out.Results = append(out.Results, map[string]string{"id": id})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "q.jsonl")
	lines := `{"qid":"1","query":"first query","relevant":{"a":2}}` + "\n" + `{"qid":"2","query":"second query","relevant":{"b":1}}` + "\n"
	if err := os.WriteFile(file, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := benchQualityTo(&out, []string{"--edge", srv.URL, "--queries", file, "--modes", "default,dense", "--json"}); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(rows) != 2 || strings.Join(modes, ",") != ",,dense,dense" {
		t.Fatalf("rows %q, modes sent %q", rows, modes)
	}
	var r qualityRow
	if err := json.Unmarshal([]byte(rows[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.N != 2 || r.Metrics["recall@30"] != 0.5 || r.Metrics["mrr@30"] != 0.5 || r.Mode != "default" {
		t.Fatalf("row %+v", r)
	}
	if err := benchQualityTo(&out, []string{"--edge", srv.URL + "/nowhere", "--queries", file}); err == nil {
		t.Fatal("an edge answering 404 was scored")
	}

	// --compare default,dense: the same answers in both modes, so every query ties; each mode
	// is asked once even when --modes names it too.
	modes = nil
	out.Reset()
	if err := benchQualityTo(&out, []string{"--edge", srv.URL, "--queries", file, "--modes", "default", "--compare", "default,dense", "--json"}); err != nil {
		t.Fatal(err)
	}
	rows = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(rows) != 2 || strings.Join(modes, ",") != ",,dense,dense" {
		t.Fatalf("rows %q, modes sent %q", rows, modes)
	}
	var c qualityComparison
	if err := json.Unmarshal([]byte(rows[1]), &c); err != nil {
		t.Fatal(err)
	}
	if c.Compare != "default,dense" || c.Ties != 2 || c.Wins+c.Losses != 0 || len(c.PerQuery) != 2 || c.PerQuery[0].A != c.PerQuery[0].B {
		t.Fatalf("comparison %+v", c)
	}
	out.Reset()
	if err := benchQualityTo(&out, []string{"--edge", srv.URL, "--queries", file, "--modes", "keyword", "--compare", "default,dense"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "q: default against dense, ndcg@10 per query: 0 wins, 2 ties, 0 losses") {
		t.Fatalf("text comparison:\n%s", out.String())
	}
	for _, bad := range []string{"default", "default,default", "a,b,c"} {
		if err := benchQualityTo(&out, []string{"--edge", srv.URL, "--queries", file, "--compare", bad}); err == nil {
			t.Errorf("--compare %q accepted", bad)
		}
	}
}

// TestEdgeSearchWaitsOutRateLimit: serve-edge rate-limits clients by default; a 429 with
// Retry-After is waited out and asked again, not a failed query.
func TestEdgeSearchWaitsOutRateLimit(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"rate limit"}`, http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`{"results":[{"id":"a"}]}`))
	}))
	defer srv.Close()
	ids, err := edgeSearch(t.Context(), srv.Client(), srv.URL, "q", "dense")
	if err != nil || len(ids) != 1 || ids[0] != "a" || calls != 2 {
		t.Fatalf("ids %v, err %v, %d calls; want [a] after one retry", ids, err, calls)
	}
}
