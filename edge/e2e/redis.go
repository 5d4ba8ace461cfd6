package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoRedis is returned by StartRedis when redis-server is not installed.
var ErrNoRedis = errors.New("redis-server is not installed (apt-get install redis-server)")

// Redis is one redis-server process on 127.0.0.1 without persistence, which can be killed
// (SIGKILL, a crash) and restarted on the same port, empty.
type Redis struct {
	bin, dir string
	port     int
	mu       sync.Mutex
	cmd      *exec.Cmd
	exit     chan struct{}
}

// StartRedis starts redis-server on a free loopback port with its files in dir.
func StartRedis(dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	r := &Redis{bin: bin, dir: dir}
	for attempt := 0; attempt < 5; attempt++ {
		if r.port, err = freePort(); err != nil {
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
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", logFile,
		"--save", "", "--appendonly", "no")
	cmd.Dir = r.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := ping(r.addr()); err == nil {
			break
		} else if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exit
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("not ready: %v; log: %s", err, strings.TrimSpace(string(log)))
		}
		select {
		case <-exit:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("exited at start; log: %s", strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.mu.Lock()
	r.cmd, r.exit = cmd, exit
	r.mu.Unlock()
	return nil
}

// Kill stops the server with SIGKILL (by its PID) and waits for it to exit. Killing a
// stopped server does nothing.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, exit := r.cmd, r.exit
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exit
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

// ping sends PING over a fresh connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a loopback TCP port free at the time of the call.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
