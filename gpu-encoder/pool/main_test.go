package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/internal/testenv"
)

// The fault tests run encoder services as separate processes (this test binary started
// again with POOLTEST_CHILD=1), so that "kill one" is a real SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("POOLTEST_CHILD") == "1" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// runChild serves one encoder service until SIGTERM (graceful) or until its parent goes
// away (stdin closes).
func runChild() error {
	var be encoder.Embedder
	switch os.Getenv("POOLTEST_BACKEND") {
	case "model":
		s, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
		if err != nil {
			return err
		}
		defer s.Close()
		be = s
	default:
		be = &standin.Embedder{PerBatch: envDuration("POOLTEST_PER_BATCH"), PerToken: envDuration("POOLTEST_PER_TOKEN")}
	}
	s, err := gpuencoder.New(gpuencoder.Config{
		Backends: []encoder.Embedder{be},
		Batch: gpuencoder.BatchConfig{
			MaxBatchSeqs: envInt("POOLTEST_MAX_BATCH", 64),
			MaxQueueSeqs: envInt("POOLTEST_QUEUE", 4096),
		},
		MaxRequestSeqs: min(256, envInt("POOLTEST_QUEUE", 4096)),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent is gone
	}()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	return s.Serve(ln)
}

// child is an encoder service process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

// spawn starts n child encoder services with the given POOLTEST_* settings, in parallel,
// and waits until every one listens.
func spawn(t *testing.T, n int, env ...string) []*child {
	t.Helper()
	children := make([]*child, n)
	lines := make([]chan string, n)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "POOLTEST_CHILD=1"), env...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = &child{cmd: cmd}
		t.Cleanup(func() {
			_ = stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		lines[i] = make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
					lines[i] <- a
				}
			}
		}()
	}
	timeout := time.After(60 * time.Second)
	for i, c := range children {
		select {
		case c.addr = <-lines[i]:
		case <-timeout:
			t.Fatal("child encoder service did not start within 60s")
		}
	}
	return children
}

// kill ends the child with SIGKILL: no graceful anything.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

// rssKiB reads the child's resident set size (VmRSS) from /proc, in KiB.
func (c *child) rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		testenv.SkipOrFail(t, testenv.Linux, "no /proc here: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
