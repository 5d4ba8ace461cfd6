// Package swaptest drives concurrent calls while a resource is hot-swapped: the shared loop of
// the zero-failure swap tests of the wasm packages.
package swaptest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Run starts workers goroutines that call call(worker, i) for i = 0, 1, 2 ... until stopped,
// and meanwhile calls swap(s) for s = 1..swaps, each once at least minCalls calls completed
// since the previous swap (so every version serves, whatever the scheduling). A call error is
// reported with tb.Error; a swap error stops the test. It returns the number of calls and of
// failed calls.
func Run(tb testing.TB, workers, swaps, minCalls int, call func(worker, i int) error, swap func(s int) error) (calls, failures int64) {
	tb.Helper()
	var nCalls, nFail atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := call(w, i)
				nCalls.Add(1)
				if err != nil {
					nFail.Add(1)
					tb.Error(err)
				}
			}
		}(w)
	}
	var swapErr error
	for s := 1; s <= swaps && swapErr == nil; s++ {
		for start := nCalls.Load(); nCalls.Load() < start+int64(minCalls); {
			runtime.Gosched()
		}
		swapErr = swap(s)
	}
	close(stop)
	wg.Wait()
	if swapErr != nil {
		tb.Fatal(swapErr)
	}
	return nCalls.Load(), nFail.Load()
}
