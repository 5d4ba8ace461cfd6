package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/internal/standin"
)

// waitFor polls cond every 10ms until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redis is killed (SIGKILL) in the middle of a load, then restarted empty on the same port:
// no caller sees a failed lookup or a wrong vector, the breaker skips the dead Redis, and the
// cache uses Redis again after the restart without any intervention.
func TestFaultRedisKilledMidLoadThenRestarted(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	cfg := Config{
		Redis:           rc,
		MemoryBytes:     16 << 10, // a few vectors: most lookups reach Redis
		LookupTimeout:   100 * time.Millisecond,
		WriteTimeout:    200 * time.Millisecond,
		BreakerFailures: 3,
		BreakerCooldown: 100 * time.Millisecond,
	}
	c, _ := newCache(t, cfg, fpA)
	seqs := queries(200, 10)

	var served, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := seqs[(w*53+i*7)%190:][:1+i%4]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				vecs, err := c.Embed(ctx, batch)
				cancel()
				if err == nil {
					for j, s := range batch {
						if cosine(vecs[j], standin.Vector(s, 512)) < 0.99999 {
							err = fmt.Errorf("wrong vector for %v", s)
						}
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					served.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}(w)
	}
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt()

	waitFor(t, "Redis hits before the kill", 20*time.Second, func() bool { return lookups(c, tierRedis, resHit) > 50 })
	srv.Kill()
	waitFor(t, "the breaker to skip the dead Redis", 20*time.Second, func() bool { return lookups(c, tierRedis, resSkipped) > 0 })
	servedWhileDown := served.Load()
	waitFor(t, "requests served while Redis is down", 20*time.Second, func() bool { return served.Load() > servedWhileDown+100 })
	srv.Restart()
	hitsAtRestart := lookups(c, tierRedis, resHit)
	waitFor(t, "Redis hits after the restart", 20*time.Second, func() bool { return lookups(c, tierRedis, resHit) > hitsAtRestart+50 })
	if n, err := srv.Do("DBSIZE"); err != nil || n == "0" {
		t.Fatalf("nothing written to the restarted Redis (DBSIZE %q, %v)", n, err)
	}
	halt()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d lookups failed; first: %v", f, f+served.Load(), firstErr.Load())
	}
	t.Logf("%d lookups served, none failed; redis errors %d, skipped %d", served.Load(),
		lookups(c, tierRedis, resError), lookups(c, tierRedis, resSkipped))
}
