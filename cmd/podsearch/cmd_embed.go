package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
)

func init() {
	register(&command{
		name:    "embed",
		summary: "embed lines of text (stdin or a file) and print JSONL vectors",
		run:     runEmbed,
	})
}

func runEmbed(args []string) error {
	fs := newFlagSet("embed", "[-i FILE] [flags]",
		"Reads one text per line (stdin by default) and prints one JSON object per line:\n"+
			`{"text": ..., "tokens": N, "embedding": [512 numbers]}.`)
	in := fs.String("i", "-", "input file, one text per line; - for stdin")
	batch := fs.Int("batch", 32, "texts per encoder batch")
	provider := fs.String("provider", "cpu", "ONNX Runtime execution provider: cpu or cuda (falls back to cpu)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("%w: -batch must be >= 1", errUsage)
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return err
	}
	sess, err := encoder.Open(encoder.Options{Provider: *provider})
	if err != nil {
		return err
	}
	defer sess.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var texts []string
	flush := func() error {
		if len(texts) == 0 {
			return nil
		}
		ids := make([][]int32, len(texts))
		for i, t := range texts {
			ids[i] = encoder.Clip(tok.Encode(t))
		}
		vecs, err := sess.Embed(context.Background(), ids)
		if err != nil {
			return err
		}
		for i, v := range vecs {
			line := struct {
				Text      string    `json:"text"`
				Tokens    int       `json:"tokens"`
				Embedding []float32 `json:"embedding"`
			}{texts[i], len(ids[i]), v}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		texts = texts[:0]
		return nil
	}
	for sc.Scan() {
		texts = append(texts, sc.Text())
		if len(texts) == *batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	return flush()
}
