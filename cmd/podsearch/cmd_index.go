package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/core/vec"
)

// vectorsFile is the episode vectors an index folder keeps beside its segments (corpus
// order, then the episodes of each --update in order; .fvecs), for retraining and for
// `podsearch bench index --index DIR`.
const vectorsFile = "vectors.fvecs"

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
		"(episode vectors pass through the adapter when it was trained on both sides), so edges must query it through an encoder serving the same adapter")
	vectors := fs.String("vectors", "", "precomputed vectors (.fvecs, corpus order) instead of running the encoder")
	fingerprint := fs.String("fingerprint", "", "model fingerprint to record with --vectors (default: the encoder's)")
	metric := fs.String("metric", "cosine", "similarity: cosine, ip or l2")
	nlist := fs.Int("nlist", 0, "inverted lists (default 4*sqrt(n), at most n/39)")
	m := fs.Int("m", 0, "PQ sub-quantizers (default d/4 for 4-bit, d/8 for 8-bit)")
	bits := fs.Int("bits", 4, "PQ code bits: 4 (fast-scan) or 8")
	rerankBits := fs.Int("rerank-bits", 8, "re-rank codes: 8 or 4 bits per dimension (scalar-quantized), 32 for the exact float32 vectors (stored in the segments, read through the memory map for the candidates only), or -1 for none")
	rerankBytes := fs.Int("rerank-bytes", 0, "re-rank with transform-quantized codes of at most this many bytes per episode instead (PCA + bits by variance; e.g. 256 for 512-d: 1/8 of float32); 0: use --rerank-bits")
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
	met, err := index.ParseMetric(*metric)
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
	model, err := index.Train(flat, d, index.Config{Metric: met, NList: *nlist, M: *m, Bits: *bits,
		RerankBits: *rerankBits, RerankBytes: *rerankBytes, Seed: *seed, Fingerprint: fp})
	if err != nil {
		return err
	}
	slog.Info("trained", "model", model.String(), "seconds", time.Since(trainStart).Seconds())
	if err := index.Create(*outDir, model, *shards, docs, flat); err != nil {
		return err
	}
	slog.Info("index written", "dir", *outDir, "episodes", len(docs), "shards", *shards,
		"bytes_per_vector", model.BytesPerVector(), "seconds", time.Since(start).Seconds())
	return nil
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
		if docs[i], err = index.DocOf(e); err != nil {
			slog.Warn("unparseable date ignored", "err", err)
		}
		texts[i] = e.Text
	}
	return docs, texts, nil
}

// updateIndex deletes, adds and compacts, in that order, on the index in dir.
func updateIndex(dir, corpus, vectors, deleteIDs string, update, compact bool, batch int, provider, adapterPath string) error {
	if update && corpus == "" {
		return fmt.Errorf("%w: --update needs --corpus", errUsage)
	}
	ix, err := index.Open(dir, "")
	if err != nil {
		return err
	}
	defer ix.Close()
	if deleteIDs != "" {
		var ids []string
		for _, id := range strings.Split(deleteIDs, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		n, err := ix.Delete(ids)
		if err != nil {
			return err
		}
		slog.Info("deleted", "episodes", n, "asked", len(ids))
	}
	if update {
		docs, texts, err := readIndexCorpus(corpus)
		if err != nil {
			return err
		}
		var flat []float32
		d := ix.Model().D
		if vectors != "" {
			var vd int
			if flat, vd, err = vec.ReadFvecs(vectors); err != nil {
				return err
			}
			if vd != d || len(flat)/vd != len(docs) {
				return fmt.Errorf("%s holds %d vectors of width %d for %d episodes of width %d", vectors, len(flat)/vd, vd, len(docs), d)
			}
		} else {
			var fp string
			if flat, fp, err = embedCorpus(texts, batch, provider, adapterPath); err != nil {
				return err
			}
			if want := ix.Model().Fingerprint; want != "" && fp != want {
				return fmt.Errorf("%w: the index was built with model %q, the encoder is %q (rebuild the index)", index.ErrWrongModel, want, fp)
			}
		}
		if err := ix.Add(docs, flat); err != nil {
			return err
		}
		if err := appendVectors(filepath.Join(dir, vectorsFile), flat, d); err != nil {
			return fmt.Errorf("the episodes were added, but %s was not extended: %w", vectorsFile, err)
		}
		slog.Info("added", "episodes", len(docs), "segments", ix.Segments())
	}
	if compact {
		if err := ix.Compact(); err != nil {
			return err
		}
		slog.Info("compacted", "segments", ix.Segments(), "episodes", ix.Len())
	}
	return nil
}

// embedCorpus runs the encoder over texts in batches with a progress bar and returns the
// vectors row-major and the model fingerprint: the base model's, or with an adapter the
// tuned model's (the one the query side will name).
func embedCorpus(texts []string, batch int, provider, adapterPath string) ([]float32, string, error) {
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, "", err
	}
	sess, err := encoder.Open(encoder.Options{Provider: provider})
	if err != nil {
		return nil, "", err
	}
	defer sess.Close()
	var emb encoder.Embedder = sess
	fp := sess.Fingerprint()
	if adapterPath != "" {
		a, err := adapter.LoadFor(adapterPath, sess.Fingerprint())
		if err != nil {
			return nil, "", err
		}
		if emb, err = adapter.Wrap(sess, a, adapter.Doc); err != nil {
			return nil, "", err
		}
		fp = a.Fingerprint()
	}
	bar := ingest.ProgressBar(os.Stderr, len(texts), "embedding")
	last := 0
	vecs, err := encoder.EmbedTexts(context.Background(), tok, emb, texts, batch, func(done int) {
		_ = bar.Add(done - last)
		last = done
	})
	_ = bar.Finish()
	if err != nil {
		return nil, "", err
	}
	flat := make([]float32, 0, len(vecs)*encoder.Dim)
	for _, v := range vecs {
		flat = append(flat, v...)
	}
	return flat, fp, nil
}

// appendVectors appends rows of width d to the .fvecs file at path when it exists (an index
// built from --vectors elsewhere may have none); a file of another width is refused.
func appendVectors(path string, rows []float32, d int) error {
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Size()%int64(4+4*d) != 0 {
		return fmt.Errorf("%s is not a file of %d-d vectors (%d bytes)", path, d, st.Size())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if err := vec.WriteFvecs(f, rows, d); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
