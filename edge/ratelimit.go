package edge

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter keeps one token bucket per client. Its table is bounded: a bucket that has
// refilled completely is equivalent to a fresh one, so sweeps drop those without changing
// any client's allowance.
type clientLimiter struct {
	limit      rate.Limit
	burst      int
	maxClients int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

func newClientLimiter(perSecond float64, burst, maxClients int) *clientLimiter {
	return &clientLimiter{
		limit: rate.Limit(perSecond), burst: burst, maxClients: maxClients,
		buckets: map[string]*rate.Limiter{}, lastSweep: time.Now(),
	}
}

// allow takes one token from client's bucket; when none is left it returns false and how
// long until one is.
func (l *clientLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.maxClients || now.Sub(l.lastSweep) > time.Minute {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		if len(l.buckets) < l.maxClients {
			l.buckets[client] = b
		}
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the buckets that are full again. Called with mu held.
func (l *clientLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// retryAfterSeconds rounds a wait up to whole seconds for the Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
