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
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/train"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "measure retrieval (in-batch, test split, queries file, BEIR), base vs tuned side by side",
		run:     runEval,
	})
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
	adaptMode := fs.String("adapt-mode", "adapter", "with --adapt: what to train, as `train --mode`: adapter (see --kind, --both-sides) or full (the query tower; both towers with --both-sides)")
	var towerEnc *corpusembed.Encoder // --adapt-mode full's tower encoder, closed on return
	var adapterPath string
	opts := evaluate.Options{}
	fs.StringVar(&adapterPath, "adapter", "", "adapter file (from `podsearch train`) for the tuned rows")
	fs.BoolVar(&opts.Keyword, "keyword", true, "add BM25 and hybrid rows")
	fs.Float64Var(&opts.HybridWeight, "hybrid-weight", 0.3, fmt.Sprintf("dense weight of the exact-search hybrid row (min-max normalised convex combination); index rows (--index) fuse as the edge does by default (the index's calibrated fusion, else z-score with dense weight %g)", index.DefaultDenseWeight))
	fs.IntVar(&opts.MaxDocs, "max-docs", 0, "keep at most this many documents (judged ones first; optimistic scores, for cheap runs); 0: all")
	fs.IntVar(&opts.MaxQueries, "max-queries", 0, "keep at most this many queries per section (the first ones); 0: all")
	fs.IntVar(&opts.CurveK, "curve-k", 100, "largest k of the Recall@k plot")
	fusions := fs.String("fusion", "", "also fuse each side's top candidates with these normalisations (comma-separated: minmax, zscore, rank, rrf, or all), one row per normalisation and --fusion-weights value")
	fusionWeights := fs.String("fusion-weights", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", "with --fusion: dense weights, comma-separated, each in [0, 1]")
	passages := fs.Int("passages", 0, "also score each document by its best passage: its text, then for documents of at least 96 words the title with each PASSAGES words of the description (rows \"dense passages\" and, with --fusion, \"fuse ... passages\"; 0: off; 75 words are about 100 tokens)")
	fs.IntVar(&opts.FusionDepth, "fusion-depth", 0, "with --fusion: candidates taken from each side (0: max(100, 4 x the largest metric cutoff), as the index does)")
	indexDir := fs.String("index", "", "index folder (made by podsearch index) to evaluate too, with --queries or --pairs")
	fs.IntVar(&opts.IndexOptions.NProbe, "nprobe", 0, "with --index: inverted lists scanned per query (0: the index default, 16; a large number scans all)")
	fs.IntVar(&opts.IndexOptions.RerankFactor, "rerank", 0, "with --index: re-rank the k*N best PQ candidates (0: the index default, 4)")
	jsonOut := fs.Bool("json", false, "print the report as one JSON object on stdout: top-level metric keys (ndcg@10, recall@30, mrr@30, mrr@5 ...) hold the dense\n"+
		"metrics of the tuned model (else the base), merged over the sections in the order in-batch, test, queries, beir (a later\n"+
		"section wins a shared key); \"base\" and \"tuned\" hold the same per model, \"sections\" every section's, \"rows\" every row")
	prefix := fs.String("o", "", "output path prefix: also write PREFIX.json, PREFIX.md and PREFIX-recall.png (default: stdout only)")
	tf := addTrainFlags(fs)
	tw := addTowerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pairsDir == "" && *queries == "" && *beir == "" {
		return fmt.Errorf("%w: give --pairs, --queries (with --corpus) or --beir", errUsage)
	}
	if *queries != "" && *corpus == "" {
		return fmt.Errorf("%w: --queries needs --corpus", errUsage)
	}
	if *adapt && ((*beir == "") == (*corpus == "") || adapterPath != "") {
		return fmt.Errorf("%w: --adapt needs one of --beir or --corpus, and no --adapter", errUsage)
	}
	if *indexDir != "" && *queries == "" && *pairsDir == "" {
		return fmt.Errorf("%w: --index needs --queries (with --corpus) or --pairs", errUsage)
	}
	if opts.IndexOptions.NProbe < 0 || opts.IndexOptions.RerankFactor < 0 {
		return fmt.Errorf("%w: --nprobe and --rerank must be >= 0", errUsage)
	}
	if opts.HybridWeight < 0 || opts.HybridWeight > 1 || opts.CurveK < 1 {
		return fmt.Errorf("%w: --hybrid-weight must be in [0, 1] and --curve-k >= 1", errUsage)
	}
	if *adaptMode != "adapter" && *adaptMode != "full" {
		return fmt.Errorf("%w: --adapt-mode must be adapter or full", errUsage)
	}
	if err := tw.check(); err != nil {
		return err
	}
	if err := tf.check(); err != nil {
		return err
	}
	var err error
	if opts.Fusions, err = evaluate.ParseNorms(*fusions); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if opts.FusionWeights, err = parseWeights(*fusionWeights); err != nil || opts.FusionDepth < 0 {
		return fmt.Errorf("%w: --fusion-weights wants comma-separated numbers in [0, 1] and --fusion-depth >= 0", errUsage)
	}
	switch {
	case *passages < 0:
		return fmt.Errorf("%w: --passages wants a number of words >= 0", errUsage)
	case *passages > 0:
		p := evaluate.DefaultPassages
		p.Window = *passages
		opts.Passages = &p
	}
	ctx := context.Background()
	enc, err := openVecEncoder(tf)
	if err != nil {
		return err
	}
	defer enc.Close()
	if *indexDir != "" {
		if opts.Index, err = index.Open(*indexDir, "", index.OpenOptions{}); err != nil {
			return err
		}
		defer opts.Index.Close()
		opts.IndexName = filepath.Base(*indexDir)
	}
	if adapterPath != "" {
		if opts.Adapter, err = adapter.LoadFor(adapterPath, enc.Fingerprint()); err != nil {
			return err
		}
		opts.AdapterPath = adapterPath
		if opts.Adapter.Kind == adapter.Tower {
			// A tuned tower embeds the query texts itself, next to the base encoder.
			tower, err := enc.QueryTower(opts.Adapter)
			if err != nil {
				return err
			}
			defer tower.Close()
			opts.Tower = tower
		}
	}
	if *adapt {
		opts.AdaptPerDoc, opts.AdaptSeed = *perDoc, *tf.seed
		opts.Adapt = func(ctx context.Context, ps []evaluate.Pair) (evaluate.Adapted, error) {
			if *adaptMode == "full" {
				dir, err := os.MkdirTemp("", "podsearch-adapt-")
				if err != nil {
					return evaluate.Adapted{}, err
				}
				defer os.RemoveAll(dir) // the encoder has read the file by then
				res, err := adaptTower(ctx, enc, ps, dir, tf, tw, fs)
				if res.Tower != nil {
					towerEnc = res.Tower.(*corpusembed.Encoder)
				}
				return res, err
			}
			a, info, err := train.FitAdapter(ctx, enc, ps, nil, tf.adapterOptions())
			return evaluate.Adapted{Adapter: a, Info: info}, err
		}
	}
	defer func() {
		if towerEnc != nil {
			towerEnc.Close()
		}
	}()
	report, err := evaluate.Run(ctx, enc, evaluate.Inputs{PairsDir: *pairsDir, Corpus: *corpus, Queries: *queries, BEIR: *beir, Split: *split}, opts)
	if err != nil {
		return err
	}
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
