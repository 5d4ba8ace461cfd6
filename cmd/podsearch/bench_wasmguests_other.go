//go:build !linux

package main

import "time"

// threadCPUClock falls back to the wall clock where per-thread CPU time is not available.
func threadCPUClock() (now func() time.Duration, release func()) {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }, func() {}
}
