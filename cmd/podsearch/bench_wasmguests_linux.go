package main

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPUClock returns a clock of the CPU time spent by the calling goroutine's OS thread
// (locked to it until release is called): on a shared machine it measures the work, not the
// wait for a core.
func threadCPUClock() (now func() time.Duration, release func()) {
	runtime.LockOSThread()
	return func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}, runtime.UnlockOSThread
}
