package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/core/wordnet"
)

func init() {
	register(&command{
		name:    "pairs",
		summary: "make synthetic (query, episode) pairs from a corpus, split by episode into train/eval/test",
		run:     runPairs,
	})
}

// The defaults of `podsearch pairs`, which `podsearch index` uses too for its query sample.
const (
	pairsSeed = pairs.DefaultSeed
	pairsEval = pairs.DefaultEvalFrac
	pairsTest = pairs.DefaultTestFrac
)

func runPairs(args []string) error {
	fs := newFlagSet("pairs", "--corpus corpus.jsonl -o DIR [--methods title,inverse-cloze,tfidf,wordnet]",
		"Generates --per-episode synthetic queries for every episode of the corpus with unsupervised\n"+
			"methods (title, inverse-cloze, tfidf by default; each pair tagged with its method), splits whole\n"+
			"episodes into train / eval / test, and writes DIR/train.jsonl, DIR/eval.jsonl,\n"+
			"DIR/test.jsonl (one {\"query\",\"episode_id\",\"text\",\"method\"} a line) and DIR/stats.json.\n"+
			"Eval and test keep one pair per episode and no repeated query. The method wordnet (not a\n"+
			"default) rewrites title and tfidf queries with WordNet synonyms and hypernyms; it reads the\n"+
			"WordNet files `podsearch setup` fetches. Per method, the share of query words found in the\n"+
			"pair's text goes to stderr and stats.json. See docs/ingest.md.")
	corpus := fs.String("corpus", "", "corpus file written by 'podsearch ingest'; required")
	out := fs.String("o", "", "output folder (created if missing); required")
	seed := fs.Uint64("seed", pairsSeed, "seed of the sentence choice and of the split")
	per := fs.Int("per-episode", 0, "queries per episode (default: one per method, 3 with the default methods)")
	evalFrac := fs.Float64("eval", pairsEval, "fraction of episodes for eval")
	testFrac := fs.Float64("test", pairsTest, "fraction of episodes for test")
	methods := fs.String("methods", strings.Join([]string{pairs.MethodTitle, pairs.MethodInverseCloze, pairs.MethodTFIDF}, ","),
		"generators to use, in turn order (comma-separated)")
	wordnetDir := fs.String("wordnet", assets.WordNetDir(), "WordNet database folder, for --methods ...,wordnet")
	progress := fs.Bool("progress", stderrIsTerminal(), "draw a progress bar on stderr (default: when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *corpus == "" || *out == "" {
		return fmt.Errorf("%w: --corpus and -o are required", errUsage)
	}
	methodList := strings.Split(*methods, ",")
	if *per == 0 {
		*per = len(methodList)
	}
	if *per < 1 || *evalFrac < 0 || *testFrac < 0 || *evalFrac+*testFrac >= 1 {
		return fmt.Errorf("%w: need --per-episode >= 1 and 0 <= --eval, --test with eval + test < 1", errUsage)
	}
	var bar io.Writer // nil: no progress bar
	if *progress {
		bar = os.Stderr
	}
	gst, split, err := writePairs(*corpus, *out, pairsOptions{seed: *seed, per: *per, evalFrac: *evalFrac,
		testFrac: *testFrac, methods: methodList, wordnetDir: *wordnetDir, progress: bar})
	if err != nil {
		return err
	}
	fmt.Println("pairs:", gst.String())
	fmt.Println("split:", split.String())
	fmt.Fprintln(os.Stderr, "query words found in the pair's text:", pairs.FormatOverlap(gst.Overlap))
	fmt.Printf("wrote %s/{train,eval,test}.jsonl and stats.json\n", *out)
	return nil
}

// pairsOptions are the settings of `podsearch pairs` (see its flags).
type pairsOptions struct {
	seed               uint64
	per                int
	evalFrac, testFrac float64
	methods            []string
	wordnetDir         string    // WordNet database, read only for the wordnet method
	progress           io.Writer // progress bar; nil: none
}

// defaultPairsOptions are the defaults of `podsearch pairs`.
func defaultPairsOptions(progress io.Writer) pairsOptions {
	return pairsOptions{seed: pairsSeed, per: pairs.DefaultPerEpisode, evalFrac: pairsEval, testFrac: pairsTest,
		methods: []string{pairs.MethodTitle, pairs.MethodInverseCloze, pairs.MethodTFIDF}, progress: progress}
}

// writePairs generates pairs for every episode of corpus, splits them by episode and writes
// out/{train,eval,test}.jsonl and out/stats.json.
func writePairs(corpus, out string, o pairsOptions) (pairs.GenStats, pairs.SplitStats, error) {
	eps, err := ingest.ReadCorpus(corpus)
	if err != nil {
		return pairs.GenStats{}, pairs.SplitStats{}, err
	}
	all := map[string]pairs.Generator{}
	for _, g := range pairs.DefaultGenerators(eps, o.seed) {
		all[g.Method()] = g
	}
	var gens []pairs.Generator
	for _, m := range o.methods {
		m = strings.TrimSpace(m)
		if m == pairs.MethodWordNet && all[m] == nil {
			db, err := wordnet.Open(o.wordnetDir)
			if err != nil {
				return pairs.GenStats{}, pairs.SplitStats{}, fmt.Errorf("--methods wordnet: %w", err)
			}
			all[m] = pairs.NewWordNet(db, o.seed, all[pairs.MethodTitle], all[pairs.MethodTFIDF])
		}
		g, ok := all[m]
		if !ok {
			return pairs.GenStats{}, pairs.SplitStats{}, fmt.Errorf("%w: --methods: unknown method %q", errUsage, m)
		}
		gens = append(gens, g)
	}
	ps, gst := pairs.Generate(eps, gens, o.per, o.progress)
	gst.Overlap = pairs.WordOverlap(ps)
	s := pairs.SplitByEpisode(ps, o.evalFrac, o.testFrac, o.seed)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return gst, s.Stats, err
	}
	for name, set := range map[string][]pairs.Pair{pairs.SplitTrain: s.Train, pairs.SplitEval: s.Eval, pairs.SplitTest: s.Test} {
		if err := pairs.WritePairs(filepath.Join(out, name+".jsonl"), set); err != nil {
			return gst, s.Stats, err
		}
	}
	stats, err := json.MarshalIndent(map[string]any{"corpus": corpus, "seed": o.seed, "generate": gst, "split": s.Stats}, "", "  ")
	if err != nil {
		return gst, s.Stats, err
	}
	return gst, s.Stats, os.WriteFile(filepath.Join(out, "stats.json"), append(stats, '\n'), 0o644)
}
