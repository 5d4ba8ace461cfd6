package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Closer is what a Swappable holds: a module pool, a shard, anything closed after use.
type Closer interface {
	Close(ctx context.Context) error
}

// Swappable holds the current version of a resource (a module's instance pool, an index
// shard) and replaces it without failing a request: Swap installs the new version with one
// atomic store, so new requests take it at once, waits until the requests still holding the
// old version have released it, then closes the old one.
type Swappable[T Closer] struct {
	cur    atomic.Pointer[generation[T]]
	swapMu sync.Mutex // serialises Swap and Close
}

type generation[T Closer] struct {
	v T
	// users hold a read lock while they use v; retiring takes the write lock.
	users   sync.RWMutex
	retired bool
}

// Lease is one use of a Swappable's current version; Release it when done.
type Lease[T Closer] struct {
	g *generation[T]
}

// NewSwappable holds v.
func NewSwappable[T Closer](v T) *Swappable[T] {
	s := &Swappable[T]{}
	s.cur.Store(&generation[T]{v: v})
	return s
}

// Acquire returns a lease on the current version. It never fails: a request that raced a
// swap simply takes the new version. It returns false after Close.
func (s *Swappable[T]) Acquire() (Lease[T], bool) {
	for {
		g := s.cur.Load()
		if g == nil {
			return Lease[T]{}, false
		}
		g.users.RLock()
		if !g.retired {
			return Lease[T]{g: g}, true
		}
		g.users.RUnlock()
	}
}

// Value is the leased version.
func (l Lease[T]) Value() T { return l.g.v }

// Release ends the lease.
func (l Lease[T]) Release() { l.g.users.RUnlock() }

// Swap installs v, then drains and closes the version it replaces. Requests are never
// refused: those that started before the store finish on the old version. If ctx ends before
// they do, Swap returns an error and the old version is closed later, when released.
func (s *Swappable[T]) Swap(ctx context.Context, v T) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	old := s.cur.Swap(&generation[T]{v: v})
	if old == nil {
		return errors.Join(errors.New("wasmhost: swap into a closed Swappable"), v.Close(ctx))
	}
	metricSwaps.Inc()
	return retire(ctx, old)
}

// Close drains and closes the current version; later Acquire calls return false.
func (s *Swappable[T]) Close(ctx context.Context) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	old := s.cur.Swap(nil)
	if old == nil {
		return nil
	}
	return retire(ctx, old)
}

// retire waits for the leases still held on g, marks it retired and closes it. When ctx
// ends first, it returns an error and finishes in the background once the leases are released.
func retire[T Closer](ctx context.Context, g *generation[T]) error {
	done := make(chan struct{})
	go func() {
		g.users.Lock() // waits for the leases still held
		g.retired = true
		g.users.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return g.v.Close(ctx)
	case <-ctx.Done():
		go func() {
			<-done
			if err := g.v.Close(context.Background()); err != nil {
				slog.Warn("closing a swapped-out version failed", "err", err)
			}
		}()
		return fmt.Errorf("wasmhost: the old version is still in use (%w); it closes when released", ctx.Err())
	}
}
