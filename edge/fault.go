package edge

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

// ErrShardsUnreadable is what a Searcher's error wraps when its shards cannot be read: a
// memory-mapped segment file was truncated or rewritten in place under the node (cp over
// it, rsync --inplace, a full disk). The edge then answers without its own shards (from
// its peers, else 503), fails /readyz, and reloads until the files are whole again.
var ErrShardsUnreadable = errors.New("the shards are unreadable (a segment file changed on disk)")

// guardMapped runs fn, which reads memory-mapped segment files, so that reading a file
// that changed under the mapping cannot crash the process: the fault (SIGBUS on a page
// past a truncated end) and any runtime error it leads to (a length read from a
// rewritten file) are returned as an error wrapping ErrShardsUnreadable. Other panics go
// on. Faults are caught only in this goroutine; core/index reads the mappings in the
// calling goroutine.
func guardMapped(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		re, ok := r.(runtime.Error)
		if !ok {
			panic(r)
		}
		err = &unreadableError{cause: re.Error(), stack: debug.Stack()}
	}()
	return fn()
}

// unreadableError is a recovered fault or runtime error while reading the mapped shards.
type unreadableError struct {
	cause string
	stack []byte
}

func (e *unreadableError) Error() string {
	return fmt.Sprintf("%v: %s", ErrShardsUnreadable, e.cause)
}

func (e *unreadableError) Unwrap() error { return ErrShardsUnreadable }

// healInterval is how soon after shards became unreadable the first reload is tried; the
// wait doubles after each failed one, up to maxHealInterval.
const (
	defaultHealInterval = time.Second
	maxHealInterval     = 15 * time.Second
)

// unreadable records that sh could not be read and, the first time for sh, starts
// reloading until a reload succeeds (the files are whole again), another reload replaced
// sh, or the node shuts down.
func (s *Server) unreadable(sh *shards, err error) {
	s.met.unreadable.Inc()
	if !sh.unreadable.CompareAndSwap(false, true) {
		return
	}
	var ue *unreadableError
	var stack string
	if errors.As(err, &ue) {
		stack = string(ue.stack)
	}
	s.log.Error("shards unreadable: a segment file changed on disk; answering without them and reloading until the files are whole",
		"index_version", sh.s.IndexVersion(), "err", err, "stack", stack)
	go s.heal(sh)
}

func (s *Server) heal(sh *shards) {
	wait := s.cfg.HealInterval
	for {
		select {
		case <-s.done:
			return
		case <-time.After(wait):
		}
		if s.cur.Load() != sh {
			return // a reload (watch, admin, SIGHUP) already replaced them
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, _, err := s.Reload(ctx) // Reload logs its outcome
		cancel()
		if err == nil {
			return
		}
		wait = min(2*wait, max(maxHealInterval, s.cfg.HealInterval))
	}
}
