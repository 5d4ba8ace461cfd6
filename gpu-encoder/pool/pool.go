package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config configures a Pool. Only Endpoints is required.
type Config struct {
	// Endpoints are "host:port" (or "http://host:port"). A host that is an IP address is one
	// member; a DNS name becomes one member per address it resolves to.
	Endpoints []string
	// Token is the bearer token sent to every member, if any.
	Token string
	// Fingerprint is the model the caller expects; empty adopts the first one a member
	// reports. Members reporting another are treated as down, so vectors never mix.
	Fingerprint string
	// Float16 asks for float16 vectors on the wire (half the bytes, about 3 decimal digits).
	Float16 bool
	// Resolver looks up a DNS name; nil uses net.DefaultResolver.LookupHost.
	Resolver func(ctx context.Context, host string) ([]string, error)
	// ResolveInterval is how often DNS names are looked up again. Default 10s.
	ResolveInterval time.Duration
	// HealthInterval is how often every member's /readyz is checked. Default 1s.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check. Default 500ms.
	HealthTimeout time.Duration
	// MaxAttempts bounds the tries of one Embed across members. Default 4.
	MaxAttempts int
	// AttemptTimeout bounds one try. Default 10s.
	AttemptTimeout time.Duration
	// DefaultTimeout is the deadline of an Embed whose context has none. Default 10s.
	DefaultTimeout time.Duration
	// BackoffBase and BackoffMax shape the pause before a retry: BackoffBase x 2^(try-1),
	// at most BackoffMax, with jitter between half and all of it. Defaults 5ms and 200ms.
	BackoffBase, BackoffMax time.Duration
	// HedgeQuantile, when in (0,1), sends a second copy of a request to another member once
	// the first has run longer than this quantile of recent latencies (at least HedgeMin).
	HedgeQuantile float64
	// HedgeMin is the shortest hedge delay. Default 2ms.
	HedgeMin time.Duration
	// BreakerFailures consecutive failures open a member's breaker. Default 5.
	BreakerFailures int
	// BreakerCooldown is how long an open breaker refuses before letting one probe through.
	// Default 2s.
	BreakerCooldown time.Duration
	// MaxConnsPerMember bounds the connections to one member. Default 256.
	MaxConnsPerMember int
	// Logger logs membership and health changes; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ResolveInterval, 10*time.Second)
	def(&c.HealthInterval, time.Second)
	def(&c.HealthTimeout, 500*time.Millisecond)
	def(&c.AttemptTimeout, 10*time.Second)
	def(&c.DefaultTimeout, 10*time.Second)
	def(&c.BackoffBase, 5*time.Millisecond)
	def(&c.BackoffMax, 200*time.Millisecond)
	def(&c.HedgeMin, 2*time.Millisecond)
	def(&c.BreakerCooldown, 2*time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 4
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 5
	}
	if c.MaxConnsPerMember <= 0 {
		c.MaxConnsPerMember = 256
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver.LookupHost
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ErrNoMembers means no member of the pool could take the request.
var ErrNoMembers = errors.New("encoder pool: no available member")

// Pool balances Embed calls over the encoder service members. It is safe for concurrent use.
type Pool struct {
	cfg     Config
	log     *slog.Logger
	model   atomic.Pointer[string]
	members atomic.Pointer[[]*member]
	lat     latencies

	hedges, throttled, failures atomic.Int64

	mu     sync.Mutex // guards membership changes
	byAddr map[string]*member

	stop chan struct{}
	wg   sync.WaitGroup
}

// New resolves the endpoints, checks every member's health once (within ctx) and starts the
// background resolve and health loops. It fails only when no member can be named at all.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("encoder pool: no endpoints")
	}
	cfg.fill()
	p := &Pool{cfg: cfg, log: cfg.Logger, byAddr: map[string]*member{}, stop: make(chan struct{})}
	if cfg.Fingerprint != "" {
		fp := cfg.Fingerprint
		p.model.Store(&fp)
	}
	empty := []*member{}
	p.members.Store(&empty)
	if err := p.resolve(ctx); err != nil && len(p.list()) == 0 {
		return nil, err
	}
	if len(p.list()) == 0 {
		return nil, fmt.Errorf("encoder pool: endpoints %v name no address", cfg.Endpoints)
	}
	p.checkAll(ctx)
	p.wg.Add(2)
	go p.loop(cfg.HealthInterval, func(ctx context.Context) { p.checkAll(ctx) })
	go p.loop(cfg.ResolveInterval, func(ctx context.Context) {
		if err := p.resolve(ctx); err != nil {
			p.log.Warn("encoder pool: resolve failed", "err", err)
		}
	})
	return p, nil
}

// Close stops the background loops and closes idle connections.
func (p *Pool) Close() error {
	close(p.stop)
	p.wg.Wait()
	for _, m := range p.list() {
		m.hc.CloseIdleConnections()
	}
	return nil
}

// Fingerprint implements encoder.Embedder: the model the pool's vectors come from, or ""
// before any member has answered.
func (p *Pool) Fingerprint() string {
	if fp := p.model.Load(); fp != nil {
		return *fp
	}
	return ""
}

// Members returns the address of every member and whether it is currently available.
func (p *Pool) Members() map[string]bool {
	out := map[string]bool{}
	now := time.Now()
	for _, m := range p.list() {
		out[m.addr] = m.available(now)
	}
	return out
}

// Stats counts what the pool has done since New.
type Stats struct {
	// Hedges is the number of hedged second copies sent.
	Hedges int64
	// Throttled is the number of 429 answers received.
	Throttled int64
	// Failures is the number of failed tries (transport errors, 5xx, bad bodies).
	Failures int64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{Hedges: p.hedges.Load(), Throttled: p.throttled.Load(), Failures: p.failures.Load()}
}

func (p *Pool) list() []*member { return *p.members.Load() }

func (p *Pool) loop(every time.Duration, f func(ctx context.Context)) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			f(ctx)
			cancel()
		}
	}
}

// resolve turns the endpoints into members, adding new addresses and dropping vanished ones.
func (p *Pool) resolve(ctx context.Context) error {
	var addrs []string
	var errs []error
	for _, ep := range p.cfg.Endpoints {
		ep = strings.TrimSuffix(strings.TrimPrefix(ep, "http://"), "/")
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %q: want host:port: %w", ep, err))
			continue
		}
		if net.ParseIP(host) != nil {
			addrs = append(addrs, net.JoinHostPort(host, port))
			continue
		}
		ips, err := p.cfg.Resolver(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %q: %w", ep, err))
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, port))
		}
	}
	err := errors.Join(errs...)
	if err != nil && len(addrs) == 0 {
		return err // keep the members we had rather than dropping all on a lookup failure
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make([]*member, 0, len(addrs))
	keep := map[string]*member{}
	for _, a := range addrs {
		m, ok := p.byAddr[a]
		if !ok {
			m = p.newMember(a)
			p.log.Info("encoder pool: member added", "addr", a)
		}
		keep[a] = m
		next = append(next, m)
	}
	for a, m := range p.byAddr {
		if _, ok := keep[a]; !ok {
			p.log.Info("encoder pool: member removed", "addr", a)
			m.hc.CloseIdleConnections()
		}
	}
	p.byAddr = keep
	p.members.Store(&next)
	return err
}

// checkAll runs one health check of every member, in parallel.
func (p *Pool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range p.list() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.check(ctx, m)
		}()
	}
	wg.Wait()
}

func (p *Pool) check(ctx context.Context, m *member) {
	deadline := time.Now().Add(p.cfg.HealthTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + m.addr + "/readyz")
	err := m.hc.DoDeadline(req, resp, deadline)
	ok := err == nil && resp.StatusCode() == fasthttp.StatusOK
	if ok {
		var r struct {
			Model string `json:"model"`
		}
		if jerr := json.Unmarshal(resp.Body(), &r); jerr != nil || !p.adopt(r.Model) {
			ok = false
			err = fmt.Errorf("model %q is not the pool's %q", r.Model, p.Fingerprint())
		}
	}
	if was := m.healthy.Swap(ok); was != ok {
		p.log.Info("encoder pool: member health changed", "addr", m.addr, "healthy", ok, "err", err)
	}
}

// adopt accepts fp as the pool's model if the pool has none yet; it reports whether fp is
// the pool's model.
func (p *Pool) adopt(fp string) bool {
	if fp == "" {
		return false
	}
	if p.model.CompareAndSwap(nil, &fp) {
		p.log.Info("encoder pool: model adopted", "fingerprint", fp)
		return true
	}
	return p.Fingerprint() == fp
}
