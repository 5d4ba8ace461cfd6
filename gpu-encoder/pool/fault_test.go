package pool_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/gpu-encoder/pool"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// faultPool is a pool tuned for fast failure detection on loopback.
func faultPool(t *testing.T, children []*child) *pool.Pool {
	var eps []string
	for _, c := range children {
		eps = append(eps, c.addr)
	}
	return newPool(t, pool.Config{Endpoints: eps, HealthInterval: 100 * time.Millisecond, HealthTimeout: 200 * time.Millisecond,
		BreakerCooldown: 300 * time.Millisecond, MaxAttempts: 6})
}

// killOneUnderLoad runs clients against a pool of three service processes, SIGKILLs one
// while requests are in flight, and requires that no client request failed.
func killOneUnderLoad(t *testing.T, children []*child, clients int, before, after time.Duration, want func([]int32) []float32) {
	p := faultPool(t, children)
	stop := make(chan struct{})
	l := drive(p, clients, stop, want)
	time.Sleep(before)
	okBefore := l.ok.Load()
	children[1].kill(t)
	time.Sleep(after)
	close(stop)
	l.wait()
	okAfter := l.ok.Load() - okBefore
	t.Logf("%d requests before the kill, %d after, %d failed; pool stats %+v", okBefore, okAfter, l.failed.Load(), p.Stats())
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d client requests failed, want 0: %v", f, l.errs)
	}
	if okBefore == 0 || okAfter == 0 {
		t.Fatalf("load did not run on both sides of the kill: %d before, %d after", okBefore, okAfter)
	}
	if p.Members()[children[1].addr] {
		t.Error("the killed member is still listed available")
	}
}

func TestFaultKillOneOfThreeUnderLoad(t *testing.T) {
	children := spawn(t, 3, "POOLTEST_PER_BATCH=2ms", "POOLTEST_PER_TOKEN=20us")
	killOneUnderLoad(t, children, 24, 400*time.Millisecond, 800*time.Millisecond, standin.Vector)
}

func TestFaultOverloadOne(t *testing.T) {
	const queue = 16
	// Member 0 is slow with a small queue (about 100 sequences/s); 1 and 2 are fast.
	overloaded := spawn(t, 1, "POOLTEST_PER_BATCH=40ms", "POOLTEST_MAX_BATCH=4", fmt.Sprintf("POOLTEST_QUEUE=%d", queue))[0]
	children := append([]*child{overloaded}, spawn(t, 2, "POOLTEST_PER_BATCH=1ms")...)
	rssStart := overloaded.rssKiB(t)

	// Hammer the overloaded member directly: some answers must be 429 with Retry-After,
	// the rest correct vectors, nothing else.
	hammer := func(rounds int) (ok, throttled int64) {
		var wg sync.WaitGroup
		var okN, tooMany atomic.Int64
		client := &http.Client{Timeout: 10 * time.Second}
		for c := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range rounds {
					seq := seqFor(c, k)
					req, _ := http.NewRequest(http.MethodPost, "http://"+overloaded.addr+wire.EmbedPath, strings.NewReader(string(wire.EncodeTokens(nil, [][]int32{seq}))))
					req.Header.Set("Content-Type", wire.ContentTypeTokens)
					req.Header.Set("Accept", wire.ContentTypeF32)
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						_, v, err := wire.DecodeEmbeddings(b)
						if err != nil || cosine(v[0], standin.Vector(seq)) < 0.99999 {
							t.Errorf("bad answer: %v", err)
						}
						okN.Add(1)
					case http.StatusTooManyRequests:
						if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
							t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
						}
						tooMany.Add(1)
					default:
						t.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
			}()
		}
		maxDepth := 0
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-done:
				if maxDepth > queue {
					t.Errorf("queue depth reached %d, bound is %d", maxDepth, queue)
				}
				return okN.Load(), tooMany.Load()
			case <-time.After(20 * time.Millisecond):
				maxDepth = max(maxDepth, int(metric(t, overloaded.addr, "podsearch_encoder_queue_depth")))
			}
		}
	}
	ok1, tm1 := hammer(8)
	rss1 := overloaded.rssKiB(t)

	// A second, equal wave while pool clients run: they meet the 429s and move on to the
	// other members, with no failures at all.
	type result struct{ ok, throttled int64 }
	wave2 := make(chan result, 1)
	go func() { ok, tm := hammer(8); wave2 <- result{ok, tm} }()
	waitMetric(t, overloaded.addr, "podsearch_encoder_queue_depth", queue) // overloaded now
	p := faultPool(t, children)
	stop := make(chan struct{})
	l := drive(p, 32, stop, standin.Vector)
	r2 := <-wave2
	ok2, tm2 := r2.ok, r2.throttled
	close(stop)
	l.wait()
	rss2 := overloaded.rssKiB(t)
	s := p.Stats()
	t.Logf("direct: %d ok + %d 429, then %d ok + %d 429; RSS %d -> %d -> %d KiB", ok1, tm1, ok2, tm2, rssStart, rss1, rss2)
	t.Logf("pool: %d ok, %d failed, stats %+v", l.ok.Load(), l.failed.Load(), s)
	if tm1 == 0 || tm2 == 0 {
		t.Fatal("no 429 from a member overloaded 64 to 16")
	}
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d pool client requests failed: %v", f, l.errs)
	}
	if s.Throttled == 0 {
		t.Fatal("the pool never met the overloaded member's 429")
	}
	// The second wave must not grow memory beyond noise: the queue, not the load, bounds it.
	if rss2 > rss1+48*1024 || rss2 > 512*1024 {
		t.Errorf("RSS grew from %d to %d KiB between two equal overload waves", rss1, rss2)
	}
	if resp, err := http.Get("http://" + overloaded.addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("overloaded member did not survive: %v", err)
	} else {
		resp.Body.Close()
	}
}

// metric reads one unlabelled series from a service's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitMetric polls a service's metric until it equals want, for up to 10s.
func waitMetric(t *testing.T, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, addr, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v", name, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFaultExpiredDeadlineNeverReachesTheModel(t *testing.T) {
	// One slow service process: a call whose deadline ends while it waits behind a running
	// batch fails with a deadline error, and the service drops it before the model.
	c := spawn(t, 1, "POOLTEST_PER_BATCH=300ms", "POOLTEST_MAX_BATCH=1")[0]
	p := faultPool(t, []*child{c})
	first := make(chan error, 1)
	go func() { _, err := p.Embed(context.Background(), [][]int32{{11}}); first <- err }()
	waitMetric(t, c.addr, "podsearch_encoder_batches_running", 1) // the first request is on the model
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	if _, err := p.Embed(ctx, [][]int32{{12}}); err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c.addr, "podsearch_encoder_queue_depth", 0)
	waitMetric(t, c.addr, "podsearch_encoder_batches_running", 0)
	if n := metric(t, c.addr, "podsearch_encoder_sequences_total"); n != 1 {
		t.Fatalf("%v sequences reached the model, want only the first", n)
	}
	if n := metric(t, c.addr, "podsearch_encoder_expired_sequences_total"); n < 1 {
		t.Fatalf("expired counter %v", n)
	}
}

// TestFaultKillOneOfThreeRealModel is the kill test with three processes running the real
// USE-lite session: no client request fails, and every vector equals the library's.
func TestFaultKillOneOfThreeRealModel(t *testing.T) {
	sess := testmodel.Session(t)
	children := spawn(t, 3, "POOLTEST_BACKEND=model")
	var mu sync.Mutex
	want := func(seq []int32) []float32 {
		mu.Lock()
		defer mu.Unlock()
		v, err := sess.Embed(context.Background(), [][]int32{seq})
		if err != nil {
			t.Error(err)
			return nil
		}
		return v[0]
	}
	killOneUnderLoad(t, children, 8, 500*time.Millisecond, time.Second, want)
}
