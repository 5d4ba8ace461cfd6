package main

import (
	"syscall"
	"time"
)

// threadCPUTime returns the CPU time the calling OS thread has used (user + system), so a
// benchmark on a busy shared machine measures the work a query costs, not its wait for a
// core. The caller must hold runtime.LockOSThread.
func threadCPUTime() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
