package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/evaluate"
)

func init() {
	register(&command{
		name:    "pool",
		summary: "pool the top candidates of BM25, dense and hybrid search per query for relevance judging; write judged dev/test halves",
		run:     runPool,
	})
}

func runPool(args []string) error {
	fs := newFlagSet("pool", "--corpus FILE --queries FILE [--adapter A] [--depth 20] [--map FILE] | --corpus FILE --queries FILE --split DEV,TEST",
		"Judging queries by pooling, as TREC does. For each query of --queries (a queries file; \"relevant\" may be empty\n"+
			"or missing), takes the top --depth of BM25, dense search with the base model, dense search with the tuned model\n"+
			"(--adapter) and the hybrid (min-max convex fusion, dense weight --hybrid-weight; base and tuned), and prints the\n"+
			"union for reading, one candidate a line:\n"+
			"  cN B3 D1 H2 T- h- lang [g] title | show | start of the description\n"+
			"cN numbers the candidate within its query (--map writes {qid: [episode ids in cN order]} as JSON), the letters\n"+
			"give each system's rank (B bm25, D dense base, T dense tuned, H hybrid base, h hybrid tuned; - not in its top\n"+
			"depth), [g] a grade the queries file already gives.\n"+
			"--split DEV,TEST instead reads judged queries, records each one's title_overlap (the share of its content\n"+
			"words found in the titles of its relevant episodes), and writes them into two halves stratified by language\n"+
			"and kind (strata in (language, kind) order, queries in qid order within each, dealt alternately to DEV and TEST).")
	corpus := fs.String("corpus", "", "corpus JSONL (ingest output)")
	queries := fs.String("queries", "", "queries file, JSONL: {\"qid\", \"query\", \"lang\", \"kind\", \"relevant\"}")
	adapterPath := fs.String("adapter", "", "query adapter (podsearch train) for the tuned dense and hybrid systems")
	depth := fs.Int("depth", 20, "candidates taken from each system")
	weight := fs.Float64("hybrid-weight", 0.3, "dense weight of the hybrid system")
	snippet := fs.Int("snippet", 200, "characters of the description printed")
	only := fs.String("only", "", "comma-separated qids to print (default: all)")
	mapPath := fs.String("map", "", "write {qid: [episode id of c1, c2, ...]} as JSON to this file")
	split := fs.String("split", "", "DEV,TEST: write the judged queries, with title_overlap, into two stratified halves")
	cacheDir := fs.String("cache", filepath.Join(assets.Home(), "vectors"), "folder caching encoded vectors by model fingerprint; empty disables")
	provider := fs.String("provider", "cpu", "ONNX Runtime execution provider: cpu or cuda (falls back to cpu)")
	encodeBatch := fs.Int("encode-batch", 32, "texts per encoder call")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *corpus == "" || *queries == "" {
		return fmt.Errorf("%w: give --corpus and --queries", errUsage)
	}
	if *depth < 1 || *snippet < 0 || *weight < 0 || *weight > 1 || *encodeBatch < 1 {
		return fmt.Errorf("%w: need --depth >= 1, --snippet >= 0, --hybrid-weight in [0, 1], --encode-batch >= 1", errUsage)
	}
	docs, err := evaluate.ReadCorpus(*corpus)
	if err != nil {
		return err
	}
	if *split != "" {
		dev, test, ok := strings.Cut(*split, ",")
		if !ok || dev == "" || test == "" || dev == test {
			return fmt.Errorf("%w: --split wants two different files, DEV,TEST", errUsage)
		}
		return writeSplit(*queries, docs, dev, test)
	}
	qs, err := evaluate.ReadDrafts(*queries)
	if err != nil {
		return err
	}
	if err := evaluate.CheckJudged(qs, docs); err != nil {
		return err
	}
	enc, err := openVecEncoder(&trainFlags{provider: provider, cacheDir: cacheDir, encodeBatch: encodeBatch})
	if err != nil {
		return err
	}
	defer enc.Close()
	var ad *adapter.Adapter
	if *adapterPath != "" {
		if ad, err = adapter.LoadFor(*adapterPath, enc.Fingerprint()); err != nil {
			return err
		}
	}
	systems, letters, err := evaluate.PoolSystems(context.Background(), enc, docs, qs, ad, *depth, *weight)
	if err != nil {
		return err
	}
	pooled, err := evaluate.Pool(len(qs), *depth, systems)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			want[id] = true
		}
	}
	w := bufio.NewWriter(os.Stdout)
	ids := map[string][]string{}
	total := 0
	for qi, q := range qs {
		if len(want) > 0 && !want[q.ID] {
			continue
		}
		ids[q.ID] = make([]string, len(pooled[qi]))
		for j, c := range pooled[qi] {
			ids[q.ID][j] = docs[c.Doc].ID
		}
		total += len(pooled[qi])
		printPool(w, q, pooled[qi], docs, letters, *snippet)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	slog.Info("pooled", "queries", len(ids), "candidates", total, "depth", *depth, "systems", len(systems))
	if *mapPath != "" {
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		return os.WriteFile(*mapPath, append(b, '\n'), 0o644)
	}
	return nil
}

// printPool writes one query's candidates, one line each.
func printPool(w io.Writer, q evaluate.Query, cs []evaluate.Candidate, docs []evaluate.Doc, letters []string, snippet int) {
	fmt.Fprintf(w, "## %s [%s %s] %s\n", q.ID, q.Language, q.Kind, q.Text)
	for j, c := range cs {
		d := docs[c.Doc]
		var ranks strings.Builder
		for si, r := range c.Ranks {
			if r > 0 {
				fmt.Fprintf(&ranks, "%s%d ", letters[si], r)
			} else {
				fmt.Fprintf(&ranks, "%s- ", letters[si])
			}
		}
		grade := ""
		if g, ok := q.Relevant[d.ID]; ok {
			grade = fmt.Sprintf("[%d] ", g)
		}
		desc := strings.TrimSpace(strings.TrimPrefix(d.Text, d.Title))
		desc = strings.TrimLeft(desc, ". ")
		show := ""
		if d.Show != "" {
			show = " | " + d.Show
		}
		fmt.Fprintf(w, "c%d %s%s %s%s%s | %s\n", j+1, ranks.String(), d.Language, grade, d.Title, show, clip(desc, snippet))
	}
}

// clip shortens s to at most n characters (runes), on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// judgedLine is one line of a judged queries file as the split writes it (keys in this order).
type judgedLine struct {
	QID          string         `json:"qid"`
	Query        string         `json:"query"`
	Lang         string         `json:"lang"`
	Kind         string         `json:"kind"`
	TitleOverlap float64        `json:"title_overlap"`
	Relevant     map[string]int `json:"relevant"`
}

// writeSplit reads judged queries, records each one's title overlap and writes the two
// stratified halves; it logs counts per language and kind and the overlap statistics.
func writeSplit(path string, docs []evaluate.Doc, devPath, testPath string) error {
	qs, err := evaluate.ReadQueries(path)
	if err != nil {
		return err
	}
	if err := evaluate.CheckJudged(qs, docs); err != nil {
		return err
	}
	if err := evaluate.SetTitleOverlaps(qs, docs, path); err != nil {
		return err
	}
	dev, test := evaluate.SplitStratified(qs)
	for _, h := range []struct {
		path string
		qs   []evaluate.Query
	}{{devPath, dev}, {testPath, test}} {
		if err := writeJudged(h.path, h.qs); err != nil {
			return err
		}
	}
	fmt.Printf("all:  %s\ndev:  %s\ntest: %s\n", evaluate.SplitSummary(qs), evaluate.SplitSummary(dev), evaluate.SplitSummary(test))
	return nil
}

func writeJudged(path string, qs []evaluate.Query) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	je := json.NewEncoder(w) // one object a line
	je.SetEscapeHTML(false)
	for _, q := range qs {
		if err := je.Encode(judgedLine{QID: q.ID, Query: q.Text, Lang: q.Language, Kind: q.Kind,
			TitleOverlap: float64(int64(*q.TitleOverlap*1000+0.5)) / 1000, Relevant: q.Relevant}); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
