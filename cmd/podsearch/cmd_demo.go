package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/evaluate/vcache"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/train"
	"github.com/podsearch/podsearch/core/vec"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "the local demo (make run): index the bundled corpus once, start an encoder and an edge",
		run:     runDemo,
	})
}

func runDemo(args []string) error {
	fs := newFlagSet("demo", "[--addr HOST:PORT] [flags]",
		"Runs the whole system on this machine: on first run it ingests the bundled real corpus\n"+
			"(10,544 Taddy episodes and 8 RSS feeds) and builds a 2-shard index under\n"+
			"$PODSEARCH_HOME/demo (progress bar; reused afterwards). It then serves the model fine-tuned\n"+
			"on the corpus: on first run it makes synthetic pairs and trains a query adapter with the\n"+
			"defaults of `podsearch pairs` and `podsearch train --corpus` (about a minute on 2 cores:\n"+
			"the episodes' vectors come from the index, the synthetic queries are encoded; progress\n"+
			"bars; reused afterwards, keyed by the model's and the corpus's fingerprints) and builds\n"+
			"the tuned index beside the base one (under a minute). --base serves the base\n"+
			"model instead; --adapter FILE serves that adapter (and wins over both). Last it starts an\n"+
			"encoder service on a free loopback port and an edge node on --addr. The cache is\n"+
			"in-process unless REDIS_URL is set. Needs `make setup` first. Ctrl-C stops both.")
	addr := fs.String("addr", "127.0.0.1:8080", "edge listen address")
	shards := fs.Int("shards", 2, "shards of the demo index (used when it is first built)")
	adapterPath := fs.String("adapter", "", "query adapter FILE written by podsearch train: serve that tuned model instead of the demo's own (its index is derived from the base one on first use)")
	base := fs.Bool("base", false, "serve the base model: skip the fine-tuned query adapter (--adapter wins over it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sess, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
	if err != nil {
		return err
	}
	fp := sess.Fingerprint()
	_ = sess.Close()
	ctx := context.Background()

	dir := filepath.Join(assets.Home(), "demo", fp[:16])
	corpus := filepath.Join(dir, "corpus.jsonl")
	indexDir := filepath.Join(dir, "index")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(corpus); err != nil {
		slog.Info("demo: ingesting the bundled corpus", "to", corpus)
		tmp := corpus + ".partial.jsonl"
		// The rejects file is named from the final corpus name, not the temporary one.
		rejects := strings.TrimSuffix(corpus, ".jsonl") + ".rejects.jsonl"
		if err := ingestDemo(tmp, rejects); err != nil {
			return fmt.Errorf("demo ingest: %w", err)
		}
		if err := os.Rename(tmp, corpus); err != nil {
			return err
		}
	}
	if demoIndexMissing(indexDir) {
		slog.Info("demo: building the index (first run only; a few minutes on 2 cores)", "to", indexDir)
		if err := indexbuild.Build(ctx, demoIndexOptions(corpus, indexDir, *shards)); err != nil {
			return fmt.Errorf("demo index: %w", err)
		}
	} else {
		slog.Info("demo: reusing the index", "dir", indexDir)
	}

	switch {
	case *adapterPath != "" && *base:
		slog.Warn("demo: --adapter wins over --base", "adapter", *adapterPath)
	case *adapterPath == "" && !*base:
		p, err := ensureDemoAdapter(ctx, dir, corpus, filepath.Join(indexDir, index.VectorsFile), fp, stderrIsTerminal())
		if err != nil {
			return fmt.Errorf("demo tuned query model (--base serves the base model): %w", err)
		}
		*adapterPath = p
	}

	enc := defaultEncoderServeOptions()
	if *adapterPath != "" {
		a, err := adapter.LoadFor(*adapterPath, fp)
		if err != nil {
			return err
		}
		tunedDir := filepath.Join(dir, "index-"+a.Fingerprint()[:16])
		if demoIndexMissing(tunedDir) {
			o := demoIndexOptions(corpus, tunedDir, *shards)
			o.Adapter = *adapterPath // with both sides, episode vectors change too: re-encode
			if !a.BothSides {
				// A query-only adapter leaves episode vectors as they are: reuse them.
				// The adapter still encodes the query sample that guides spilling and
				// chooses the operating point.
				o.Vectors, o.Fingerprint = filepath.Join(indexDir, index.VectorsFile), a.Fingerprint()
			}
			slog.Info("demo: building the tuned index", "to", tunedDir)
			if err := indexbuild.Build(ctx, o); err != nil {
				return fmt.Errorf("demo tuned index: %w", err)
			}
		}
		indexDir = tunedDir
		enc.service.adapterPath = *adapterPath
	}

	encAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	// Ctrl-C (or SIGTERM) stops both: the edge drains, the encoder finishes its batches.
	sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	encDone := make(chan error, 1)
	go func() { encDone <- serveEncoder(sctx, encAddr, enc) }()
	if err := waitReady("http://"+encAddr+"/readyz", 60*time.Second, encDone); err != nil {
		return fmt.Errorf("demo encoder: %w", err)
	}
	fmt.Printf("\npodsearch demo: search page http://%s/\n  try: curl 'http://%s/v1/search?q=eat+better+during+xmas+holidays'\n\n", *addr, *addr)
	edgeCfg := defaultEdgeConfig()
	edgeCfg.addr, edgeCfg.index, edgeCfg.corpus, edgeCfg.encoders = *addr, indexDir, corpus, encAddr
	edgeErr := serveEdge(sctx, edgeCfg)
	stop() // the edge returned (after a signal, or failing): stop the encoder too
	select {
	case err := <-encDone:
		if edgeErr == nil {
			edgeErr = err
		}
	case <-time.After(35 * time.Second):
	}
	return edgeErr
}

// demoIndexMissing reports whether the demo must (re)build the index in dir: there is none,
// or one this build cannot serve (another format version or keyword analyzer, damage).
func demoIndexMissing(dir string) bool {
	err := index.Check(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		slog.Warn("demo: rebuilding the index", "dir", dir, "reason", err)
	}
	return err != nil
}

// demoIndexOptions are the options the demo builds its indexes with: those of `podsearch
// index --corpus corpus --shards shards -o out` (indexbuild.DefaultOptions, progress bars on
// stderr).
func demoIndexOptions(corpus, out string, shards int) indexbuild.Options {
	o := indexbuild.DefaultOptions()
	o.Corpus, o.Out, o.Shards, o.Progress = corpus, out, shards, os.Stderr
	return o
}

// ensureDemoAdapter returns the path of the demo's fine-tuned query adapter for corpus and
// the base model modelFP, under dir. The first call makes synthetic pairs and trains the
// adapter with the defaults of `podsearch pairs` and `podsearch train --corpus`; later calls
// reuse it. The file is keyed by the corpus's fingerprint (dir is the model's), and an adapter
// that does not load for modelFP is trained again. vectors (may be empty) is the base
// index's episode vectors file: they seed the vector cache so that training does not encode
// the episodes again. progress draws the pairs' progress bar on stderr (encoding and
// training draw theirs always, throttled when stderr is not a terminal).
func ensureDemoAdapter(ctx context.Context, dir, corpus, vectors, modelFP string, progress bool) (string, error) {
	cfp, err := fileSHA256(corpus)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "query-"+cfp[:16]+".adapter")
	a, err := adapter.LoadFor(path, modelFP)
	if err == nil {
		slog.Info("demo: reusing the fine-tuned query model", "adapter", path, "tuned_model", short12(a.Fingerprint()))
		return path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		slog.Warn("demo: the fine-tuned query model does not load; training it again", "adapter", path, "err", err)
	}
	start := time.Now()
	pairsDir := filepath.Join(dir, "pairs-"+cfp[:16])
	if !fileExists(filepath.Join(pairsDir, "stats.json")) { // stats.json is written last
		slog.Info("demo: making synthetic (query, episode) pairs for the fine-tuned query model (first run only)", "to", pairsDir)
		var bar io.Writer
		if progress {
			bar = os.Stderr
		}
		if err := os.RemoveAll(pairsDir); err != nil {
			return "", err
		}
		gst, split, err := writePairs(corpus, pairsDir, defaultPairsOptions(bar))
		if err != nil {
			return "", fmt.Errorf("pairs: %w", err)
		}
		slog.Info("demo: pairs ready", "pairs", gst.String(), "split", split.String())
	}
	slog.Info("demo: training the query model on the pairs (first run only)", "to", path)
	tf := defaultTrainFlags()
	if vectors != "" {
		if err := seedVectorCache(ctx, *tf.cacheDir, modelFP, corpus, vectors); err != nil {
			slog.Warn("demo: the index's episode vectors do not seed the vector cache; training encodes the episodes", "err", err)
		}
	}
	a, info, err := trainAdapterFile(ctx, pairsDir, corpus, path, tf)
	if err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	slog.Info("demo: fine-tuned query model ready", "adapter", path, "tuned_model", short12(a.Fingerprint()),
		"train_loss_before", info["train_loss_before"], "train_loss_after", info["train_loss_after"],
		"eval_loss_before", info["eval_loss_before"], "eval_loss_after", info["eval_loss_after"],
		"seconds", time.Since(start).Round(time.Second).Seconds())
	return path, nil
}

// defaultTrainFlags returns the defaults of `podsearch train` (what the demo trains with).
func defaultTrainFlags() *trainFlags {
	return addTrainFlags(flag.NewFlagSet("train", flag.ContinueOnError))
}

// trainAdapterFile trains an adapter on pairsDir/train.jsonl (pairsDir/eval.jsonl, when
// present, gives a held-out loss), against corpus's full episode texts when corpus is not
// empty, and saves it to out (atomically). It returns the adapter and what happened.
func trainAdapterFile(ctx context.Context, pairsDir, corpus, out string, tf *trainFlags) (*adapter.Adapter, map[string]any, error) {
	trainPairs, evalPairs, err := train.ReadPairsDir(pairsDir, corpus)
	if err != nil {
		return nil, nil, err
	}
	enc, err := openVecEncoder(tf)
	if err != nil {
		return nil, nil, err
	}
	defer enc.Close()
	a, info, err := train.FitAdapter(ctx, enc, trainPairs, evalPairs, tf.adapterOptions())
	if err != nil {
		return nil, nil, err
	}
	if err := a.Save(out); err != nil {
		return nil, nil, err
	}
	return a, info, nil
}

// seedVectorCache stores the episode vectors of vectorsPath (an index's vectors file, in
// corpus order) in the vector cache in cacheDir under the model fingerprint fp, keyed by the
// episodes' texts, the key training looks them up by.
func seedVectorCache(ctx context.Context, cacheDir, fp, corpus, vectorsPath string) error {
	if cacheDir == "" {
		return nil
	}
	eps, err := ingest.ReadCorpus(corpus)
	if err != nil {
		return err
	}
	vecs, d, err := vec.ReadFvecs(vectorsPath)
	if err != nil {
		return err
	}
	if d != encoder.Dim || len(vecs)/d < len(eps) {
		return fmt.Errorf("%s: %d vectors of width %d for %d episodes of width %d", vectorsPath, len(vecs)/max(d, 1), d, len(eps), encoder.Dim)
	}
	byText := make(map[string][]float32, len(eps))
	texts := make([]string, 0, len(eps))
	for i, e := range eps {
		if _, ok := byText[e.Text]; !ok {
			byText[e.Text] = vec.Row(vecs, d, i)
			texts = append(texts, e.Text)
		}
	}
	c := &vcache.Cache{Dir: cacheDir}
	_, hits, err := c.GetOrCompute(ctx, fp, texts, func(_ context.Context, missing []string) ([][]float32, error) {
		out := make([][]float32, len(missing))
		for i, t := range missing {
			out[i] = byText[t]
		}
		return out, nil
	})
	if err == nil {
		slog.Info("demo: the index's episode vectors seed the vector cache", "texts", len(texts), "already_cached", hits)
	}
	return err
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// freeLoopbackAddr returns a loopback address with a port free at the time of the call.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitReady polls url until it answers 200, the server goroutine ends, or the timeout.
func waitReady(url string, timeout time.Duration, done <-chan error) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("stopped before it was ready")
			}
			return err
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", url, timeout)
}
