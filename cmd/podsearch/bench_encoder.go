package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/tokenizer"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
	"github.com/podsearch/podsearch/internal/loadgen"
)

func init() {
	registerBench("encoder", "encoder service load test: throughput and latency percentiles, dynamic batching vs batch size 1", benchEncoder)
}

// encoderBenchRow is one load run's result, printed as a JSON line with --json.
type encoderBenchRow struct {
	Config      string  `json:"config"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	Throttled   int64   `json:"throttled_429"`
	ReqPerSec   float64 `json:"req_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MeanBatch   float64 `json:"mean_batch,omitempty"`
	Padding     float64 `json:"padded_per_real_token,omitempty"`
	TokensPerS  float64 `json:"tokens_per_s"`
}

func benchEncoder(args []string) error {
	fs := newFlagSet("bench encoder", "[--url HOST:PORT,...] [flags]",
		"Load generator for the encoder service: --concurrency clients send one query each, back to\n"+
			"back, for --duration, and it prints throughput and latency percentiles. Queries come from\n"+
			"--queries (TREC podcast topics JSONL), tokenized locally as an edge does. Without --url it\n"+
			"starts the service in-process on loopback with the real model and, with --compare (the\n"+
			"default), runs dynamic batching and batch size 1 over the same sessions in one run,\n"+
			"alternating them over --rounds so that load drift hits both alike, and prints the ratio.")
	urls := fs.String("url", "", "comma-separated running encoder services (host:port); empty: in-process")
	concurrency := fs.Int("concurrency", 64, "concurrent clients")
	duration := fs.Duration("duration", 12*time.Second, "measured time per configuration, split over --rounds")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each measured slice")
	rounds := fs.Int("rounds", 3, "in-process with --compare: alternate the configurations this many times (load drift on a shared machine then hits both alike)")
	queries := fs.String("queries", "../shared/data/queries/trec_podcasts_topics.jsonl", "query JSONL (fields query and description)")
	field := fs.String("field", "query", "what to send from each topic: query, description or both")
	encoding := fs.String("encoding", "f32", "wire format: f32 or f16 (binary token ids in, binary vectors out, as edges send) or json (JSON token ids in and out) or texts (JSON texts)")
	compare := fs.Bool("compare", true, "in-process: also run with batch size 1 and print the ratio")
	token := fs.String("token", "", "bearer token for --url services (env PODSEARCH_ENCODER_TOKEN)")
	asJSON := fs.Bool("json", false, "print one JSON object per configuration instead of a table")
	sf := addEncoderServiceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *concurrency < 1 || *duration <= 0 || *rounds < 1 {
		return fmt.Errorf("%w: --concurrency and --rounds must be >= 1 and --duration > 0", errUsage)
	}
	if *token == "" {
		*token = os.Getenv("PODSEARCH_ENCODER_TOKEN")
	}
	texts, err := readBenchQueries(*queries, *field)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return fmt.Errorf("%w: %v", encoder.ErrNotSetUp, err)
	}
	bodies, ctype, accept, tokens, err := benchBodies(texts, tok, *encoding)
	if err != nil {
		return err
	}
	lg := loadgen.Closed{Concurrency: *concurrency, Warmup: *warmup, Path: wire.EmbedPath, Bodies: bodies, Units: tokens,
		ContentType: ctype, Accept: accept, Token: *token}
	var rows []encoderBenchRow
	if *urls != "" {
		lg.Duration = *duration
		m := runEncoderLoad(lg, splitList(*urls), nil)
		rows = append(rows, m.row("service at "+*urls, *concurrency))
	} else {
		backends, tk, closeAll, err := sf.open()
		if err != nil {
			return err
		}
		defer closeAll()
		configs := []struct {
			name string
			seqs int
		}{{fmt.Sprintf("dynamic (max %d seqs, %d tokens, wait %s)", sf.maxBatchSeqs, sf.maxBatchTokens, sf.maxWait), sf.maxBatchSeqs}}
		if *compare {
			configs = append(configs, struct {
				name string
				seqs int
			}{"batch size 1", 1})
		} else {
			*rounds = 1
		}
		lg.Duration = *duration / time.Duration(*rounds)
		services := make([]*benchService, len(configs))
		for i, c := range configs {
			sf2 := *sf
			sf2.maxBatchSeqs = c.seqs
			cfg := sf2.config(backends, tk)
			if cfg.Batch.MaxQueueSeqs < *concurrency {
				cfg.Batch.MaxQueueSeqs = *concurrency
			}
			if services[i], err = startBenchService(cfg); err != nil {
				return err
			}
			defer services[i].stop()
		}
		acc := make([]measurement, len(configs))
		for r := range *rounds {
			for i, svc := range services {
				slog.Info("bench encoder: measuring", "config", configs[i].name, "round", r+1, "of", *rounds)
				acc[i].add(runEncoderLoad(lg, []string{svc.addr}, svc.reg))
			}
		}
		for i, c := range configs {
			rows = append(rows, acc[i].row(c.name, *concurrency))
		}
	}
	for _, r := range rows {
		if r.Requests == 0 {
			return fmt.Errorf("bench encoder: no request succeeded in %q", r.Config)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		printEncoderRows(os.Stdout, rows, len(texts), *field, *encoding)
	}
	return nil
}

// readBenchQueries reads the query texts of a --queries file (indexbuild.ReadQueryTexts).
func readBenchQueries(path, field string) ([]string, error) {
	texts, err := indexbuild.ReadQueryTexts(path, field)
	switch {
	case errors.Is(err, indexbuild.ErrField):
		return nil, fmt.Errorf("%w: --field must be query, description or both", errUsage)
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w (give --queries)", err)
	}
	return texts, err
}

// benchBodies pre-encodes one request body per query.
func benchBodies(texts []string, tok tokenizer.Tokenizer, encoding string) (bodies [][]byte, ctype, accept string, tokens []int, err error) {
	for _, t := range texts {
		ids := encoder.Clip(tok.Encode(t))
		tokens = append(tokens, len(ids))
		var b []byte
		switch encoding {
		case "f32", "f16":
			b = wire.EncodeTokens(nil, [][]int32{ids})
		case "json":
			b, err = json.Marshal(wire.JSONRequest{TokenIDs: [][]int32{ids}})
		case "texts":
			b, err = json.Marshal(wire.JSONRequest{Texts: []string{t}})
		default:
			return nil, "", "", nil, fmt.Errorf("%w: --encoding must be f32, f16, json or texts", errUsage)
		}
		if err != nil {
			return nil, "", "", nil, err
		}
		bodies = append(bodies, b)
	}
	switch encoding {
	case "f32":
		return bodies, wire.ContentTypeTokens, wire.ContentTypeF32, tokens, nil
	case "f16":
		return bodies, wire.ContentTypeTokens, wire.ContentTypeF16, tokens, nil
	}
	return bodies, wire.ContentTypeJSON, wire.ContentTypeJSON, tokens, nil
}

// benchService is an encoder service run in-process on a loopback port.
type benchService struct {
	srv  *gpuencoder.Server
	reg  *prometheus.Registry
	addr string
}

func startBenchService(cfg gpuencoder.Config) (*benchService, error) {
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := gpuencoder.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	return &benchService{srv: srv, reg: reg, addr: ln.Addr().String()}, nil
}

func (b *benchService) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
}

// measurement is what one or more measured slices of load produced, with the in-process
// service's batch counters over the measured time.
type measurement struct {
	loadgen.Measurement
	server serverCounters // deltas over the measured time (in-process only)
}

func (m *measurement) add(o measurement) {
	m.Measurement.Add(o.Measurement)
	m.server.batches += o.server.batches
	m.server.seqs += o.server.seqs
	m.server.padded += o.server.padded
	m.server.tokens += o.server.tokens
}

func (m *measurement) row(name string, concurrency int) encoderBenchRow {
	loadgen.Sort(m.Lats)
	pct := func(p float64) float64 { return loadgen.Millis(loadgen.Quantile(m.Lats, p, loadgen.Lower)) }
	r := encoderBenchRow{Config: name, Concurrency: concurrency, Seconds: m.Seconds, Requests: m.Requests, Errors: m.Errors,
		Throttled: m.Throttled, P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99)}
	if m.Seconds > 0 {
		r.ReqPerSec, r.TokensPerS = float64(m.Requests)/m.Seconds, float64(m.Units)/m.Seconds
	}
	if m.server.batches > 0 {
		r.MeanBatch = m.server.seqs / m.server.batches
	}
	if m.server.tokens > 0 {
		r.Padding = m.server.padded / m.server.tokens
	}
	if m.FirstErr != "" {
		slog.Warn("bench encoder: requests failed", "config", name, "errors", m.Errors, "first", m.FirstErr)
	}
	return r
}

// runEncoderLoad runs lg against the endpoints and, for an in-process service (reg not
// nil), reads its batch counters over the measured time.
func runEncoderLoad(lg loadgen.Closed, endpoints []string, reg *prometheus.Registry) measurement {
	var before, after serverCounters
	lg.Before = func() { before = batchStats(reg) }
	lg.After = func() { after = batchStats(reg) }
	m := measurement{Measurement: lg.Run(endpoints)}
	m.server = serverCounters{after.batches - before.batches, after.seqs - before.seqs, after.padded - before.padded, after.tokens - before.tokens}
	return m
}

// serverCounters are the in-process service's batch totals.
type serverCounters struct{ batches, seqs, padded, tokens float64 }

// batchStats reads the batch histograms and the token counter from an in-process registry.
func batchStats(reg *prometheus.Registry) serverCounters {
	var c serverCounters
	if reg == nil {
		return c
	}
	mfs, err := reg.Gather()
	if err != nil {
		return c
	}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "podsearch_encoder_batch_size":
			c.batches, c.seqs = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
		case "podsearch_encoder_batch_padded_tokens":
			c.padded = m.GetHistogram().GetSampleSum()
		case "podsearch_encoder_tokens_total":
			c.tokens = m.GetCounter().GetValue()
		}
	}
	return c
}

func printEncoderRows(w io.Writer, rows []encoderBenchRow, nq int, field, encoding string) {
	fmt.Fprintf(w, "%d distinct queries (field %s), wire %s, %d concurrent clients, %.0f s measured per configuration\n\n",
		nq, field, encoding, rows[0].Concurrency, rows[0].Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\treq/s\ttokens/s\tp50 ms\tp90 ms\tp99 ms\tmean batch\tpadding\trequests\terrors\t429s\t")
	for _, r := range rows {
		batch, pad := "-", "-" // unknown for remote services
		if r.MeanBatch > 0 {
			batch, pad = fmt.Sprintf("%.1f", r.MeanBatch), fmt.Sprintf("%.2f", r.Padding)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%d\t%d\t%d\t\n", r.Config, r.ReqPerSec, r.TokensPerS,
			r.P50ms, r.P90ms, r.P99ms, batch, pad, r.Requests, r.Errors, r.Throttled)
	}
	_ = tw.Flush()
	if len(rows) == 2 && rows[1].ReqPerSec > 0 {
		fmt.Fprintf(w, "\ndynamic batching / batch size 1 throughput: %.2fx (p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms)\n",
			rows[0].ReqPerSec/rows[1].ReqPerSec, rows[0].P50ms, rows[1].P50ms, rows[0].P99ms, rows[1].P99ms)
	}
}
