package wasmhost

import (
	"context"
	_ "embed"
	"errors"
	"testing"
	"time"
)

//go:embed testdata/misbehave.wasm
var misbehaveWasm []byte

func sharedRuntime(t *testing.T) *Runtime {
	t.Helper()
	rt, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// misbehavePool is a pool of the test guest over a fresh 2-page memory.
func misbehavePool(t *testing.T, rt *Runtime, size int) (*Pool, *Memory) {
	t.Helper()
	ctx := context.Background()
	m, err := rt.Compile(ctx, "misbehave", misbehaveWasm)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := rt.NewMemory(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rt.NewPool(ctx, m, PoolConfig{Size: size, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := mem.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return p, mem
}

func callAdd(t *testing.T, p *Pool, a, b uint64) {
	t.Helper()
	err := p.Do(context.Background(), func(in *Instance) error {
		got, err := in.Call(context.Background(), "add", a, b)
		if err != nil {
			return err
		}
		if got != a+b {
			t.Errorf("add(%d, %d) = %d", a, b, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSharedMemoryIsOneCopy(t *testing.T) {
	p, mem := misbehavePool(t, sharedRuntime(t), 3)
	ctx := context.Background()
	// Each instance writes its own word; the host sees all of them in the one memory.
	var ins []*Instance
	for i := 0; i < p.Size(); i++ {
		in, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	for i, in := range ins {
		got, err := in.Call(ctx, "store", uint64(1024+4*i), uint64(100+i))
		if err != nil || got != uint64(100+i) {
			t.Fatalf("store via slot %d: %d, %v", in.Slot, got, err)
		}
	}
	view, err := mem.View(1024, 12)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		if view[4*i] != byte(100+i) {
			t.Errorf("word %d = %d, want %d", i, view[4*i], 100+i)
		}
		p.Release(ins[i])
	}
	if _, err := mem.View(uint32(mem.Size())-4, 8); err == nil {
		t.Error("reading past the end of the memory succeeded")
	}
}

func TestTrapReturnsErrorAndPoolRecovers(t *testing.T) {
	p, _ := misbehavePool(t, sharedRuntime(t), 2)
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		err := p.Do(ctx, func(in *Instance) error {
			_, err := in.Call(ctx, "trap")
			return err
		})
		var te *TrapError
		if !errors.As(err, &te) || te.Func != "trap" {
			t.Fatalf("trap returned %v, want a *TrapError for trap", err)
		}
		// An out-of-bounds access traps too.
		err = p.Do(ctx, func(in *Instance) error {
			_, err := in.Call(ctx, "store", 1<<20, 1)
			return err
		})
		if !errors.As(err, &te) {
			t.Fatalf("out-of-bounds store returned %v, want a *TrapError", err)
		}
		callAdd(t, p, 2, 3)
		callAdd(t, p, 40, 2)
	}
	err := p.Do(ctx, func(in *Instance) error {
		_, err := in.Call(ctx, "no_such_function")
		return err
	})
	if err == nil {
		t.Fatal("calling a missing export succeeded")
	}
	err = p.Do(ctx, func(in *Instance) error {
		_, err := in.Call(ctx, "add", 1)
		return err
	})
	if err == nil {
		t.Fatal("calling with the wrong parameter count succeeded")
	}
	callAdd(t, p, 1, 1)
}

func TestRunawayGuestIsInterruptedOnGuardedRuntime(t *testing.T) {
	ctx := context.Background()
	rt, err := New(ctx, Config{Guarded: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	p, _ := misbehavePool(t, rt, 1)
	for round := 0; round < 2; round++ {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		start := time.Now()
		err = p.Do(cctx, func(in *Instance) error {
			_, err := in.Call(cctx, "spin", 2048)
			return err
		})
		cancel()
		var te *TrapError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("runaway call returned %v, want a *TrapError wrapping the deadline", err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("runaway call was interrupted only after %v", took)
		}
		callAdd(t, p, 5, 6)
	}
}

func TestPoolWaitsAndCloses(t *testing.T) {
	rt := sharedRuntime(t)
	p, _ := misbehavePool(t, rt, 1)
	ctx := context.Background()
	in, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a busy pool returned %v, want the deadline", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	p.Release(in)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close returned %v, want ErrClosed", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	rt := sharedRuntime(t)
	if _, err := rt.NewMemory(context.Background(), rt.MemoryLimitPages()+1); err == nil {
		t.Fatal("a memory above the limit was created")
	}
	if _, err := rt.NewMemory(context.Background(), 0); err == nil {
		t.Fatal("an empty memory was created")
	}
	if _, err := rt.Compile(context.Background(), "garbage", []byte("not wasm")); err == nil {
		t.Fatal("garbage compiled")
	}
}
