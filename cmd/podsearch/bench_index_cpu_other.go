//go:build !linux

package main

import (
	"os"
	"time"
)

// threadCPUTime is not available here: benchmarks fall back to wall-clock time.
func threadCPUTime() (time.Duration, bool) { return 0, false }

// peakRSSMB is unknown here.
func peakRSSMB(*os.ProcessState) (float64, bool) { return 0, false }
