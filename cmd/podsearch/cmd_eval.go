package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/metrics"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "measure retrieval (in-batch, test split, queries file, BEIR), base vs tuned side by side",
		run:     runEval,
	})
}

// The metrics of each section, as the evaluation issue and the reference article name them.
var (
	inBatchMetrics = metrics.MustParseAll("mrr@5", "recall@1")
	testMetrics    = metrics.MustParseAll("recall@1", "recall@10", "recall@30", "mrr@1", "mrr@10", "mrr@30")
	queryMetrics   = metrics.MustParseAll("recall@10", "recall@30", "mrr@30", "ndcg@10")
	beirMetrics    = metrics.MustParseAll("ndcg@10", "recall@100", "mrr@10")
)

type evalOpts struct {
	adapterPath         string
	keyword             bool
	hybridWeight        float64
	maxDocs, maxQueries int
	curveK              int
	// fusions and fusionWeights, when set, add a row per normalisation and dense weight
	// fusing each side's top fusionDepth candidates (evaluate.SideLists.Fuse).
	fusions       []evaluate.Norm
	fusionWeights []float64
	fusionDepth   int
	// index, when set, adds rows searched through a built index (test and queries sections).
	index   *index.Index
	ixOpts  evaluate.IndexOptions
	baseFP  string
	ixNotes map[string]bool
	// tower encodes query texts with a tuned query tower (an adapter of kind Tower).
	tower *vecEncoder
}

func runEval(args []string) error {
	fs := newFlagSet("eval", "[--pairs DIR] [--corpus FILE --queries FILE] [--beir DIR [--adapt]] [--adapter A] [--json] [flags]",
		"Measures retrieval with the base encoder and, given an adapter (or --adapt), the tuned one, side by side.\n"+
			"  --pairs DIR: in-batch MRR@5/Recall@1 on DIR/eval.jsonl (each query ranks its episode among all eval\n"+
			"    episodes, sentence-transformers' RerankingEvaluator) and exact retrieval over the DIR/test.jsonl\n"+
			"    episodes: Recall and MRR at 1, 10, 30;\n"+
			"  --corpus FILE --queries FILE: a queries file ({\"qid\",\"query\",\"relevant\":{id:grade}} a line) against a\n"+
			"    corpus (ingest output or BEIR corpus.jsonl): Recall@10/30, MRR@30, nDCG@10;\n"+
			"  --beir DIR: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv): nDCG@10, Recall@100, MRR@10;\n"+
			"  --adapt (with --beir or --corpus): first trains an adapter on pseudo-queries made from the corpus itself,\n"+
			"    how a catalogue is adapted without labelled queries.\n"+
			"Rows for BM25 and hybrid retrieval, and per language / query method, come with the dense ones.\n"+
			"  --index DIR (with --queries or --pairs): rows searched through that index (`podsearch index`) too, for the\n"+
			"    queries and test sections: IVF-PQ + re-rank, its BM25 and its hybrid, base and tuned (a query-only adapter\n"+
			"    is served by an index of base vectors); the whole index is searched.\n"+
			"Prints the report on stdout (Markdown, or one JSON object with --json); -o PREFIX also writes PREFIX.json,\n"+
			"PREFIX.md and PREFIX-recall.png (without -o no file is written). A BEIR document with neither title nor\n"+
			"text is left out and counted in the report's notes.")
	pairsDir := fs.String("pairs", "", "pairs folder (eval.jsonl, test.jsonl) from `podsearch pairs`")
	corpus := fs.String("corpus", "", "corpus JSONL (ingest output, or a BEIR corpus.jsonl): searched by --queries; with --pairs it gives languages and the test episodes' full texts")
	queries := fs.String("queries", "", "queries file, JSONL: {\"qid\", \"query\", \"relevant\": {\"<id>\": grade}} (grade >= 1 relevant)")
	beir := fs.String("beir", "", "BEIR folder to evaluate end to end")
	split := fs.String("split", "test", "BEIR qrels split")
	adapt := fs.Bool("adapt", false, "with --beir or --corpus: first train an adapter on pseudo-queries made from that corpus's own documents (titles, inverse cloze), then evaluate base vs tuned")
	perDoc := fs.Int("adapt-per-doc", 3, "with --adapt: pseudo-queries per document")
	opts := evalOpts{}
	fs.StringVar(&opts.adapterPath, "adapter", "", "adapter file (from `podsearch train`) for the tuned rows")
	fs.BoolVar(&opts.keyword, "keyword", true, "add BM25 and hybrid rows")
	fs.Float64Var(&opts.hybridWeight, "hybrid-weight", 0.3, "dense weight of the exact-search hybrid row (min-max normalised convex combination); index rows (--index) fuse as the edge does by default (z-score, dense weight 0.5)")
	fs.IntVar(&opts.maxDocs, "max-docs", 0, "keep at most this many documents (judged ones first; optimistic scores, for cheap runs); 0: all")
	fs.IntVar(&opts.maxQueries, "max-queries", 0, "keep at most this many queries per section (the first ones); 0: all")
	fs.IntVar(&opts.curveK, "curve-k", 100, "largest k of the Recall@k plot")
	fusions := fs.String("fusion", "", "also fuse each side's top candidates with these normalisations (comma-separated: minmax, zscore, rank, rrf, or all), one row per normalisation and --fusion-weights value")
	fusionWeights := fs.String("fusion-weights", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", "with --fusion: dense weights, comma-separated, each in [0, 1]")
	fs.IntVar(&opts.fusionDepth, "fusion-depth", 0, "with --fusion: candidates taken from each side (0: max(100, 4 x the largest metric cutoff), as the index does)")
	indexDir := fs.String("index", "", "index folder (made by podsearch index) to evaluate too, with --queries or --pairs")
	fs.IntVar(&opts.ixOpts.NProbe, "nprobe", 0, "with --index: inverted lists scanned per query (0: the index default, 16; a large number scans all)")
	fs.IntVar(&opts.ixOpts.RerankFactor, "rerank", 0, "with --index: re-rank the k*N best PQ candidates (0: the index default, 4)")
	jsonOut := fs.Bool("json", false, "print the report as one JSON object on stdout: top-level metric keys (ndcg@10, recall@30, mrr@30, mrr@5 ...) hold the dense\n"+
		"metrics of the tuned model (else the base), merged over the sections in the order in-batch, test, queries, beir (a later\n"+
		"section wins a shared key); \"base\" and \"tuned\" hold the same per model, \"sections\" every section's, \"rows\" every row")
	prefix := fs.String("o", "", "output path prefix: also write PREFIX.json, PREFIX.md and PREFIX-recall.png (default: stdout only)")
	tf := addTrainFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pairsDir == "" && *queries == "" && *beir == "" {
		return fmt.Errorf("%w: give --pairs, --queries (with --corpus) or --beir", errUsage)
	}
	if *queries != "" && *corpus == "" {
		return fmt.Errorf("%w: --queries needs --corpus", errUsage)
	}
	if *adapt && ((*beir == "") == (*corpus == "") || opts.adapterPath != "") {
		return fmt.Errorf("%w: --adapt needs one of --beir or --corpus, and no --adapter", errUsage)
	}
	if *indexDir != "" && *queries == "" && *pairsDir == "" {
		return fmt.Errorf("%w: --index needs --queries (with --corpus) or --pairs", errUsage)
	}
	if opts.ixOpts.NProbe < 0 || opts.ixOpts.RerankFactor < 0 {
		return fmt.Errorf("%w: --nprobe and --rerank must be >= 0", errUsage)
	}
	if opts.hybridWeight < 0 || opts.hybridWeight > 1 || opts.curveK < 1 {
		return fmt.Errorf("%w: --hybrid-weight must be in [0, 1] and --curve-k >= 1", errUsage)
	}
	if err := tf.check(); err != nil {
		return err
	}
	var err error
	if opts.fusions, err = evaluate.ParseNorms(*fusions); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if opts.fusionWeights, err = parseWeights(*fusionWeights); err != nil || opts.fusionDepth < 0 {
		return fmt.Errorf("%w: --fusion-weights wants comma-separated numbers in [0, 1] and --fusion-depth >= 0", errUsage)
	}
	ctx := context.Background()
	enc, err := openVecEncoder(tf)
	if err != nil {
		return err
	}
	defer enc.Close()
	report := &evaluate.Report{BaseFingerprint: enc.fingerprint()}
	if *indexDir != "" {
		if opts.index, err = index.Open(*indexDir, "", index.OpenOptions{}); err != nil {
			return err
		}
		defer opts.index.Close()
		opts.baseFP = enc.fingerprint()
		opts.ixNotes = map[string]bool{}
		m := opts.index.Model()
		report.Notes = append(report.Notes, fmt.Sprintf("index %s: %d episodes, %d shards, %s", filepath.Base(*indexDir), opts.index.Len(), opts.index.Shards(), m))
	}
	var names []string
	var ad *adapter.Adapter
	if opts.adapterPath != "" {
		if ad, err = adapter.LoadFor(opts.adapterPath, enc.fingerprint()); err != nil {
			return err
		}
		report.Adapter = opts.adapterPath
		if ad.Kind == adapter.Tower {
			// A tuned tower embeds the query texts itself (through the vector cache, keyed by
			// the tower model), next to the base encoder.
			sess, err := encoder.Open(encoder.Options{ModelPath: ad.Tower.Path, Provider: *tf.provider})
			if err != nil {
				return err
			}
			defer sess.Close()
			opts.tower = &vecEncoder{tok: enc.tok, sess: sess, cache: enc.cache, batch: enc.batch}
			report.Notes = append(report.Notes, "tuned rows: the fine-tuned query tower embeds the queries; episode vectors are the base encoder's")
		}
		if t, ok := ad.Notes["pairs"]; ok {
			report.Notes = append(report.Notes, fmt.Sprintf("adapter trained on %v pairs", t))
		}
	}

	// The corpus, when given, supplies languages (per-language rows) and the episode texts
	// of the test split (what an index of the corpus holds).
	var corpusDocs []evaluate.Doc
	byID := map[string]evaluate.Doc{}
	if *corpus != "" {
		if corpusDocs, err = evaluate.ReadCorpus(*corpus); err != nil {
			return err
		}
		for _, d := range corpusDocs {
			byID[d.ID] = d
		}
	}
	lang := func(id string) string { return byID[id].Language }
	if *pairsDir != "" {
		names = append(names, "pairs "+filepath.Base(*pairsDir))
		evalPairs, err := readPairs(filepath.Join(*pairsDir, "eval.jsonl"), lang)
		if err != nil {
			return err
		}
		evalPairs = evaluate.FirstPerEpisode(evalPairs)
		docs, _ := evaluate.Episodes(evalPairs)
		in := evaluate.Set{Section: "in-batch", Docs: docs, Queries: evaluate.PairQueries(evalPairs), Metrics: inBatchMetrics}
		if err := evalSection(ctx, enc, report, in, ad, evalOpts{curveK: 0, tower: opts.tower}); err != nil {
			return err
		}
		testPairs, err := readPairs(filepath.Join(*pairsDir, "test.jsonl"), lang)
		if err != nil {
			return err
		}
		tdocs, _ := evaluate.Episodes(testPairs)
		for i, d := range tdocs {
			if c, ok := byID[d.ID]; ok {
				tdocs[i] = c
			}
		}
		test := evaluate.Set{Section: "test", Docs: tdocs, Queries: evaluate.PairQueries(testPairs), Metrics: testMetrics}
		if err := evalSection(ctx, enc, report, test, ad, opts); err != nil {
			return err
		}
	}
	if *queries != "" {
		names = append(names, "queries "+filepath.Base(*queries))
		docs := corpusDocs
		qs, err := evaluate.ReadQueries(*queries)
		if err != nil {
			return err
		}
		if err := evaluate.CheckJudged(qs, docs); err != nil {
			return err
		}
		if *adapt {
			if ad, err = adaptTo(ctx, enc, tf, report, evaluate.Subsample(docs, qs, opts.maxDocs), *perDoc); err != nil {
				return err
			}
		}
		set := evaluate.Set{Section: "queries", Docs: docs, Queries: qs, Metrics: queryMetrics, MinSubset: 3}
		if err := evalSection(ctx, enc, report, set, ad, opts); err != nil {
			return err
		}
	}
	if *beir != "" {
		names = append(names, "BEIR "+filepath.Base(*beir))
		b, err := evaluate.ReadBEIRFolder(*beir, *split)
		if err != nil {
			return err
		}
		docs, qs := b.Docs, b.Queries
		if n := len(b.EmptyDocs); n > 0 {
			ids := b.EmptyDocs[:min(n, 10)]
			slog.Warn("BEIR documents without text left out", "dir", *beir, "documents", n, "ids", ids)
			report.Notes = append(report.Notes, fmt.Sprintf("beir %s: %d documents without text left out (ids %s); a judgement of one counts as a miss",
				filepath.Base(*beir), n, strings.Join(ids, ", ")))
		}
		set := evaluate.Set{Section: "beir " + filepath.Base(*beir), Docs: docs, Queries: qs, Metrics: beirMetrics}
		opts.index = nil // an index is of the --corpus episodes, not of the BEIR folder
		if *adapt {
			if ad, err = adaptTo(ctx, enc, tf, report, evaluate.Subsample(docs, qs, opts.maxDocs), *perDoc); err != nil {
				return err
			}
		}
		if err := evalSection(ctx, enc, report, set, ad, opts); err != nil {
			return err
		}
	}
	if ad != nil {
		report.TunedFingerprint = ad.Fingerprint()
		if report.Training == nil {
			report.Training = ad.Notes
		}
	}
	report.Name = "eval: " + strings.Join(names, ", ")
	if *prefix != "" {
		if err := report.Save(*prefix); err != nil {
			return err
		}
		png := *prefix + "-recall.png"
		if len(report.Curves) > 0 {
			if err := evaluate.PlotRecall(report.Curves, "Recall@k, base vs tuned", png); err != nil {
				return err
			}
		}
		slog.Info("report written", "json", *prefix+".json", "markdown", *prefix+".md", "plot", png)
	}
	if *jsonOut {
		b, err := json.Marshal(report)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	return report.WriteMarkdown(os.Stdout)
}

// adaptTo trains an adapter on pseudo-queries made from docs (the --adapt recipe) and
// records the training in the report.
func adaptTo(ctx context.Context, enc *vecEncoder, tf *trainFlags, report *evaluate.Report, docs []evaluate.Doc, perDoc int) (*adapter.Adapter, error) {
	pseudo := evaluate.PseudoPairs(docs, perDoc, *tf.seed)
	evaluate.UseDocTexts(pseudo, docs) // train against the vectors the index serves
	slog.Info("adapt: pseudo-queries from the corpus", "documents", len(docs), "pairs", len(pseudo))
	a, info, err := fitAdapter(ctx, enc, tf, pseudo, nil)
	if err != nil {
		return nil, err
	}
	report.Training = info
	report.Adapter = "--adapt (pseudo-queries from the corpus: title, inverse cloze)"
	return a, nil
}

// evalSection encodes a set's documents and queries (cached) and adds its dense, BM25 and
// hybrid rows, base and tuned, to the report.
func evalSection(ctx context.Context, enc *vecEncoder, report *evaluate.Report, s evaluate.Set, ad *adapter.Adapter, o evalOpts) error {
	s.Docs = evaluate.Subsample(s.Docs, s.Queries, o.maxDocs)
	if o.maxQueries > 0 && len(s.Queries) > o.maxQueries {
		s.Queries = s.Queries[:o.maxQueries]
	}
	if o.maxDocs > 0 {
		report.Notes = append(report.Notes, fmt.Sprintf("%s: subsampled to %d documents (optimistic)", s.Section, len(s.Docs)))
	}
	dtexts := make([]string, len(s.Docs))
	for i, d := range s.Docs {
		dtexts[i] = d.Text
	}
	qtexts := make([]string, len(s.Queries))
	for i, q := range s.Queries {
		qtexts[i] = q.Text
	}
	dv, err := enc.encode(ctx, s.Section+" documents", dtexts)
	if err != nil {
		return err
	}
	qv, err := enc.encode(ctx, s.Section+" queries", qtexts)
	if err != nil {
		return err
	}
	var tq, td [][]float32 // the tuned model's query and document vectors
	if ad != nil && ad.Kind == adapter.Tower {
		if o.tower == nil {
			return fmt.Errorf("eval: a query tower needs its encoder")
		}
		if tq, err = o.tower.encode(ctx, s.Section+" queries (tuned tower)", qtexts); err != nil {
			return err
		}
		td = dv
		if err := denseRows(report, s, qv, dv, evaluate.Base, o.curveK); err != nil {
			return err
		}
		if err := denseRows(report, s, tq, td, evaluate.Tuned, o.curveK); err != nil {
			return err
		}
	} else {
		rows, curves, err := evaluate.Dense(s, qv, dv, ad, o.curveK)
		if err != nil {
			return err
		}
		report.Rows = append(report.Rows, rows...)
		report.Curves = append(report.Curves, curves...)
		if ad != nil {
			if tq, err = ad.ApplyAll(qv, false); err != nil {
				return err
			}
			if td, err = ad.ApplyAll(dv, true); err != nil {
				return err
			}
		}
	}
	if err := indexRows(report, s, qv, tq, ad, o); err != nil {
		return err
	}
	if !o.keyword {
		return nil
	}
	k := max(metrics.MaxK(s.Metrics), o.curveK)
	kw := evaluate.BM25(s.Docs, s.Queries)
	ranked := evaluate.RankSparse(kw, len(s.Docs), k)
	r, err := s.Score("bm25", "-", ranked)
	if err != nil {
		return err
	}
	report.Rows = append(report.Rows, r...)
	if o.curveK > 0 {
		report.Curves = append(report.Curves, evaluate.Curve{Label: s.Section + " bm25", Recall: s.RecallCurve(ranked, o.curveK)})
	}
	variants := []struct {
		model  string
		qv, dv [][]float32
	}{{evaluate.Base, qv, dv}}
	if ad != nil {
		variants = append(variants, struct {
			model  string
			qv, dv [][]float32
		}{evaluate.Tuned, tq, td})
	}
	for _, v := range variants {
		ranked, err := evaluate.Hybrid(v.qv, v.dv, kw, o.hybridWeight, k)
		if err != nil {
			return err
		}
		r, err := s.Score(fmt.Sprintf("hybrid w%.1f", o.hybridWeight), v.model, ranked)
		if err != nil {
			return err
		}
		report.Rows = append(report.Rows, r...)
		if err := fusionRows(report, s, v.model, v.qv, v.dv, kw, o); err != nil {
			return err
		}
	}
	return nil
}

// fusionRows adds a row per normalisation and dense weight of o.fusions and o.fusionWeights:
// each side's top candidates fused as a search node fuses them (evaluate.SideLists.Fuse).
func fusionRows(report *evaluate.Report, s evaluate.Set, model string, qv, dv [][]float32, kw []evaluate.Sparse, o evalOpts) error {
	if len(o.fusions) == 0 {
		return nil
	}
	k := metrics.MaxK(s.Metrics)
	depth := o.fusionDepth
	if depth == 0 {
		depth = max(100, 4*k)
	}
	lists, err := evaluate.CandidateLists(qv, dv, kw, depth)
	if err != nil {
		return err
	}
	for _, n := range o.fusions {
		for _, w := range o.fusionWeights {
			ranked, err := lists.Fuse(evaluate.FuseOptions{Norm: n, DenseWeight: w}, k)
			if err != nil {
				return err
			}
			r, err := s.Score(fmt.Sprintf("fuse %s w%.2f", n, w), model, ranked)
			if err != nil {
				return err
			}
			report.Rows = append(report.Rows, r...)
		}
	}
	return nil
}

// parseWeights reads comma-separated dense weights, each in [0, 1].
func parseWeights(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		w, err := strconv.ParseFloat(f, 64)
		if err != nil || w < 0 || w > 1 {
			return nil, fmt.Errorf("bad weight %q", f)
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no weight")
	}
	return out, nil
}

// denseRows adds the exact dense rows (and Recall curve) of one model's query and document
// vectors, labelled model.
func denseRows(report *evaluate.Report, s evaluate.Set, qv, dv [][]float32, model string, curveK int) error {
	rows, curves, err := evaluate.Dense(s, qv, dv, nil, curveK)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Model = model
	}
	for i := range curves {
		curves[i].Label = strings.TrimSuffix(curves[i].Label, evaluate.Base) + model
	}
	report.Rows = append(report.Rows, rows...)
	report.Curves = append(report.Curves, curves...)
	return nil
}

// indexRows adds the rows of o.index (when set) to the report: the models it can serve are
// those whose episode vectors it holds (its recorded fingerprint is the base encoder's, which
// also serves a query-only adapter, or the tuned model's).
func indexRows(report *evaluate.Report, s evaluate.Set, qv, tq [][]float32, ad *adapter.Adapter, o evalOpts) error {
	if o.index == nil {
		return nil
	}
	note := func(n string) {
		if !o.ixNotes[n] {
			o.ixNotes[n] = true
			report.Notes = append(report.Notes, n)
		}
	}
	fp := o.index.Model().Fingerprint
	var models []evaluate.ModelQueries
	tuned := func() error {
		models = append(models, evaluate.ModelQueries{Model: evaluate.Tuned, Vectors: tq})
		return nil
	}
	switch {
	case fp == o.baseFP || fp == "":
		if fp == "" {
			note("the index records no model fingerprint: searched as if built with the base encoder")
		}
		models = append(models, evaluate.ModelQueries{Model: evaluate.Base, Vectors: qv})
		if ad != nil && ad.BothSides {
			note("no tuned index rows: the adapter maps episode vectors too, so the index must be built through it")
		} else if ad != nil {
			if err := tuned(); err != nil {
				return err
			}
		}
	case ad != nil && fp == ad.Fingerprint():
		note("the index was built for the tuned model: no base index rows")
		if err := tuned(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: the index was built with model %q, the encoder is %q (rebuild the index, or pass its adapter)", index.ErrWrongModel, fp, o.baseFP)
	}
	if n := o.index.Len(); n != len(s.Docs) {
		note(fmt.Sprintf("%s: index rows search the whole index (%d episodes), the other rows the section's %d documents", s.Section, n, len(s.Docs)))
	}
	rows, err := evaluate.IndexRows(s, o.index.Searcher(), models, o.ixOpts)
	if err != nil {
		return err
	}
	report.Rows = append(report.Rows, rows...)
	return nil
}
