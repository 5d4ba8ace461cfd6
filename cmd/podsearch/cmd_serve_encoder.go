package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
)

func init() {
	register(&command{
		name:    "serve-encoder",
		summary: "serve the encoder (POST /v1/embed) with dynamic batching over one or more model sessions",
		run:     runServeEncoder,
	})
}

// cpuBatchTokens is the default batch budget on CPU: on the 2-core development machine the
// model's time per token rose 2-3x once a batch passed about 128-256 padded tokens, so larger
// CPU batches lose (docs/bench/encoder.md).
const cpuBatchTokens = 256

// encoderServiceFlags are the batching and limit flags shared by serve-encoder and bench encoder.
type encoderServiceFlags struct {
	sessions, threads, maxBatchTokens, maxBatchSeqs, maxQueue, maxRequestSeqs, maxBody int
	maxInflight                                                                        int64
	maxReads                                                                           int
	maxWait                                                                            time.Duration
	provider                                                                           string
	standin                                                                            bool
	maxPadding                                                                         float64
	adapterPath                                                                        string
}

func addEncoderServiceFlags(fs interface {
	IntVar(*int, string, int, string)
	Int64Var(*int64, string, int64, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	Float64Var(*float64, string, float64, string)
}) *encoderServiceFlags {
	f := &encoderServiceFlags{}
	fs.IntVar(&f.sessions, "sessions", 0, "model sessions, each with its own batch worker; 0: one per usable CPU with -provider cpu, 2 with cuda")
	fs.IntVar(&f.threads, "threads", 1, "ONNX Runtime intra-op threads per session (0: CPUs / sessions)")
	fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu or cuda (falls back to cpu with a log line)")
	fs.IntVar(&f.maxBatchTokens, "max-batch-tokens", 0, "token budget of one batch, padding included (sequences x longest); 0: 256 on CPU, 4096 on CUDA")
	fs.IntVar(&f.maxBatchSeqs, "max-batch-seqs", 64, "most sequences in one batch (1 turns batching off)")
	fs.Float64Var(&f.maxPadding, "max-padding", 1.5, "most padded/real token ratio when a batch mixes lengths")
	fs.DurationVar(&f.maxWait, "max-wait", 2*time.Millisecond, "longest a sequence waits for its batch to fill")
	fs.IntVar(&f.maxQueue, "max-queue", 4096, "most sequences queued; beyond it requests get 429 with Retry-After")
	fs.IntVar(&f.maxRequestSeqs, "max-request-seqs", 256, "most sequences or texts in one request (413 beyond)")
	fs.IntVar(&f.maxBody, "max-body-bytes", 4<<20, "largest request body (413 beyond, from the Content-Length before the body is read)")
	fs.Int64Var(&f.maxInflight, "max-inflight-bytes", 0, "most body bytes of admitted, unanswered requests, by Content-Length; beyond it 429 before the body is read (0: 16 x -max-body-bytes)")
	fs.IntVar(&f.maxReads, "max-concurrent-reads", 0, "most requests reading, decoding and tokenizing their bodies at once; others wait within their deadline (0: 2 x GOMAXPROCS, at least 4)")
	fs.StringVar(&f.adapterPath, "adapter", "", "query adapter FILE written by podsearch train: serve tuned query vectors (the answers name the tuned fingerprint)")
	fs.BoolVar(&f.standin, "standin", false, "serve the deterministic stand-in instead of the model, for load and fault drills (its vectors mean NOTHING)")
	return f
}

// open loads the backends and the tokenizer; close releases them.
func (f *encoderServiceFlags) open() (backends []encoder.Embedder, tok tokenizer.Tokenizer, closeAll func(), err error) {
	if f.sessions < 0 {
		return nil, nil, nil, fmt.Errorf("%w: -sessions must be >= 0", errUsage)
	}
	if f.sessions == 0 {
		// GOMAXPROCS honours a container's CPU limit, where NumCPU reports the whole node.
		f.sessions = runtime.GOMAXPROCS(0)
		if f.provider == "cuda" {
			f.sessions = 2 // one batch on the GPU while the next is prepared
		}
	}
	var sessions []*encoder.Session
	var wrapped []*adapter.Embedder // a query tower's wrappers hold sessions of their own
	closeAll = func() {
		for _, w := range wrapped {
			_ = w.Close()
		}
		for _, s := range sessions {
			_ = s.Close()
		}
	}
	if f.standin {
		slog.Warn("serving the deterministic STAND-IN model: vectors are meaningless (-standin)")
		for range f.sessions {
			backends = append(backends, &standin.Embedder{})
		}
		if f.maxBatchTokens <= 0 {
			f.maxBatchTokens = cpuBatchTokens
		}
		return backends, nil, closeAll, nil
	}
	threads := f.threads
	if threads <= 0 {
		threads = max(1, runtime.GOMAXPROCS(0)/f.sessions)
	}
	for range f.sessions {
		s, err := encoder.Open(encoder.Options{Provider: f.provider, IntraOpThreads: threads})
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		sessions = append(sessions, s)
		backends = append(backends, s)
	}
	if f.adapterPath != "" {
		a, err := adapter.LoadFor(f.adapterPath, sessions[0].Fingerprint())
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		for i, s := range sessions {
			w, err := adapter.Wrap(s, a, adapter.Query)
			if err != nil {
				closeAll()
				return nil, nil, nil, err
			}
			backends[i] = w
			wrapped = append(wrapped, w)
		}
		slog.Info("serving tuned query vectors", "adapter", f.adapterPath, "fingerprint", a.Fingerprint()[:16])
	}
	if f.maxBatchTokens <= 0 {
		f.maxBatchTokens = cpuBatchTokens
		if sessions[0].Provider() == "cuda" {
			f.maxBatchTokens = 4096
		}
	}
	slog.Info("encoder sessions open", "sessions", f.sessions, "threads_each", threads, "provider", sessions[0].Provider(),
		"max_batch_tokens", f.maxBatchTokens)
	t, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		closeAll()
		return nil, nil, nil, fmt.Errorf("%w: %v", encoder.ErrNotSetUp, err)
	}
	return backends, t, closeAll, nil
}

func (f *encoderServiceFlags) config(backends []encoder.Embedder, tok tokenizer.Tokenizer) gpuencoder.Config {
	return gpuencoder.Config{
		Backends:  backends,
		Tokenizer: tok,
		Batch: gpuencoder.BatchConfig{
			MaxBatchTokens: f.maxBatchTokens,
			MaxBatchSeqs:   f.maxBatchSeqs,
			MaxWait:        noWaitIsNegative(f.maxWait),
			MaxQueueSeqs:   f.maxQueue,
			MaxPadding:     f.maxPadding,
		},
		MaxRequestSeqs:     f.maxRequestSeqs,
		MaxBodyBytes:       f.maxBody,
		MaxInflightBytes:   f.maxInflight,
		MaxConcurrentReads: f.maxReads,
	}
}

// noWaitIsNegative maps a -max-wait of 0 (run at once) to the config's "no wait" value.
func noWaitIsNegative(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func runServeEncoder(args []string) error {
	fs := newFlagSet("serve-encoder", "[--addr HOST:PORT] [flags]",
		"Serves POST /v1/embed: JSON {\"texts\": [...]} or {\"token_ids\": [[...], ...]}, or the binary token\n"+
			"encoding (Content-Type application/vnd.podsearch.tokens), answered as JSON\n"+
			"{\"model\": FINGERPRINT, \"embeddings\": [[...], ...]} or, per Accept, binary float32/float16\n"+
			"(application/vnd.podsearch.embeddings.f32 / .f16). Requests are packed into batches by a\n"+
			"token budget; a full queue answers 429 with Retry-After; X-Deadline-Ms bounds each request.\n"+
			"Also /healthz, /readyz and Prometheus /metrics. The bearer token is best given by\n"+
			"environment (PODSEARCH_ENCODER_TOKEN). SIGTERM or SIGINT finishes in-flight batches and stops.\n"+
			"See docs/encoder-service.md.")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address HOST:PORT")
	o := addEncoderServeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serveEncoder(ctx, *addr, o)
}

// encoderServeOptions are the settings of serve-encoder (its flags) beyond the listen address.
type encoderServeOptions struct {
	// service: the batching, limit and model flags shared with bench encoder.
	service *encoderServiceFlags
	// token is the bearer token required on /v1/embed (empty: PODSEARCH_ENCODER_TOKEN, if set).
	token string
	// timeout is the deadline of requests without an X-Deadline-Ms header; grace the longest
	// wait for in-flight work on shutdown.
	timeout, grace time.Duration
}

// addEncoderServeFlags defines serve-encoder's flags (but --addr) on fs.
func addEncoderServeFlags(fs *flag.FlagSet) *encoderServeOptions {
	o := &encoderServeOptions{}
	fs.StringVar(&o.token, "token", "", "bearer token required on /v1/embed (env PODSEARCH_ENCODER_TOKEN)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of requests without an X-Deadline-Ms header")
	fs.DurationVar(&o.grace, "shutdown-timeout", 30*time.Second, "longest wait for in-flight work on shutdown")
	o.service = addEncoderServiceFlags(fs)
	return o
}

// defaultEncoderServeOptions returns the defaults of serve-encoder (what the demo serves with).
func defaultEncoderServeOptions() *encoderServeOptions {
	return addEncoderServeFlags(flag.NewFlagSet("serve-encoder", flag.ContinueOnError))
}

// serveEncoder serves the encoder service on addr until ctx ends, then finishes the
// in-flight batches (within o.grace) and returns.
func serveEncoder(ctx context.Context, addr string, o *encoderServeOptions) error {
	token := o.token
	if token == "" {
		token = os.Getenv("PODSEARCH_ENCODER_TOKEN")
	}
	backends, tok, closeAll, err := o.service.open()
	if err != nil {
		return err
	}
	defer closeAll()
	cfg := o.service.config(backends, tok)
	cfg.Token = token
	cfg.DefaultTimeout = o.timeout
	cfg.Registry = prometheus.NewRegistry()
	cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := gpuencoder.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		slog.Info("stopping: finishing in-flight batches")
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-served
}
