package pool

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// member is one encoder service instance: its connections, load, health and breaker.
type member struct {
	addr        string
	hc          *fasthttp.HostClient
	outstanding atomic.Int64
	healthy     atomic.Bool
	// throttledUntil (unix ns) is set from a 429's Retry-After.
	throttledUntil atomic.Int64

	failuresToOpen int
	cooldown       time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	open      bool
	probing   bool
}

func (p *Pool) newMember(addr string) *member {
	m := &member{
		addr: addr,
		hc: &fasthttp.HostClient{
			Addr:                     addr,
			Name:                     "podsearch-encoder-pool",
			MaxConns:                 p.cfg.MaxConnsPerMember,
			MaxIdleConnDuration:      30 * time.Second,
			MaxConnWaitTimeout:       p.cfg.AttemptTimeout,
			NoDefaultUserAgentHeader: true,
			// Retries are the pool's job (on another member), not the connection's.
			RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		},
		failuresToOpen: p.cfg.BreakerFailures,
		cooldown:       p.cfg.BreakerCooldown,
	}
	m.healthy.Store(true)
	return m
}

// available reports whether the member may take a request now (healthy, not throttled,
// breaker closed or due for a probe). It changes nothing.
func (m *member) available(now time.Time) bool {
	if !m.healthy.Load() || now.UnixNano() < m.throttledUntil.Load() {
		return false
	}
	return m.breakerAllows(now)
}

// breakerAllows reports whether the breaker would let a request through now, whatever the
// health check and throttle say.
func (m *member) breakerAllows(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.open || (!m.probing && !now.Before(m.openUntil))
}

// acquire claims the right to send: always when the breaker is closed; for an open breaker
// past its cooldown, only the first caller (the half-open probe).
func (m *member) acquire(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.open {
		return true
	}
	if m.probing || now.Before(m.openUntil) {
		return false
	}
	m.probing = true
	return true
}

// success closes the breaker.
func (m *member) success() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures, m.open, m.probing = 0, false, false
}

// failure counts a failed request; enough in a row (or a failed probe) open the breaker.
// It reports whether the breaker just opened.
func (m *member) failure(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures++
	if m.probing || (!m.open && m.failures >= m.failuresToOpen) {
		m.open, m.probing = true, false
		m.openUntil = now.Add(m.cooldown)
		return true
	}
	return false
}

// release ends a probe that proved nothing either way (the caller gave up).
func (m *member) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probing = false
}

// throttle skips the member for d.
func (m *member) throttle(now time.Time, d time.Duration) {
	m.throttledUntil.Store(now.Add(d).UnixNano())
}
