package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsearch/podsearch/internal/redisproc"
	"github.com/podsearch/podsearch/internal/testenv"
)

// binary finds a Redis program or skips (or fails when PODSEARCH_REQUIRE_REDIS=1).
func binary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.SkipOrFail(tb, testenv.Redis, "%s is not installed (apt-get install redis-server redis-tools): %v", name, err)
	}
	return p
}

// Server is one redis-server process on 127.0.0.1.
type Server struct {
	tb    testing.TB
	bin   string
	dir   string
	port  int
	extra []string
	conf  string // sentinel configuration file; empty for a data node
	mu    sync.Mutex
	proc  *redisproc.Proc
}

// Start starts a standalone redis-server on a free loopback port; extra arguments are
// appended to its command line (e.g. "--maxmemory", "10mb"). It is stopped when tb ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: binary(tb, "redis-server"), dir: tb.TempDir(), extra: extra}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s.port, err = freePort(false)
		if err != nil {
			continue
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: cannot start redis-server: %v", err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://127.0.0.1:PORT.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) args() []string {
	var a []string
	if s.conf != "" {
		a = []string{s.conf, "--sentinel"}
	}
	a = append(a, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis-"+strconv.Itoa(s.port)+".log"))
	if s.conf == "" {
		a = append(a, "--save", "", "--appendonly", "no")
	}
	return append(a, s.extra...)
}

func (s *Server) start() error {
	logFile := filepath.Join(s.dir, "redis-"+strconv.Itoa(s.port)+".log")
	p, err := redisproc.Launch(s.bin, s.dir, logFile, s.Addr(), s.args())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Kill stops the server with SIGKILL (by PID) and waits for it to exit: a crash, not a
// shutdown. Calling it on a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	p.Kill()
}

// Restart starts the server again on the same port (empty: there is no persistence).
func (s *Server) Restart() {
	s.tb.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: cannot restart redis-server on %s: %v", s.Addr(), err)
}

// Do sends one command over a fresh connection and returns the reply as text (bulk strings
// and integers as their value, arrays one element per line). An error reply is an error.
func (s *Server) Do(args ...string) (string, error) { return Do(s.Addr(), args...) }

// Do sends one command to addr; see Server.Do.
func Do(addr string, args ...string) (string, error) { return redisproc.Do(addr, args...) }

func freePort(bus bool) (int, error) { return redisproc.FreePort(bus) }

// StartSentinel starts one Sentinel on a free loopback port that monitors master under
// the given name (quorum 1), and waits until it reports the master's address.
func StartSentinel(tb testing.TB, master *Server, name string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: binary(tb, "redis-server"), dir: tb.TempDir()}
	s.conf = filepath.Join(s.dir, "sentinel.conf")
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n", name, master.port, name)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(false); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: cannot start sentinel: %v", err)
	}
	tb.Cleanup(s.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
		if err == nil && addr == "127.0.0.1\n"+strconv.Itoa(master.port) {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: sentinel does not report master %s: %q %v", name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of masters (no replicas) on loopback.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n (at least 3) cluster-enabled redis-server processes, joins them
// with redis-cli --cluster create, and waits until every node reports cluster_state:ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		tb.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", n)
	}
	cli := binary(tb, "redis-cli")
	bin := binary(tb, "redis-server")
	c := &Cluster{}
	for i := 0; i < n; i++ {
		s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if s.port, err = freePort(true); err != nil {
				continue
			}
			s.extra = []string{"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-" + strconv.Itoa(s.port) + ".conf",
				"--cluster-node-timeout", "2000"}
			if err = s.start(); err == nil {
				break
			}
		}
		if err != nil {
			tb.Fatalf("redistest: cannot start cluster node: %v", err)
		}
		tb.Cleanup(s.Kill)
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ok after 20s: %v %s", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// URL is a cache URL naming every node as a seed (cluster mode).
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr() + "?mode=cluster"
	for _, s := range c.Nodes[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}
