package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// ErrClosed is returned by a pool that has been closed.
var ErrClosed = errors.New("wasmhost: pool closed")

// TrapError is a guest call that failed inside the guest: a trap (unreachable, out-of-bounds
// access, division by zero), a guest exit or, on a guarded runtime, an interrupted call. The
// instance that failed is discarded and replaced; the pool keeps serving.
type TrapError struct {
	Module string
	Func   string
	Err    error
}

func (e *TrapError) Error() string {
	return fmt.Sprintf("wasm guest %s.%s failed: %v", e.Module, e.Func, e.Err)
}

func (e *TrapError) Unwrap() error { return e.Err }

// PoolConfig configures a pool of warm instances of one module.
type PoolConfig struct {
	// Size is the number of instances, each serving one call at a time (default 1).
	Size int
	// Memory, when set, is imported by every instance as env.memory.
	Memory *Memory
	// StartFunctions run once when an instance is created ("_initialize" for Go guests
	// built with -buildmode=c-shared); none when empty.
	StartFunctions []string
	// Setup prepares a new instance before first use (load a vocabulary, set the stack
	// pointer of its slot). It runs again for the replacement of a failed instance.
	Setup func(ctx context.Context, in *Instance) error
}

// Pool holds warm instances of a module. Acquire hands one out for the exclusive use of one
// caller; Release returns it. An instance whose call failed is closed on release and its slot
// re-instantiated on the next Acquire, so a trap costs one error, never the pool.
type Pool struct {
	mod    *Module
	rt     *Runtime
	cfg    PoolConfig
	free   chan *Instance
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once
	calls  prometheus.Counter
	traps  prometheus.Counter
}

// Instance is one instance of a pooled module. It is not safe for concurrent use.
type Instance struct {
	// Slot is the instance's fixed position in its pool (0..Size-1); a replacement keeps
	// the slot of the instance it replaces, so per-slot resources (a scratch region in a
	// shared memory) carry over.
	Slot int
	// Data is free for Setup to attach per-instance state.
	Data  any
	pool  *Pool
	mod   api.Module
	fns   map[string]api.Function
	stack []uint64
	err   error
}

// NewPool instantiates cfg.Size instances of m.
func (rt *Runtime) NewPool(ctx context.Context, m *Module, cfg PoolConfig) (*Pool, error) {
	if cfg.Size <= 0 {
		cfg.Size = 1
	}
	p := &Pool{mod: m, rt: rt, cfg: cfg, free: make(chan *Instance, cfg.Size), done: make(chan struct{}),
		calls: metricCalls.WithLabelValues(m.Name), traps: metricTraps.WithLabelValues(m.Name)}
	for i := 0; i < cfg.Size; i++ {
		in := &Instance{Slot: i, pool: p}
		if err := p.instantiate(ctx, in); err != nil {
			close(p.done)
			p.closed.Store(true)
			for len(p.free) > 0 {
				old := <-p.free
				_ = old.mod.Close(ctx)
			}
			return nil, err
		}
		p.free <- in
	}
	return p, nil
}

// Module is the compiled module the pool instantiates.
func (p *Pool) Module() *Module { return p.mod }

// Size is the number of instances.
func (p *Pool) Size() int { return p.cfg.Size }

func (p *Pool) instantiate(ctx context.Context, in *Instance) error {
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions(p.cfg.StartFunctions...)
	if p.cfg.Memory != nil {
		memMod := p.cfg.Memory.mod
		ctx = experimental.WithImportResolver(ctx, func(name string) api.Module {
			if name == "env" {
				return memMod
			}
			return nil
		})
	}
	mod, err := p.rt.r.InstantiateModule(ctx, p.mod.compiled, mc)
	if err != nil {
		return fmt.Errorf("wasmhost: instantiating %s: %w", p.mod.Name, err)
	}
	metricInstances.WithLabelValues(p.mod.Name).Inc()
	in.mod, in.fns, in.err, in.Data = mod, map[string]api.Function{}, nil, nil
	if p.cfg.Setup != nil {
		if err := p.cfg.Setup(ctx, in); err != nil {
			_ = mod.Close(ctx)
			in.mod = nil
			return fmt.Errorf("wasmhost: setting up %s: %w", p.mod.Name, err)
		}
	}
	return nil
}

// Acquire takes an instance, waiting while all are busy, until ctx ends or the pool closes.
func (p *Pool) Acquire(ctx context.Context) (*Instance, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	var in *Instance
	select {
	case in = <-p.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
	if p.closed.Load() {
		p.free <- in
		return nil, ErrClosed
	}
	if in.mod == nil {
		if err := p.instantiate(ctx, in); err != nil {
			p.free <- in
			return nil, err
		}
	}
	return in, nil
}

// Release returns an instance taken by Acquire. A failed instance is closed; its slot is
// re-instantiated by the next Acquire.
func (p *Pool) Release(in *Instance) {
	if in.err != nil && in.mod != nil {
		slog.Warn("wasm instance discarded after a failed call", "module", p.mod.Name, "slot", in.Slot, "err", in.err)
		_ = in.mod.Close(context.Background())
		in.mod = nil
	}
	p.free <- in
}

// Do runs fn with an instance of the pool.
func (p *Pool) Do(ctx context.Context, fn func(in *Instance) error) error {
	in, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer p.Release(in)
	return fn(in)
}

// Close waits until every instance is back (or ctx ends), then closes them. Calls waiting
// in Acquire get ErrClosed.
func (p *Pool) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.closed.Store(true)
		close(p.done)
		for i := 0; i < p.cfg.Size; i++ {
			select {
			case in := <-p.free:
				if in.mod != nil {
					err = errors.Join(err, in.mod.Close(ctx))
				}
			case <-ctx.Done():
				err = errors.Join(err, fmt.Errorf("wasmhost: closing %s with %d instances still busy: %w", p.mod.Name, p.cfg.Size-i, ctx.Err()))
				return
			}
		}
	})
	return err
}

// Memory is the instance's linear memory (the pool's shared Memory when it has one).
func (in *Instance) Memory() api.Memory { return in.mod.Memory() }

// Global returns an exported mutable global of the instance, such as __stack_pointer.
func (in *Instance) Global(name string) (api.MutableGlobal, error) {
	g, ok := in.mod.ExportedGlobal(name).(api.MutableGlobal)
	if !ok {
		return nil, fmt.Errorf("wasmhost: %s exports no mutable global %q", in.pool.mod.Name, name)
	}
	return g, nil
}

// Call calls the exported function name with params and returns its first result (0 when it
// has none). A failure inside the guest returns a *TrapError and marks the instance for
// replacement. Call neither allocates nor checks ctx on its own: bound the work of each call
// and check deadlines between calls.
func (in *Instance) Call(ctx context.Context, name string, params ...uint64) (uint64, error) {
	fn := in.fns[name]
	if fn == nil {
		fn = in.mod.ExportedFunction(name)
		if fn == nil {
			return 0, fmt.Errorf("wasmhost: %s exports no function %q", in.pool.mod.Name, name)
		}
		in.fns[name] = fn
	}
	def := fn.Definition()
	if len(params) != len(def.ParamTypes()) {
		return 0, fmt.Errorf("wasmhost: %s.%s takes %d parameters, got %d", in.pool.mod.Name, name, len(def.ParamTypes()), len(params))
	}
	n := max(len(params), len(def.ResultTypes()), 1)
	if cap(in.stack) < n {
		in.stack = make([]uint64, n)
	}
	stack := in.stack[:n]
	copy(stack, params)
	in.pool.calls.Inc()
	if err := fn.CallWithStack(ctx, stack); err != nil {
		in.pool.traps.Inc()
		in.err = err
		te := &TrapError{Module: in.pool.mod.Name, Func: name, Err: err}
		if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("%w (%w)", te, cerr)
		}
		return 0, te
	}
	if len(def.ResultTypes()) == 0 {
		return 0, nil
	}
	return stack[0], nil
}
