package wasmhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/podsearch/podsearch/core/assets"
)

// DefaultMemoryLimitPages caps every guest memory at 1 GiB (64 KiB pages) unless Config says
// otherwise. wasm32 itself caps a memory at 65,536 pages (4 GiB).
const DefaultMemoryLimitPages = 16384

// Config configures a Runtime.
type Config struct {
	// CacheDir is the on-disk compilation cache: compiled machine code is kept there so a
	// restart compiles a module in a tenth of the time. Empty means DefaultCacheDir();
	// "-" disables the on-disk cache.
	CacheDir string
	// MemoryLimitPages caps the linear memory of every guest (64 KiB pages); 0 means
	// DefaultMemoryLimitPages.
	MemoryLimitPages uint32
	// Guarded makes the runtime close a guest whose call outlives its context (wazero's
	// WithCloseOnContextDone). It interrupts runaway guests but inserts a check at every
	// loop and call that slows guests 5-10x, so the serving runtime leaves it off and bounds
	// the work of each call instead; a guarded runtime is for modules of unknown behaviour.
	Guarded bool
}

// DefaultCacheDir is the compilation cache under the podsearch home folder.
func DefaultCacheDir() string { return filepath.Join(assets.Home(), "wazero-cache") }

// Runtime is one wazero runtime with its compilation cache. A process needs one (Shared);
// every module, memory and instance pool of the process is created from it.
type Runtime struct {
	r       wazero.Runtime
	cache   wazero.CompilationCache
	limit   uint32
	guarded bool

	mu       sync.Mutex
	compiled map[[32]byte]*Module
}

// New creates a runtime. WASI is instantiated in it for the Go guests.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	limit := cfg.MemoryLimitPages
	if limit == 0 {
		limit = DefaultMemoryLimitPages
	}
	if limit > 65536 {
		return nil, fmt.Errorf("wasmhost: memory limit %d pages exceeds wasm32's 65536", limit)
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(limit).
		WithCloseOnContextDone(cfg.Guarded)
	rt := &Runtime{limit: limit, guarded: cfg.Guarded, compiled: map[[32]byte]*Module{}}
	dir := cfg.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if dir != "-" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			slog.Warn("wasm compilation cache unavailable; compiling without it", "dir", dir, "err", err)
		} else if cache, err := wazero.NewCompilationCacheWithDir(dir); err != nil {
			slog.Warn("wasm compilation cache unavailable; compiling without it", "dir", dir, "err", err)
		} else {
			rt.cache = cache
			rc = rc.WithCompilationCache(cache)
		}
	}
	rt.r = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt.r); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: instantiating WASI: %w", err)
	}
	return rt, nil
}

var (
	sharedOnce sync.Once
	shared     *Runtime
	sharedErr  error
)

// Shared returns the process's runtime (default Config), creating it on first use. It is
// never closed: it lives as long as the process.
func Shared() (*Runtime, error) {
	sharedOnce.Do(func() {
		shared, sharedErr = New(context.Background(), Config{})
	})
	return shared, sharedErr
}

// MemoryLimitPages is the cap on every guest memory of this runtime.
func (rt *Runtime) MemoryLimitPages() uint32 { return rt.limit }

// Guarded reports whether calls that outlive their context are interrupted (Config.Guarded).
func (rt *Runtime) Guarded() bool { return rt.guarded }

// Close closes every module of the runtime and the cache handle.
func (rt *Runtime) Close(ctx context.Context) error {
	err := rt.r.Close(ctx)
	if rt.cache != nil {
		err = errors.Join(err, rt.cache.Close(ctx))
	}
	return err
}

// Module is a compiled guest: machine code shared by all of its instances.
type Module struct {
	// Name names the module in errors, logs and metrics.
	Name     string
	compiled wazero.CompiledModule
}

// Compile validates and compiles a guest binary, or loads its machine code from the on-disk
// cache. The result is remembered by content: compiling the same bytes again returns the same
// Module at no cost (the first name given is kept). Compiled modules live as long as the
// runtime; their code is small next to the memories and instances built from them.
func (rt *Runtime) Compile(ctx context.Context, name string, bin []byte) (*Module, error) {
	key := sha256.Sum256(bin)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if m := rt.compiled[key]; m != nil {
		return m, nil
	}
	start := time.Now()
	c, err := rt.r.CompileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), bin)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: compiling module %s: %w", name, err)
	}
	slog.Debug("wasm module compiled", "module", name, "bytes", len(bin), "took", time.Since(start))
	m := &Module{Name: name, compiled: c}
	rt.compiled[key] = m
	return m, nil
}

// Exports lists the names of the functions the module exports.
func (m *Module) Exports() []string {
	defs := m.compiled.ExportedFunctions()
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	return names
}

// ImportedMemoryMinPages is the smallest memory the module accepts as its imported memory
// (its static data and default stack live below that size), and false when it imports none.
func (m *Module) ImportedMemoryMinPages() (uint32, bool) {
	for _, mem := range m.compiled.ImportedMemories() {
		return mem.Min(), true
	}
	return 0, false
}
