package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
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
			"$PODSEARCH_HOME/demo (progress bar; reused afterwards), then starts an encoder service on a\n"+
			"free loopback port and an edge node on --addr. The cache is in-process unless REDIS_URL is\n"+
			"set. Needs `make setup` first. Ctrl-C stops both.")
	addr := fs.String("addr", "127.0.0.1:8080", "edge listen address")
	shards := fs.Int("shards", 2, "shards of the demo index (used when it is first built)")
	adapterPath := fs.String("adapter", "", "query adapter FILE written by podsearch train: serve the tuned model (its index is derived from the base one on first use)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sess, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
	if err != nil {
		return err
	}
	fp := sess.Fingerprint()
	_ = sess.Close()

	dir := filepath.Join(assets.Home(), "demo", fp[:16])
	corpus := filepath.Join(dir, "corpus.jsonl")
	indexDir := filepath.Join(dir, "index")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(corpus); err != nil {
		slog.Info("demo: ingesting the bundled corpus", "to", corpus)
		tmp := corpus + ".partial.jsonl"
		if err := runIngest([]string{"--demo", "-o", tmp}); err != nil {
			return fmt.Errorf("demo ingest: %w", err)
		}
		if err := os.Rename(tmp, corpus); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(indexDir, index.ManifestName)); err != nil {
		slog.Info("demo: building the index (first run only; a few minutes on 2 cores)", "to", indexDir)
		if err := runIndex([]string{"--corpus", corpus, "--shards", fmt.Sprint(*shards), "-o", indexDir}); err != nil {
			return fmt.Errorf("demo index: %w", err)
		}
	} else {
		slog.Info("demo: reusing the index", "dir", indexDir)
	}

	var encArgs []string
	if *adapterPath != "" {
		a, err := adapter.LoadFor(*adapterPath, fp)
		if err != nil {
			return err
		}
		tunedDir := filepath.Join(dir, "index-"+a.Fingerprint()[:16])
		if _, err := os.Stat(filepath.Join(tunedDir, index.ManifestName)); err != nil {
			args := []string{"--corpus", corpus, "--shards", fmt.Sprint(*shards), "-o", tunedDir}
			if a.BothSides {
				args = append(args, "--adapter", *adapterPath) // episode vectors change too: re-encode
			} else {
				// A query-only adapter leaves episode vectors as they are: reuse them.
				// The adapter still encodes the query sample that guides spilling and
				// chooses the operating point.
				args = append(args, "--vectors", filepath.Join(indexDir, vectorsFile), "--fingerprint", a.Fingerprint(), "--adapter", *adapterPath)
			}
			slog.Info("demo: building the tuned index", "to", tunedDir)
			if err := runIndex(args); err != nil {
				return fmt.Errorf("demo tuned index: %w", err)
			}
		}
		indexDir = tunedDir
		encArgs = append(encArgs, "--adapter", *adapterPath)
	}

	encAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	encDone := make(chan error, 1)
	go func() { encDone <- runServeEncoder(append([]string{"--addr", encAddr}, encArgs...)) }()
	if err := waitReady("http://"+encAddr+"/readyz", 60*time.Second, encDone); err != nil {
		return fmt.Errorf("demo encoder: %w", err)
	}
	fmt.Printf("\npodsearch demo: search page http://%s/\n  try: curl 'http://%s/v1/search?q=eat+better+during+xmas+holidays'\n\n", *addr, *addr)
	edgeErr := runServeEdge([]string{"-addr", *addr, "-index", indexDir, "-corpus", corpus, "-encoder", encAddr})
	// The edge returns after SIGINT/SIGTERM, which the encoder also received.
	select {
	case err := <-encDone:
		if edgeErr == nil {
			edgeErr = err
		}
	case <-time.After(35 * time.Second):
	}
	return edgeErr
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
