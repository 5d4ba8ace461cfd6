package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/podsearch/podsearch/core/ingest"
	democorpus "github.com/podsearch/podsearch/core/ingest/demo"
)

func init() {
	register(&command{
		name:    "ingest",
		summary: "build the episode corpus (JSONL) from Kaggle CSV, RSS feeds, JSONL or the bundled demo",
		run:     runIngest,
	})
}

// repeated is a flag that may be given several times, collecting every value.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }

func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

func runIngest(args []string) error {
	fs := newFlagSet("ingest", "[--kaggle DIR] [--rss PATH ...] [--jsonl FILE] [--demo] -o corpus.jsonl",
		"Reads podcast episodes from any mix of inputs (each flag may repeat), cleans them (HTML to\n"+
			"plain text, URLs dropped, white space collapsed), composes the episode text\n"+
			"\"title. description. show title. show description\", drops empty records, repeated ids\n"+
			"and exact-duplicate texts, shuffles with --seed and writes one episode per line.\n"+
			"Everything not written goes to the rejects file with its reason. See docs/ingest.md.")
	var kaggle, rss, jsonl repeated
	fs.Var(&kaggle, "kaggle", "folder in the Kaggle layout (podcasts.csv + episodes.csv), inner-joined on the podcast id; repeatable")
	fs.Var(&rss, "rss", "RSS/iTunes feed file, or a folder of them (*.xml, *.rss, *.atom, optionally .gz); repeatable")
	fs.Var(&jsonl, "jsonl", "JSON Lines file of episodes (.gz allowed), read through --jsonl-map; repeatable")
	demo := fs.Bool("demo", false, "also ingest the bundled demo corpus (Taddy sample + 8 RSS feeds, embedded in the binary)")
	out := fs.String("o", "", "output corpus file (JSON Lines; gzip if it ends in .gz); required")
	rejects := fs.String("rejects", "", "rejects file (JSON Lines, one reject with its reason a line); default: the output name with .rejects.jsonl")
	seed := fs.Uint64("seed", ingestSeed, "seed of the deterministic shuffle of the output")
	noShuffle := fs.Bool("no-shuffle", false, "keep the input order instead of shuffling")
	strict := fs.Bool("strict", false, "fail on the first malformed row, line or feed instead of rejecting it and going on")
	keepDup := fs.Bool("keep-duplicate-texts", false, "keep episodes whose text exactly repeats an earlier one's")
	jsonlMap := fs.String("jsonl-map", "", "JSONL field mapping overrides, field=key|key,... (fields: id, show_id, show_title, show_description, title, description, date, language); default "+ingest.DefaultJSONLMapping.String())
	podFile := fs.String("kaggle-podcasts", ingest.DefaultKaggleLayout.PodcastsFile, "podcasts file name inside each --kaggle folder")
	epFile := fs.String("kaggle-episodes", ingest.DefaultKaggleLayout.EpisodesFile, "episodes file name inside each --kaggle folder")
	podMap := fs.String("kaggle-podcasts-map", "", "podcasts column overrides, field=column|column,... (fields: id, title, description, language); default "+ingest.DefaultKaggleLayout.Podcasts.String())
	epMap := fs.String("kaggle-episodes-map", "", "episodes column overrides (fields: id, show_id, title, description, date, language); default "+ingest.DefaultKaggleLayout.Episodes.String())
	progress := fs.Bool("progress", stderrIsTerminal(), "draw a progress bar on stderr (default: when stderr is a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}
	if len(kaggle)+len(rss)+len(jsonl) == 0 && !*demo {
		return fmt.Errorf("%w: give at least one input: --kaggle, --rss, --jsonl or --demo", errUsage)
	}
	jm, err := overrideMapping(ingest.DefaultJSONLMapping, *jsonlMap, "--jsonl-map")
	if err != nil {
		return err
	}
	layout := ingest.DefaultKaggleLayout
	layout.PodcastsFile, layout.EpisodesFile = *podFile, *epFile
	if layout.Podcasts, err = overrideMapping(layout.Podcasts, *podMap, "--kaggle-podcasts-map"); err != nil {
		return err
	}
	if layout.Episodes, err = overrideMapping(layout.Episodes, *epMap, "--kaggle-episodes-map"); err != nil {
		return err
	}

	var batches []*ingest.Batch
	for _, dir := range kaggle {
		b, err := ingest.ReadKaggle(dir, layout)
		if err != nil {
			return err
		}
		slog.Info("read kaggle", "dir", dir, "episodes", b.Read, "rejects", len(b.Rejects))
		batches = append(batches, b)
	}
	for _, p := range rss {
		if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
			return fmt.Errorf("%w: --rss %s: fetching URLs is not supported; download the feed and pass the file", errUsage, p)
		}
		bs, err := ingest.ReadRSSPath(p)
		if err != nil {
			return err
		}
		n := 0
		for _, b := range bs {
			n += b.Read
		}
		slog.Info("read rss", "path", p, "feeds", len(bs), "items", n)
		batches = append(batches, bs...)
	}
	for _, p := range jsonl {
		b, err := readJSONLFile(p, jm)
		if err != nil {
			return err
		}
		slog.Info("read jsonl", "file", p, "lines", b.Read)
		batches = append(batches, b)
	}
	if *demo {
		bs, err := democorpus.Batches()
		if err != nil {
			return err
		}
		batches = append(batches, bs...)
	}
	opt := ingest.Options{Seed: *seed, NoShuffle: *noShuffle, Strict: *strict, KeepDuplicateTexts: *keepDup}
	if *progress {
		opt.Progress = os.Stderr
	}
	return writeIngest(batches, opt, *out, *rejects)
}

// ingestSeed is the default seed of the output's shuffle (ingest --seed).
const ingestSeed = 42

// ingestDemo writes the bundled demo corpus (core/ingest/demo), cleaned and shuffled with
// ingest's defaults, to out and its rejects to rejects: `podsearch ingest --demo -o out
// --rejects rejects`.
func ingestDemo(out, rejects string) error {
	bs, err := democorpus.Batches()
	if err != nil {
		return err
	}
	opt := ingest.Options{Seed: ingestSeed}
	if stderrIsTerminal() {
		opt.Progress = os.Stderr
	}
	return writeIngest(bs, opt, out, rejects)
}

// writeIngest builds the corpus of batches (ingest.Build), writes it to out and its rejects
// to rejects (empty: the output name with .rejects.jsonl), and prints what happened.
func writeIngest(batches []*ingest.Batch, opt ingest.Options, out, rejects string) error {
	res, err := ingest.Build(batches, opt)
	if err != nil {
		return err
	}
	if err := ingest.WriteCorpus(out, res.Episodes); err != nil {
		return err
	}
	if rejects == "" {
		rejects = strings.TrimSuffix(strings.TrimSuffix(out, ".gz"), ".jsonl") + ".rejects.jsonl"
	}
	if err := ingest.WriteLines(rejects, res.Rejects); err != nil {
		return err
	}
	fmt.Println(res.Stats.String())
	fmt.Printf("corpus: %s (%d episodes); rejects: %s (%d)\n", out, len(res.Episodes), rejects, len(res.Rejects))
	return nil
}

// overrideMapping applies the flag's field=names overrides to base.
func overrideMapping(base ingest.Mapping, flagValue, flagName string) (ingest.Mapping, error) {
	if flagValue == "" {
		return base, nil
	}
	over, err := ingest.ParseMapping(flagValue)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, flagName, err)
	}
	return base.With(over), nil
}

func readJSONLFile(path string, m ingest.Mapping) (*ingest.Batch, error) {
	r, err := ingest.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ingest.ReadJSONL(r, path, m)
}

// stderrIsTerminal reports whether stderr is a terminal, where progress bars belong.
func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }
