package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/vec"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/pool"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serveOn runs an in-process encoder service on addr ("127.0.0.1:0" for any port).
func serveOn(t *testing.T, addr string, cfg gpuencoder.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveLn(t, ln, cfg)
}

func serveLn(t *testing.T, ln net.Listener, cfg gpuencoder.Config) string {
	t.Helper()
	cfg.Logger = quiet
	s, err := gpuencoder.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func standinService(t *testing.T, be *standin.Embedder) string {
	return serveOn(t, "127.0.0.1:0", gpuencoder.Config{Backends: []encoder.Embedder{be}})
}

func newPool(t *testing.T, cfg pool.Config) *pool.Pool {
	t.Helper()
	cfg.Logger = quiet
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := pool.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// seqFor is a deterministic token sequence for request k of client c, 1 to 40 tokens long.
func seqFor(c, k int) []int32 {
	n := 1 + (c*31+k*7)%40
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(6 + (c*1009+k*97+i*13)%7990)
	}
	return s
}

type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
	done       chan struct{}
}

// maxPerClient bounds the requests of one drive client, whatever the machine's speed.
const maxPerClient = 3000

// drive runs clients goroutines that call Embed back to back until stop closes (or
// maxPerClient calls each), checking every vector against want (when non-nil).
func drive(p encoder.Embedder, clients int, stop <-chan struct{}, want func([]int32) []float32) *load {
	l := &load{done: make(chan struct{})}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range maxPerClient {
				select {
				case <-stop:
					return
				default:
				}
				seq := seqFor(c, k)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, err := p.Embed(ctx, [][]int32{seq})
				cancel()
				if err == nil && want != nil && cosine(v[0], want(seq)) < 0.99999 {
					err = fmt.Errorf("wrong vector for %v", seq)
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// wait blocks until every client has stopped.
func (l *load) wait() { <-l.done }

func cosine(a, b []float32) float64 { return vec.Cosine(a, b) }

func TestPoolSpreadsLoadAndReturnsServiceVectors(t *testing.T) {
	backends := []*standin.Embedder{{}, {}, {}}
	var eps []string
	for _, be := range backends {
		eps = append(eps, standinService(t, be))
	}
	p := newPool(t, pool.Config{Endpoints: eps})
	if p.Fingerprint() != standin.Fingerprint {
		t.Fatalf("fingerprint %q", p.Fingerprint())
	}
	var wg sync.WaitGroup
	var fails atomic.Int64
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 25 {
				seqs := [][]int32{seqFor(c, k), seqFor(c, k+1), make([]int32, 300)} // the last is clipped to 128
				got, err := p.Embed(context.Background(), seqs)
				if err != nil {
					t.Error(err)
					fails.Add(1)
					return
				}
				for i, s := range seqs {
					if !slices.Equal(got[i], standin.Vector(s[:min(len(s), encoder.MaxTokens)])) {
						t.Errorf("vector %d differs", i)
					}
				}
			}
		}()
	}
	wg.Wait()
	for i, be := range backends {
		if len(be.Batches()) == 0 {
			t.Errorf("member %d got no work", i)
		}
	}
	if v, err := p.Embed(context.Background(), nil); err != nil || len(v) != 0 {
		t.Fatalf("empty input: %v %v", v, err)
	}
}

func TestPoolFloat16(t *testing.T) {
	p := newPool(t, pool.Config{Endpoints: []string{"http://" + standinService(t, &standin.Embedder{})}, Float16: true})
	seq := seqFor(1, 2)
	v, err := p.Embed(context.Background(), [][]int32{seq})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(v[0], standin.Vector(seq)); c < 0.99999 {
		t.Fatalf("float16 cosine %.7f", c)
	}
}

func TestPoolDNSNameResolvingToMany(t *testing.T) {
	// Three services on one port at 127.0.0.1-3, as a headless Service's pods would be.
	var port string
	var lns []net.Listener
	for try := 0; try < 20 && len(lns) < 3; try++ {
		for _, l := range lns {
			_ = l.Close()
		}
		lns = nil
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(first.Addr().String())
		lns = append(lns, first)
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			lns = append(lns, l)
		}
	}
	if len(lns) < 3 {
		testenv.SkipOrFail(t, testenv.Linux, "cannot bind one port on 127.0.0.1-3 here")
	}
	backends := []*standin.Embedder{{}, {}, {}}
	for i, l := range lns {
		serveLn(t, l, gpuencoder.Config{Backends: []encoder.Embedder{backends[i]}})
	}
	var lookups atomic.Int64
	resolver := func(_ context.Context, host string) ([]string, error) {
		lookups.Add(1)
		if host != "encoders.podsearch.test" {
			return nil, fmt.Errorf("no such host %q", host)
		}
		return []string{"127.0.0.3", "127.0.0.1", "127.0.0.2"}, nil
	}
	p := newPool(t, pool.Config{Endpoints: []string{"encoders.podsearch.test:" + port}, Resolver: resolver})
	members := p.Members()
	if len(members) != 3 {
		t.Fatalf("members %v", members)
	}
	for a, up := range members {
		if !up {
			t.Errorf("member %s is down", a)
		}
	}
	for k := range 60 {
		if _, err := p.Embed(context.Background(), [][]int32{seqFor(0, k)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, be := range backends {
		if len(be.Batches()) == 0 {
			t.Errorf("member 127.0.0.%d got no work", i+1)
		}
	}
	if lookups.Load() == 0 {
		t.Fatal("resolver never called")
	}
	if _, err := pool.New(context.Background(), pool.Config{Endpoints: []string{"nowhere.podsearch.test:1"}, Resolver: resolver, Logger: quiet}); err == nil {
		t.Fatal("a pool of unresolvable names started")
	}
}

// failing is an encoder service stand-in that is ready but answers every embed with a 500.
func failing(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"ready":true,"model":%q}`, standin.Fingerprint)
	})
	mux.HandleFunc("/v1/embed", func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, `{"error":"model crashed"}`, http.StatusInternalServerError)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &hits
}

func TestPoolBreakerStopsSendingToAFailingMember(t *testing.T) {
	bad, hits := failing(t)
	good := standinService(t, &standin.Embedder{})
	p := newPool(t, pool.Config{Endpoints: []string{bad, good}, BreakerFailures: 3, BreakerCooldown: time.Hour, HealthInterval: time.Hour})
	for k := range 100 {
		if _, err := p.Embed(context.Background(), [][]int32{seqFor(2, k)}); err != nil {
			t.Fatalf("request %d failed: %v", k, err)
		}
	}
	if h := hits.Load(); h != 3 {
		t.Fatalf("the failing member got %d requests; its breaker should open after 3", h)
	}
	if p.Members()[bad] {
		t.Fatal("failing member still listed available")
	}
	if s := p.Stats(); s.Failures != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPoolBreakerHalfOpenProbe(t *testing.T) {
	bad, hits := failing(t)
	p := newPool(t, pool.Config{Endpoints: []string{bad}, BreakerFailures: 2, BreakerCooldown: 50 * time.Millisecond,
		HealthInterval: time.Hour, MaxAttempts: 1})
	for range 5 {
		_, _ = p.Embed(context.Background(), [][]int32{{7}})
	}
	if h := hits.Load(); h != 2 {
		t.Fatalf("%d requests before the breaker opened, want 2", h)
	}
	time.Sleep(60 * time.Millisecond)
	_, err := p.Embed(context.Background(), [][]int32{{7}})
	if err == nil || hits.Load() != 3 {
		t.Fatalf("probe: err %v, hits %d", err, hits.Load())
	}
	_, err = p.Embed(context.Background(), [][]int32{{7}})
	if !errors.Is(err, pool.ErrNoMembers) || hits.Load() != 3 {
		t.Fatalf("after a failed probe: err %v, hits %d", err, hits.Load())
	}
}

func TestPoolBadInputIsNotRetried(t *testing.T) {
	var eps []string
	for range 2 {
		eps = append(eps, standinService(t, &standin.Embedder{}))
	}
	p := newPool(t, pool.Config{Endpoints: eps})
	_, err := p.Embed(context.Background(), [][]int32{{1, 9000}})
	var re *pool.RequestError
	if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(re.Message, "outside the vocabulary") {
		t.Fatalf("err %v", err)
	}
	if s := p.Stats(); s.Failures != 0 {
		t.Fatalf("bad input counted as member failure: %+v", s)
	}
}

func TestPoolHonoursCallerDeadline(t *testing.T) {
	slow := &standin.Embedder{PerBatch: 500 * time.Millisecond}
	p := newPool(t, pool.Config{Endpoints: []string{standinService(t, slow)}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Embed(ctx, [][]int32{{5}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want a deadline error", err)
	}
}

func TestPoolHedgesSlowMember(t *testing.T) {
	fast := &standin.Embedder{}
	slow := &standin.Embedder{PerBatch: 80 * time.Millisecond}
	p := newPool(t, pool.Config{Endpoints: []string{standinService(t, fast), standinService(t, slow)},
		HedgeQuantile: 0.25, HedgeMin: 5 * time.Millisecond})
	for k := range 80 {
		seq := seqFor(3, k)
		v, err := p.Embed(context.Background(), [][]int32{seq})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v[0], standin.Vector(seq)) {
			t.Fatal("wrong vector")
		}
	}
	if s := p.Stats(); s.Hedges == 0 {
		t.Fatalf("no hedged request in 80 with a member 80ms slow: %+v", s)
	}
}

func TestNewRejectsNoEndpoints(t *testing.T) {
	if _, err := pool.New(context.Background(), pool.Config{}); err == nil {
		t.Fatal("no error")
	}
	if _, err := pool.New(context.Background(), pool.Config{Endpoints: []string{"no-port"}, Logger: quiet}); err == nil {
		t.Fatal("no error for an endpoint without a port")
	}
}
