//go:build !linux

package main

import "time"

// threadCPUTime is not available here: benchmarks fall back to wall-clock time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
