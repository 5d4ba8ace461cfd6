package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/corpusembed"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/pairs"
	"github.com/podsearch/podsearch/core/vec"
)

// vectorsFile is the episode vectors an index folder keeps beside its segments
// (index.VectorsFile).
const vectorsFile = index.VectorsFile

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
			"combined).")
	corpus := fs.String("corpus", "", "corpus file (JSON Lines; .gz allowed)")
	outDir := fs.String("o", "", "output folder (created; an index already there is replaced)")
	shards := fs.Int("shards", 1, "number of shards")
	batch := fs.Int("batch", 32, "texts per encoder batch")
	provider := fs.String("provider", "cpu", "ONNX Runtime execution provider: cpu or cuda (falls back to cpu)")
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
	sampleSize := fs.Int("sample-size", 12000, "use at most this many sample queries (an even sample); a fifth of them is held out to choose the operating point")
	spillLists := fs.Int("spill-lists", defaultSpillLists, "lists one episode may be stored in, its own included (query-guided spilling; 1: none)")
	spillBudget := fs.Float64("spill-budget", defaultSpillBudget, "spilled entries per episode on average at most (each costs a PQ code and 4 bytes); 0: no spilling")
	targetRecall := fs.Float64("target-recall", defaultTargetRecall, "choose the cheapest nprobe and re-rank factor that reach this recall@10 (against exact search) on held-out sample queries, and record it in the manifest as the index's default; 0: keep nprobe 16, re-rank 4")
	seed := fs.Uint64("seed", 1, "training seed")
	update := fs.Bool("update", false, "add the corpus to the existing index in -o (delta segments) instead of building a new one")
	deleteIDs := fs.String("delete", "", "comma-separated episode ids to delete from the existing index in -o")
	compact := fs.Bool("compact", false, "merge each shard's segments of the index in -o, dropping deleted episodes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *outDir == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}
	if *update || *deleteIDs != "" || *compact {
		return updateIndex(*outDir, *corpus, *vectors, *deleteIDs, *update, *compact, *batch, *provider, *adapterPath)
	}
	if *corpus == "" {
		return fmt.Errorf("%w: --corpus is required to build an index", errUsage)
	}
	if *shards < 1 || *batch < 1 {
		return fmt.Errorf("%w: --shards and --batch must be >= 1", errUsage)
	}
	cfg, err := indexConfig(fs, *config, *metric, *nlist, *m, *bits, *rerankBits, *rerankBytes)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	docs, texts, err := readIndexCorpus(*corpus)
	if err != nil {
		return err
	}
	start := time.Now()
	var flat []float32
	d := encoder.Dim
	fp := *fingerprint
	if *vectors != "" {
		if flat, d, err = vec.ReadFvecs(*vectors); err != nil {
			return err
		}
		if len(flat)/d != len(docs) {
			return fmt.Errorf("%s holds %d vectors for %d episodes", *vectors, len(flat)/d, len(docs))
		}
		if fp == "" && *adapterPath != "" { // the tuned model's, as the query side names it
			a, err := adapter.Load(*adapterPath)
			if err != nil {
				return err
			}
			fp = a.Fingerprint()
		}
	} else {
		if flat, fp, err = embedCorpus(texts, *batch, *provider, *adapterPath); err != nil {
			return err
		}
		slog.Info("embedded", "episodes", len(docs), "seconds", time.Since(start).Seconds())
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	vf, err := os.Create(filepath.Join(*outDir, vectorsFile))
	if err != nil {
		return err
	}
	if err := vec.WriteFvecs(vf, flat, d); err != nil {
		vf.Close()
		return err
	}
	if err := vf.Close(); err != nil {
		return err
	}
	trainStart := time.Now()
	cfg.Seed, cfg.Fingerprint = *seed, fp
	model, err := index.Train(flat, d, cfg)
	if err != nil {
		return err
	}
	slog.Info("trained", "model", model.String(), "seconds", time.Since(trainStart).Seconds())
	qa := queryAwareOptions{sampleFile: *querySample, corpus: *corpus, sampleSize: *sampleSize, adapterPath: *adapterPath,
		fingerprint: fp, spillLists: *spillLists, spillBudget: *spillBudget, targetRecall: *targetRecall, precomputed: *vectors != ""}
	if err := buildQueryAware(context.Background(), *outDir, model, *shards, docs, flat, qa); err != nil {
		return err
	}
	slog.Info("index written", "dir", *outDir, "episodes", len(docs), "shards", *shards, "seconds", time.Since(start).Seconds())
	return nil
}

// The defaults of `podsearch index`: transform-quantized re-rank codes of 224 bytes for
// 512-d vectors (index.DefaultRerankBytes), query-guided spilling of at most 0.77 entries per
// episode (PQ128x4 codes of 64 bytes: with the spilled entries about 340 bytes per 512-d
// episode, 1/6 of float32), and an operating
// point that reaches recall@10 0.95 on held-out sample queries. `bench index` builds its
// "default" configuration from the same values.
const (
	// defaultIndexConfig is the model `podsearch index` trains without --config (the metric
	// from --metric): 4-bit fast-scan PQ of d/4 sub-quantizers, transform-quantized re-rank
	// codes of index.DefaultRerankBytes, 224 bytes for 512-d.
	defaultIndexConfig  = "IVF,PQx4fs,TQ"
	defaultSpillLists   = 4
	defaultSpillBudget  = 0.77
	defaultTargetRecall = 0.95
	// defaultHardest: the operating point is chosen on the held-out sample queries least
	// similar to any episode, the share most like listeners' text queries
	// (index.ChooseOperatingPoint).
	defaultHardest = 0.3
)

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

// splitSample splits sample query vectors (rows of d) into the four fifths that guide
// spilling and the fifth held out to choose the operating point.
func splitSample(sample []float32, d int) (guide, heldOut []float32) {
	for i := 0; i < len(sample)/d; i++ {
		if i%5 == 4 {
			heldOut = append(heldOut, vec.Row(sample, d, i)...)
		} else {
			guide = append(guide, vec.Row(sample, d, i)...)
		}
	}
	return guide, heldOut
}

// queryAwareOptions are the settings of buildQueryAware (the flags of `podsearch index`).
type queryAwareOptions struct {
	sampleFile, corpus, adapterPath, fingerprint string
	sampleSize, spillLists                       int
	spillBudget, targetRecall                    float64
	// precomputed: the episode vectors came from --vectors; without a --query-sample or an
	// --adapter (whose query side then encodes the sample) the build spills nothing and keeps
	// the default operating point (no encoder needed).
	precomputed bool
}

// buildQueryAware writes the index of docs and their vectors into dir under the guidance of
// a sample of queries: four fifths of the sample choose the episodes' secondary lists
// (query-guided spilling, within the byte budget), the other fifth, held out, chooses the
// operating point recorded in the manifest.
func buildQueryAware(ctx context.Context, dir string, model *index.Model, shards int, docs []index.Doc, flat []float32, o queryAwareOptions) error {
	wantSample := o.spillBudget > 0 && o.spillLists > 1 || o.targetRecall > 0
	if !wantSample || (o.precomputed && o.sampleFile == "" && o.adapterPath == "") {
		if err := index.Create(dir, model, shards, docs, flat); err != nil {
			return err
		}
		slog.Info("no query sample: no spilling, default operating point", "bytes_per_vector", model.BytesPerVector())
		return nil
	}
	texts, source, err := querySampleTexts(o.sampleFile, o.corpus)
	if err != nil {
		return err
	}
	set, err := encodeQueries(ctx, evenSample(texts, o.sampleSize), o.adapterPath, o.fingerprint)
	if err != nil {
		return fmt.Errorf("query sample: %w", err)
	}
	d := model.D
	guide, heldOut := splitSample(set.vectors, d)
	slog.Info("query sample", "source", source, "queries", set.n, "guide", len(guide)/d, "held_out", len(heldOut)/d)
	var extra [][]int32
	if o.spillBudget > 0 && o.spillLists > 1 {
		t0 := time.Now()
		var st index.SpillStats
		extra, st, err = model.Spill(flat, index.SpillOptions{MaxLists: o.spillLists, Queries: guide, Budget: o.spillBudget})
		if err != nil {
			return err
		}
		slog.Info("spilled", "lists_per_episode", st.ListsPerEpisode(), "entries", st.Guided, "seconds", time.Since(t0).Seconds())
	}
	if err := index.CreateSpill(dir, model, shards, docs, flat, extra); err != nil {
		return err
	}
	ix, err := index.Open(dir, "", index.OpenOptions{})
	if err != nil {
		return err
	}
	defer ix.Close()
	slog.Info("index built", "config", ix.Config(), "bytes_per_vector", ix.BytesPerVector())
	if o.targetRecall <= 0 {
		return nil
	}
	ids := make([]string, len(docs))
	for i, doc := range docs {
		ids[i] = doc.ID
	}
	t0 := time.Now()
	op, err := index.ChooseOperatingPoint(ix.Searcher(), heldOut, flat, ids, o.targetRecall, defaultHardest)
	if err != nil {
		slog.Warn("operating point below target: recording the best found", "err", err)
	}
	if err := ix.SetOperatingPoint(op); err != nil {
		return err
	}
	slog.Info("operating point", "nprobe", op.NProbe, "rerank_factor", op.RerankFactor, "recall_at_10", op.Recall,
		"target", op.Target, "queries", op.Queries, "seconds", time.Since(t0).Seconds())
	return nil
}

// querySampleTexts returns the sample's query texts: file's, or the corpus's own synthetic
// training queries (core/pairs with `podsearch pairs`' defaults, train split) when file is
// empty, and a name for their source.
func querySampleTexts(file, corpus string) ([]string, string, error) {
	if file != "" {
		texts, err := readBenchQueries(file, "query")
		return texts, file, err
	}
	eps, err := ingest.ReadCorpus(corpus)
	if err != nil {
		return nil, "", err
	}
	ps, _ := pairs.Generate(eps, pairs.DefaultGenerators(eps, pairsSeed), 3, nil)
	split := pairs.SplitByEpisode(ps, pairsEval, pairsTest, pairsSeed)
	texts := make([]string, len(split.Train))
	for i, p := range split.Train {
		texts[i] = p.Query
	}
	return texts, "synthetic training queries of " + filepath.Base(corpus), nil
}

// readIndexCorpus reads a corpus file into index documents and the texts to embed.
func readIndexCorpus(path string) ([]index.Doc, []string, error) {
	eps, err := ingest.ReadCorpus(path)
	if err != nil {
		return nil, nil, err
	}
	if len(eps) == 0 {
		return nil, nil, fmt.Errorf("%s holds no episodes", path)
	}
	docs := make([]index.Doc, len(eps))
	texts := make([]string, len(eps))
	for i, e := range eps {
		if docs[i], err = ingest.IndexDoc(e); err != nil {
			slog.Warn("unparseable date ignored", "err", err)
		}
		texts[i] = e.Text
	}
	return docs, texts, nil
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
			docs, texts, err := readIndexCorpus(corpus)
			if err != nil {
				return nil, nil, "", err
			}
			if vectors == "" {
				flat, fp, err := embedCorpus(texts, batch, provider, adapterPath)
				return docs, flat, fp, err
			}
			flat, vd, err := vec.ReadFvecs(vectors)
			if err != nil {
				return nil, nil, "", err
			}
			if vd != d || len(flat)/vd != len(docs) {
				return nil, nil, "", fmt.Errorf("%s holds %d vectors of width %d for %d episodes of width %d", vectors, len(flat)/vd, vd, len(docs), d)
			}
			return docs, flat, "", nil
		}
	}
	return index.Update(dir, o)
}

// embedCorpus embeds texts with the encoder (corpusembed.Embed) with a progress bar on
// stderr, returning the vectors row-major and the model fingerprint.
func embedCorpus(texts []string, batch int, provider, adapterPath string) ([]float32, string, error) {
	return corpusembed.Embed(context.Background(), texts, corpusembed.Options{Batch: batch, Provider: provider, Adapter: adapterPath, Progress: os.Stderr})
}
