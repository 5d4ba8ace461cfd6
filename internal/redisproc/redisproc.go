// Package redisproc runs redis-server processes on loopback for tests and benchmarks:
// start one and wait until it answers PING, kill it by PID (a crash, not a shutdown), and
// speak just enough of the Redis protocol to send a command. The test helpers of the cache
// (cache/internal/redistest) and the end-to-end harness (edge/e2e) both build on it.
package redisproc

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proc is one running redis-server process.
type Proc struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Launch starts bin with args in dir and waits (up to 10 s) until addr answers PING; on
// failure the process is killed and the error quotes logFile.
func Launch(bin, dir, logFile, addr string, args []string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	if err := waitReady(addr, exit); err != nil {
		_ = cmd.Process.Kill()
		<-exit
		log, _ := os.ReadFile(logFile)
		return nil, fmt.Errorf("%v; log: %s", err, strings.TrimSpace(string(log)))
	}
	return &Proc{cmd: cmd, exit: exit}, nil
}

// Kill stops the process with SIGKILL and waits for it to exit. A second call does nothing.
func (p *Proc) Kill() {
	if p == nil {
		return
	}
	p.mu.Lock()
	cmd, exit := p.cmd, p.exit
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exit
}

// waitReady polls PING until the server answers, the process exits, or 10 s pass.
func waitReady(addr string, exit <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return fmt.Errorf("redis-server on %s exited during start", addr)
		default:
		}
		if r, err := Do(addr, "PING"); err == nil && r == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer PING within 10s", addr)
}

// Do sends one command to addr over a fresh connection and returns the reply as text (bulk
// strings and integers as their value, arrays one element per line). An error reply is an
// error.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, max(n, 0))
		for i := 0; i < n; i++ {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// FreePort returns a loopback TCP port that is free now; with bus, port+10000 (the Redis
// Cluster bus port) is free too.
func FreePort(bus bool) (int, error) {
	for attempt := 0; attempt < 50; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair for a cluster node")
}
