package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/indexbuild"
)

func init() {
	register(&command{
		name:    "index",
		summary: "embed a corpus and build the sharded IVF-PQ + BM25 index",
		run:     runIndex,
	})
}

func runIndex(args []string) error {
	fs := newFlagSet("index", "--corpus corpus.jsonl [--shards N] -o DIR [flags]",
		"Reads a corpus (JSON Lines from `podsearch ingest`), embeds every episode's text with the\n"+
			"encoder (batched, with a progress bar), trains the index model once, and writes N shards\n"+
			"(episodes assigned by a hash of their id) with metadata and a BM25 index into DIR.\n\n"+
			"Daily updates without a rebuild: --delete ID,... tombstones episodes, --update adds the\n"+
			"corpus's episodes to the index in DIR as delta segments (an id already there is replaced),\n"+
			"--compact merges each shard's segments and drops deleted episodes (in that order when\n"+
			"combined).\n\n"+
			"--calibrate FILE chooses the index's hybrid fusion (dense weight of the z-score fusion) on\n"+
			"judged queries of this corpus, through the index, and records it in the manifest: after a\n"+
			"build, or on the index in -o alone when no --corpus is given. Without it the index serves\n"+
			"the default fusion, chosen on the podcast dev queries.")
	corpus := fs.String("corpus", "", "corpus file (JSON Lines; .gz allowed)")
	outDir := fs.String("o", "", "output folder (created; an index already there is replaced)")
	def := indexbuild.DefaultOptions()
	shards := fs.Int("shards", def.Shards, "number of shards")
	batch := fs.Int("batch", def.Batch, "texts per encoder batch")
	provider := fs.String("provider", def.Provider, "ONNX Runtime execution provider: cpu or cuda (falls back to cpu)")
	adapterPath := fs.String("adapter", "", "query adapter FILE written by podsearch train: the index is recorded under the tuned model's fingerprint "+
		"(episode vectors pass through the adapter when it was trained on both sides; with --vectors they are taken as given), so edges must query it through an encoder serving the same adapter; the query sample passes through it")
	vectors := fs.String("vectors", "", "precomputed vectors (.fvecs, corpus order) instead of running the encoder")
	fingerprint := fs.String("fingerprint", "", "model fingerprint to record with --vectors (default: the --adapter's tuned model, else none)")
	config := fs.String("config", "", "`STR`: the index model's shape as a FAISS-style factory string, as bench index names its rows and the manifest records it "+
		"(e.g. IVF270,PQ128x4fs,TQ224,cosine; components IVF[n], PQ[m][x4fs|x8], SQ8|SQ4|TQ[bytes]|RFlat|none, cosine|ip|l2; "+
		"components left out take the defaults of the flags it replaces); for builds, it replaces --metric, --nlist, --m, --bits, --rerank-bits and --rerank-bytes, which it may not be combined with")
	metric := fs.String("metric", "cosine", "similarity: cosine, ip or l2 (the metric component of --config)")
	nlist := fs.Int("nlist", 0, "inverted lists (default 4*sqrt(n), at most n/39; IVF<n> in --config)")
	m := fs.Int("m", 0, "PQ sub-quantizers (default d/4 for 4-bit, d/8 for 8-bit; PQ<m> in --config)")
	bits := fs.Int("bits", 4, "PQ code bits: 4 (fast-scan) or 8 (PQ<m>x4fs or PQ<m>x8 in --config)")
	rerankBits := fs.Int("rerank-bits", 8, "re-rank codes: 8 or 4 bits per dimension (scalar-quantized), 32 for the exact float32 vectors (stored in the segments, read through the memory map for the candidates only), or -1 for none (SQ8, SQ4, RFlat, none in --config); used when --rerank-bytes is 0")
	rerankBytes := fs.Int("rerank-bytes", -1, "re-rank with transform-quantized codes of at most this many bytes per episode (PCA + bits by variance); -1: 7/16 byte per dimension (224 for 512-d: with the PQ codes and the spilled entries about 1/6 of float32); 0: use --rerank-bits (TQ<bytes> or TQ in --config)")
	querySample := fs.String("query-sample", "", "text queries (JSON Lines with a query field, or plain lines) that stand for what users will ask: they guide spilling and choose the operating point (default: the corpus's own synthetic training queries, as `podsearch pairs` makes them)")
	sampleSize := fs.Int("sample-size", def.SampleSize, "use at most this many sample queries (an even sample); a fifth of them is held out to choose the operating point")
	spillLists := fs.Int("spill-lists", def.SpillLists, "lists one episode may be stored in, its own included (query-guided spilling; 1: none)")
	spillBudget := fs.Float64("spill-budget", def.SpillBudget, "spilled entries per episode on average at most (each costs a PQ code and 4 bytes); 0: no spilling")
	targetRecall := fs.Float64("target-recall", def.TargetRecall, "choose the cheapest nprobe and re-rank factor that reach this recall@10 (against exact search) on held-out sample queries, and record it in the manifest as the index's default; when none does, rebuild with finer re-rank codes (8-bit, then float32) unless --config, --rerank-bits or --rerank-bytes chose them; 0: keep nprobe 16, re-rank 4")
	seed := fs.Uint64("seed", def.Seed, "training seed")
	update := fs.Bool("update", false, "add the corpus to the existing index in -o (delta segments) instead of building a new one")
	deleteIDs := fs.String("delete", "", "comma-separated episode ids to delete from the existing index in -o")
	calibrate := fs.String("calibrate", "", "judged queries FILE (JSON Lines with qid, query and relevant {episode id: grade}, as testdata/podcast_queries_dev.jsonl) to choose the hybrid fusion on (highest nDCG@10, ties within 0.005 to the higher Recall@30); encoded by the index's model (--adapter for a tuned one)")
	compact := fs.Bool("compact", false, "merge each shard's segments of the index in -o, dropping deleted episodes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *outDir == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}
	if *update || *deleteIDs != "" || *compact {
		if err := updateIndex(*outDir, *corpus, *vectors, *deleteIDs, *update, *compact, *batch, *provider, *adapterPath); err != nil {
			return err
		}
		return calibrateIndex(*outDir, *calibrate, *adapterPath)
	}
	if *corpus == "" {
		if *calibrate != "" {
			return calibrateIndex(*outDir, *calibrate, *adapterPath)
		}
		return fmt.Errorf("%w: --corpus is required to build an index", errUsage)
	}
	if *shards < 1 || *batch < 1 {
		return fmt.Errorf("%w: --shards and --batch must be >= 1", errUsage)
	}
	cfg, err := indexConfig(fs, *config, *metric, *nlist, *m, *bits, *rerankBits, *rerankBytes)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o := indexbuild.Options{Corpus: *corpus, Out: *outDir, Shards: *shards, Batch: *batch, Provider: *provider,
		Adapter: *adapterPath, Vectors: *vectors, Fingerprint: *fingerprint, Config: cfg, Seed: *seed,
		QuerySample: *querySample, SampleSize: *sampleSize, SpillLists: *spillLists, SpillBudget: *spillBudget,
		TargetRecall: *targetRecall, Progress: os.Stderr,
		// Recall first: finer re-rank codes when the target is out of reach, unless the
		// command line chose the codes.
		ClimbRerank: !flagSet(fs, "config") && !flagSet(fs, "rerank-bits") && !flagSet(fs, "rerank-bytes")}
	if err := indexbuild.Build(context.Background(), o); err != nil {
		return err
	}
	return calibrateIndex(*outDir, *calibrate, *adapterPath)
}

// calibrateIndex chooses the fusion of the index in dir on the judged queries in file
// (indexbuild.Calibrate); nothing when file is empty.
func calibrateIndex(dir, file, adapterPath string) error {
	if file == "" {
		return nil
	}
	_, err := indexbuild.Calibrate(context.Background(), dir, file, adapterPath, os.Stderr)
	return err
}

// modelFlags are the flags of `podsearch index` that --config replaces.
var modelFlags = []string{"metric", "nlist", "m", "bits", "rerank-bits", "rerank-bytes"}

// indexConfig is the index model's configuration: --config's factory string (index.ParseConfig)
// with the components it leaves out taken from the defaults of the other flags, or those
// flags themselves; combining --config with any of them is refused.
func indexConfig(fs *flag.FlagSet, config, metric string, nlist, m, bits, rerankBits, rerankBytes int) (index.Config, error) {
	if config == "" {
		met, err := index.ParseMetric(metric)
		if err != nil {
			return index.Config{}, err
		}
		rerank, rbytes, err := index.RerankOf(rerankBits, rerankBytes)
		if err != nil {
			return index.Config{}, err
		}
		return index.Config{Metric: met, NList: nlist, M: m, Bits: bits, Rerank: rerank, RerankBytes: rbytes}, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range modelFlags {
		if set[name] {
			return index.Config{}, fmt.Errorf("--config replaces --%s: give one or the other", name)
		}
	}
	cfg, err := index.ParseConfig(config)
	if err != nil {
		return cfg, err
	}
	def, err := indexConfig(fs, "", metric, nlist, m, bits, rerankBits, rerankBytes)
	if err != nil {
		return cfg, err
	}
	if cfg.Metric == 0 {
		cfg.Metric = def.Metric
	}
	if cfg.Bits == 0 {
		cfg.Bits = def.Bits
	}
	if cfg.Rerank == index.RerankDefault {
		cfg.Rerank, cfg.RerankBytes = def.Rerank, def.RerankBytes
	}
	return cfg, nil
}

// updateIndex deletes, adds and compacts, in that order, on the index in dir
// (index.Update), the added episodes read from corpus and embedded, or taken from vectors.
func updateIndex(dir, corpus, vectors, deleteIDs string, update, compact bool, batch int, provider, adapterPath string) error {
	if update && corpus == "" {
		return fmt.Errorf("%w: --update needs --corpus", errUsage)
	}
	o := index.UpdateOptions{Compact: compact}
	for _, id := range strings.Split(deleteIDs, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.Delete = append(o.Delete, id)
		}
	}
	if update {
		o.Add = func(d int) ([]index.Doc, []float32, string, error) {
			docs, texts, err := indexbuild.ReadCorpus(corpus)
			if err != nil {
				return nil, nil, "", err
			}
			flat, vd, fp, err := indexbuild.EpisodeVectors(context.Background(), indexbuild.Options{Vectors: vectors,
				Batch: batch, Provider: provider, Adapter: adapterPath, Progress: os.Stderr}, texts)
			if err == nil && vd != d {
				err = fmt.Errorf("the vectors have width %d, the index %d", vd, d)
			}
			return docs, flat, fp, err
		}
	}
	return index.Update(dir, o)
}
