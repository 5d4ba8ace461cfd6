package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// RequestError is a request the service refused as bad input (a 4xx other than 429); it is
// never retried.
type RequestError struct {
	// Status is the HTTP status.
	Status int
	// Message is the service's explanation.
	Message string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("encoder service refused the request (%d): %s", e.Status, e.Message)
}

// Embed implements encoder.Embedder over the pool. Sequences longer than encoder.MaxTokens
// are clipped first (the model would clip them anyway).
func (p *Pool) Embed(ctx context.Context, tokenIDs [][]int32) ([][]float32, error) {
	if len(tokenIDs) == 0 {
		return [][]float32{}, nil
	}
	clipped := make([][]int32, len(tokenIDs))
	for i, s := range tokenIDs {
		clipped[i] = s[:min(len(s), encoder.MaxTokens)]
	}
	body := wire.EncodeTokens(nil, clipped)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.cfg.DefaultTimeout)
	}
	tried := make([]*member, 0, p.cfg.MaxAttempts)
	var lastErr error
	for try := 0; try < p.cfg.MaxAttempts; try++ {
		if try > 0 {
			if err := sleep(ctx, deadline, p.backoff(try)); err != nil {
				break
			}
		}
		m := p.pick(tried)
		if m == nil {
			lastErr = ErrNoMembers
			continue
		}
		tried = append(tried, m)
		vecs, err := p.hedged(ctx, m, &tried, body, deadline)
		if err == nil {
			if len(vecs) != len(tokenIDs) {
				return nil, fmt.Errorf("encoder pool: %s returned %d vectors for %d sequences", m.addr, len(vecs), len(tokenIDs))
			}
			return vecs, nil
		}
		var re *RequestError
		if errors.As(err, &re) {
			return nil, err
		}
		lastErr = err
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("encoder pool: %w (last error: %v)", err, lastErr)
	}
	if time.Until(deadline) < p.cfg.BackoffBase {
		return nil, fmt.Errorf("encoder pool: %w after %d tries (last error: %v)", context.DeadlineExceeded, len(tried), lastErr)
	}
	return nil, fmt.Errorf("encoder pool: gave up after %d tries: %w", len(tried), lastErr)
}

// backoff is the jittered pause before retry number try (1-based).
func (p *Pool) backoff(try int) time.Duration {
	d := p.cfg.BackoffBase << min(try-1, 16)
	d = min(d, p.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, deadline time.Time, d time.Duration) error {
	if time.Until(deadline) <= d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pick chooses the less loaded of two random members, preferring in turn: available
// members not yet tried, available members, then (health checks can lag or time out under
// load) any member whose breaker lets a request through, untried first. Nil when none.
func (p *Pool) pick(tried []*member) *member {
	now := time.Now()
	all := p.list()
	for _, pass := range []struct{ strict, allowTried bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		var cands []*member
		for _, m := range all {
			ok := m.breakerAllows(now)
			if pass.strict {
				ok = m.available(now)
			}
			if ok && (pass.allowTried || !slices.Contains(tried, m)) {
				cands = append(cands, m)
			}
		}
		for len(cands) > 0 {
			i := rand.N(len(cands))
			c := cands[i]
			if len(cands) > 1 {
				j := rand.N(len(cands) - 1)
				if j >= i {
					j++
				}
				if cands[j].outstanding.Load() < c.outstanding.Load() {
					i, c = j, cands[j]
				}
			}
			if c.acquire(now) {
				return c
			}
			cands = slices.Delete(cands, i, i+1)
		}
	}
	return nil
}

type result struct {
	m    *member
	vecs [][]float32
	err  error
}

// hedged sends body to m and, when hedging is on and m is slower than the hedge delay, a
// second copy to another member; the first success wins.
func (p *Pool) hedged(ctx context.Context, m *member, tried *[]*member, body []byte, deadline time.Time) ([][]float32, error) {
	delay, hedge := p.hedgeDelay()
	if !hedge {
		return p.send(ctx, m, body, deadline)
	}
	results := make(chan result, 2)
	go func() {
		v, err := p.send(ctx, m, body, deadline)
		results <- result{m, v, err}
	}()
	t := time.NewTimer(delay)
	defer t.Stop()
	inflight := 1
	var firstErr error
	for {
		select {
		case r := <-results:
			inflight--
			if r.err == nil {
				return r.vecs, nil
			}
			if firstErr == nil {
				firstErr = r.err
			}
			if inflight == 0 {
				return nil, firstErr
			}
		case <-t.C:
			if h := p.pick(*tried); h != nil && !slices.Contains(*tried, h) {
				*tried = append(*tried, h)
				p.hedges.Add(1)
				inflight++
				go func() {
					v, err := p.send(ctx, h, body, deadline)
					results <- result{h, v, err}
				}()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// send makes one request to m and updates m's load, breaker and throttle.
func (p *Pool) send(ctx context.Context, m *member, body []byte, deadline time.Time) ([][]float32, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + m.addr + wire.EmbedPath)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(wire.ContentTypeTokens)
	if p.cfg.Float16 {
		req.Header.Set("Accept", wire.ContentTypeF16)
	} else {
		req.Header.Set("Accept", wire.ContentTypeF32)
	}
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	start := time.Now()
	attemptDeadline := start.Add(p.cfg.AttemptTimeout)
	if deadline.Before(attemptDeadline) {
		attemptDeadline = deadline
	}
	if ms := time.Until(deadline).Milliseconds(); ms > 0 {
		req.Header.Set(wire.HeaderDeadline, strconv.FormatInt(ms, 10))
	} else {
		m.release()
		return nil, context.DeadlineExceeded
	}
	req.SetBodyRaw(body)
	m.outstanding.Add(1)
	err := m.hc.DoDeadline(req, resp, attemptDeadline)
	m.outstanding.Add(-1)
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil && now.Before(deadline) {
			p.failed(m, now)
		} else {
			m.release()
		}
		return nil, fmt.Errorf("%s: %w", m.addr, err)
	}
	switch code := resp.StatusCode(); {
	case code == fasthttp.StatusOK:
		model, vecs, err := wire.DecodeEmbeddings(resp.Body())
		if err != nil {
			p.failed(m, now)
			return nil, fmt.Errorf("%s: %w", m.addr, err)
		}
		if !p.adopt(model) {
			m.healthy.Store(false)
			p.failed(m, now)
			return nil, fmt.Errorf("%s: serves model %q, the pool's is %q", m.addr, model, p.Fingerprint())
		}
		m.success()
		p.lat.add(now.Sub(start))
		return vecs, nil
	case code == fasthttp.StatusTooManyRequests:
		m.release()
		ra, perr := strconv.Atoi(string(resp.Header.Peek("Retry-After")))
		if perr != nil || ra < 1 {
			ra = 1
		}
		m.throttle(now, min(time.Duration(ra)*time.Second, 5*time.Second))
		p.throttled.Add(1)
		return nil, fmt.Errorf("%s: overloaded (429): %s", m.addr, errorMessage(resp))
	case code == fasthttp.StatusGatewayTimeout || code >= 500:
		if code == fasthttp.StatusServiceUnavailable {
			m.healthy.Store(false)
		}
		p.failed(m, now)
		return nil, fmt.Errorf("%s: status %d: %s", m.addr, code, errorMessage(resp))
	default:
		m.success() // the member works; the request was bad
		return nil, &RequestError{Status: code, Message: errorMessage(resp)}
	}
}

func (p *Pool) failed(m *member, now time.Time) {
	p.failures.Add(1)
	if m.failure(now) {
		p.log.Warn("encoder pool: breaker opened", "addr", m.addr, "cooldown", p.cfg.BreakerCooldown)
	}
}

func errorMessage(resp *fasthttp.Response) string {
	var e wire.JSONError
	if err := json.Unmarshal(resp.Body(), &e); err == nil && e.Error != "" {
		return e.Error
	}
	b := resp.Body()
	return string(b[:min(len(b), 200)])
}

// hedgeDelay returns the current hedge delay, and false when hedging is off or there are
// too few samples yet.
func (p *Pool) hedgeDelay() (time.Duration, bool) {
	q := p.cfg.HedgeQuantile
	if q <= 0 || q >= 1 {
		return 0, false
	}
	d, ok := p.lat.quantile(q)
	return max(d, p.cfg.HedgeMin), ok
}

// latencies keeps recent successful request latencies and a cached quantile of them.
type latencies struct {
	mu      sync.Mutex
	ring    [512]time.Duration
	n       int
	cachedQ float64
	cached  time.Duration
	stale   int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.stale++
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < 32 {
		return 0, false
	}
	if l.stale >= 32 || l.cachedQ != q {
		s := slices.Clone(l.ring[:min(l.n, len(l.ring))])
		slices.Sort(s)
		l.cached = s[int(q*float64(len(s)-1))]
		l.cachedQ, l.stale = q, 0
	}
	return l.cached, true
}
