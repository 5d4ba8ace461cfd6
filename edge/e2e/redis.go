package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/podsearch/podsearch/internal/redisproc"
)

// ErrNoRedis is returned by StartRedis when redis-server is not installed.
var ErrNoRedis = errors.New("redis-server is not installed (apt-get install redis-server)")

// Redis is one redis-server process on 127.0.0.1 without persistence, which can be killed
// (SIGKILL, a crash) and restarted on the same port, empty.
type Redis struct {
	bin, dir string
	port     int
	mu       sync.Mutex
	proc     *redisproc.Proc
}

// StartRedis starts redis-server on a free loopback port with its files in dir.
func StartRedis(dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	r := &Redis{bin: bin, dir: dir}
	for attempt := 0; attempt < 5; attempt++ {
		if r.port, err = redisproc.FreePort(false); err != nil {
			continue
		}
		if err = r.start(); err == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("redis-server: %w", err)
}

// URL is redis://127.0.0.1:PORT.
func (r *Redis) URL() string { return "redis://" + r.addr() }

func (r *Redis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *Redis) start() error {
	logFile := filepath.Join(r.dir, "redis-"+strconv.Itoa(r.port)+".log")
	p, err := redisproc.Launch(r.bin, r.dir, logFile, r.addr(), []string{"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1", "--dir", r.dir, "--daemonize", "no", "--loglevel", "warning",
		"--logfile", logFile, "--save", "", "--appendonly", "no"})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	return nil
}

// Kill stops the server with SIGKILL (by its PID) and waits for it to exit. Killing a
// stopped server does nothing.
func (r *Redis) Kill() {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	p.Kill()
}

// Restart starts the server again on the same port (empty: there is no persistence).
func (r *Redis) Restart() error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = r.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redis-server restart on %s: %w", r.addr(), err)
}
