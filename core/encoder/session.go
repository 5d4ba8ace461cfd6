package encoder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/model"
)

// VocabRows is the number of rows of the model's embedding table: valid ids are [0, VocabRows).
const VocabRows = 8002

// Options configures an ONNX Runtime encoder session.
type Options struct {
	// ModelPath is the exported ONNX model; empty means assets.ModelPath().
	ModelPath string
	// VocabPath is the tokenizer vocabulary hashed into the fingerprint; empty means
	// assets.VocabPath().
	VocabPath string
	// LibraryPath is libonnxruntime.so; empty means assets.RuntimeLibraryPath().
	LibraryPath string
	// Provider is "cpu" (default) or "cuda" (falls back to CPU with a log line when absent).
	Provider string
	// IntraOpThreads bounds ORT's threads per run; 0 means the number of CPUs.
	IntraOpThreads int
}

// Session embeds token-id batches with ONNX Runtime. It is safe for concurrent use.
type Session struct {
	sess        *ort.DynamicAdvancedSession
	fingerprint string
	provider    string
}

// ErrNotSetUp is returned (wrapped) when the model or the runtime library is missing.
var ErrNotSetUp = errors.New("encoder: model or ONNX Runtime not set up: run `make setup` (or `podsearch setup`)")

var (
	envOnce sync.Once
	envErr  error
	envLib  string
)

// initRuntime loads the ONNX Runtime library once per process.
func initRuntime(lib string) error {
	envOnce.Do(func() {
		envLib = lib
		if _, err := os.Stat(lib); err != nil {
			envErr = fmt.Errorf("%w: %v", ErrNotSetUp, err)
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			envErr = fmt.Errorf("encoder: loading ONNX Runtime from %s: %w", lib, err)
		}
	})
	if envErr == nil && lib != envLib {
		return fmt.Errorf("encoder: ONNX Runtime already loaded from %s, cannot switch to %s", envLib, lib)
	}
	return envErr
}

// Open loads the model into a new session.
func Open(opts Options) (*Session, error) {
	if opts.ModelPath == "" {
		opts.ModelPath = assets.ModelPath()
	}
	if opts.VocabPath == "" {
		opts.VocabPath = assets.VocabPath()
	}
	if opts.LibraryPath == "" {
		opts.LibraryPath = assets.RuntimeLibraryPath()
	}
	if opts.Provider == "" {
		opts.Provider = "cpu"
	}
	if opts.Provider != "cpu" && opts.Provider != "cuda" {
		return nil, fmt.Errorf("encoder: unknown execution provider %q (want cpu or cuda)", opts.Provider)
	}
	onnxBytes, err := os.ReadFile(opts.ModelPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSetUp, err)
	}
	vocab, err := os.ReadFile(opts.VocabPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSetUp, err)
	}
	if err := initRuntime(opts.LibraryPath); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("encoder: session options: %w", err)
	}
	defer so.Destroy()
	threads := opts.IntraOpThreads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("encoder: threads: %w", err)
	}
	provider := "cpu"
	if opts.Provider == "cuda" {
		if err := appendCUDA(so); err != nil {
			slog.Warn("CUDA execution provider unavailable, falling back to CPU", "err", err)
		} else {
			provider = "cuda"
		}
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(onnxBytes,
		[]string{model.InputIDs, model.InputMask}, []string{model.OutputName}, so)
	if err != nil {
		return nil, fmt.Errorf("encoder: loading model %s (corrupt or not a USE-lite export? rerun `podsearch setup`): %w", opts.ModelPath, err)
	}
	s := &Session{sess: sess, fingerprint: model.Fingerprint(onnxBytes, vocab), provider: provider}
	slog.Debug("encoder session ready", "provider", provider, "threads", threads, "fingerprint", s.fingerprint[:12])
	return s, nil
}

func appendCUDA(so *ort.SessionOptions) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	return so.AppendExecutionProviderCUDA(co)
}

// Provider reports the execution provider the session runs on ("cpu" or "cuda").
func (s *Session) Provider() string { return s.provider }

// Fingerprint implements Embedder.
func (s *Session) Fingerprint() string { return s.fingerprint }

// Close releases the session.
func (s *Session) Close() error { return s.sess.Destroy() }

// Embed implements Embedder: sequences are clipped at MaxTokens and padded to the longest
// one; the output does not depend on the padding. An id outside [0, VocabRows) is an error.
func (s *Session) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	if len(tokenIDs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	width := 1
	for i, seq := range tokenIDs {
		if len(seq) > width {
			width = min(len(seq), MaxTokens)
		}
		for _, id := range seq {
			if id < 0 || id >= VocabRows {
				return nil, fmt.Errorf("encoder: sequence %d has token id %d outside [0, %d)", i, id, VocabRows)
			}
		}
	}
	ids := make([]int64, len(tokenIDs)*width)
	mask := make([]int64, len(tokenIDs)*width)
	for i, seq := range tokenIDs {
		for j, id := range seq[:min(len(seq), width)] {
			ids[i*width+j] = int64(id)
			mask[i*width+j] = 1
		}
	}
	shape := ort.NewShape(int64(len(tokenIDs)), int64(width))
	idsT, err := ort.NewTensor(shape, ids)
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	defer idsT.Destroy()
	maskT, err := ort.NewTensor(shape, mask)
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	defer maskT.Destroy()
	outputs := []ort.Value{nil}
	if err := s.sess.Run([]ort.Value{idsT, maskT}, outputs); err != nil {
		return nil, fmt.Errorf("encoder: run: %w", err)
	}
	defer outputs[0].Destroy()
	out, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("encoder: model output is %T, want a float32 tensor", outputs[0])
	}
	data := out.GetData()
	if len(data) != len(tokenIDs)*Dim {
		return nil, fmt.Errorf("encoder: model returned %d values for %d sequences", len(data), len(tokenIDs))
	}
	vecs := make([][]float32, len(tokenIDs))
	flat := make([]float32, len(data))
	copy(flat, data)
	for i := range vecs {
		vecs[i] = flat[i*Dim : (i+1)*Dim : (i+1)*Dim]
	}
	return vecs, nil
}
