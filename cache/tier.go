package cache

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// redisTier is the shared tier: batched reads and pipelined writes, each call under a
// timeout and behind a circuit breaker, plus a background writer for the request path.
type redisTier struct {
	client    redis.UniversalClient
	cluster   bool // MGET cannot span hash slots: use pipelined GETs instead
	breaker   *gobreaker.CircuitBreaker[struct{}]
	ttl       time.Duration
	jitter    float64
	readTO    time.Duration
	writeTO   time.Duration
	m         *metrics
	log       *slog.Logger
	queue     chan kv
	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against sends on a closed queue
	closed    bool
	pending   atomic.Int64 // queued or being written
	done      sync.WaitGroup
}

type kv struct {
	key string
	val []byte
}

// chunk bounds the keys of one MGET and the commands of one pipeline round trip.
const chunk = 256

func newRedisTier(c redis.UniversalClient, cfg *Config, m *metrics, log *slog.Logger) *redisTier {
	_, cluster := c.(*redis.ClusterClient)
	t := &redisTier{
		client:  c,
		cluster: cluster,
		ttl:     cfg.TTL,
		jitter:  cfg.TTLJitter,
		readTO:  cfg.LookupTimeout,
		writeTO: cfg.WriteTimeout,
		m:       m,
		log:     log,
		queue:   make(chan kv, cfg.WriteQueue),
	}
	failures := cfg.BreakerFailures
	t.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// The caller giving up is not Redis's fault.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		// An error reply (OOM when full under noeviction, NOPERM, ...) comes from a live,
		// fast Redis: it fails that call but must not switch off the reads.
		IsSuccessful: func(err error) bool { return err == nil || isErrorReply(err) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.Set(float64(to))
			lvl := slog.LevelInfo
			if to == gobreaker.StateOpen {
				lvl = slog.LevelWarn
			}
			log.Log(context.Background(), lvl, "query cache: redis circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	t.done.Add(1)
	go t.writeLoop()
	return t
}

// expiry draws a TTL uniformly from ttl*(1±jitter), so keys written together (a warm-up)
// do not all expire in the same second.
func (t *redisTier) expiry() time.Duration {
	if t.ttl <= 0 {
		return 0
	}
	j := (rand.Float64()*2 - 1) * t.jitter
	return time.Duration(float64(t.ttl) * (1 + j))
}

// get returns the raw values of keys (nil where absent). Errors (Redis down, slow, breaker
// open) come back as err with all values nil; the caller treats them as misses.
func (t *redisTier) get(ctx context.Context, keys []string, timeout time.Duration) ([][]byte, error) {
	out := make([][]byte, len(keys))
	_, err := t.breaker.Execute(func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		start := time.Now()
		defer func() { t.m.redisDur.WithLabelValues("get").Observe(time.Since(start).Seconds()) }()
		pipe := t.client.Pipeline()
		var gets []*redis.StringCmd
		var mgets []*redis.SliceCmd
		for lo := 0; lo < len(keys); lo += chunk {
			hi := min(lo+chunk, len(keys))
			if t.cluster {
				for _, k := range keys[lo:hi] {
					gets = append(gets, pipe.Get(ctx, k))
				}
			} else {
				mgets = append(mgets, pipe.MGet(ctx, keys[lo:hi]...))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return struct{}{}, err
		}
		for i, g := range gets {
			b, err := g.Bytes()
			if err == nil {
				out[i] = b
			} else if !errors.Is(err, redis.Nil) {
				return struct{}{}, err
			}
		}
		for c, mg := range mgets {
			for i, v := range mg.Val() {
				if s, ok := v.(string); ok {
					out[c*chunk+i] = []byte(s)
				}
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		clear(out)
	}
	return out, err
}

// set writes items with their TTLs in pipelined round trips.
func (t *redisTier) set(ctx context.Context, items []kv) error {
	_, err := t.breaker.Execute(func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, t.writeTO)
		defer cancel()
		start := time.Now()
		defer func() { t.m.redisDur.WithLabelValues("set").Observe(time.Since(start).Seconds()) }()
		for lo := 0; lo < len(items); lo += chunk {
			pipe := t.client.Pipeline()
			for _, it := range items[lo:min(lo+chunk, len(items))] {
				pipe.Set(ctx, it.key, it.val, t.expiry())
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	switch {
	case err == nil:
		t.m.writes.WithLabelValues("ok").Add(float64(len(items)))
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		t.m.writes.WithLabelValues("skipped").Add(float64(len(items)))
	default:
		t.m.writes.WithLabelValues("error").Add(float64(len(items)))
	}
	return err
}

// enqueue hands items to the background writer without blocking; what does not fit in the
// queue is dropped (and counted): the request path never waits for Redis writes.
func (t *redisTier) enqueue(items []kv) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, it := range items {
		if t.closed {
			t.m.writes.WithLabelValues("dropped").Add(float64(len(items) - i))
			return
		}
		t.pending.Add(1)
		select {
		case t.queue <- it:
		default:
			t.pending.Add(-1)
			t.m.writes.WithLabelValues("dropped").Inc()
		}
	}
}

// writeLoop drains the queue, batching whatever is waiting into one pipeline.
func (t *redisTier) writeLoop() {
	defer t.done.Done()
	batch := make([]kv, 0, chunk)
	for it := range t.queue {
		batch = append(batch[:0], it)
	fill:
		for len(batch) < chunk {
			select {
			case more, ok := <-t.queue:
				if !ok {
					break fill
				}
				batch = append(batch, more)
			default:
				break fill
			}
		}
		if err := t.set(context.Background(), batch); err != nil && !isBreakerReject(err) {
			t.log.Debug("query cache: background redis write failed", "keys", len(batch), "err", err)
		}
		t.pending.Add(-int64(len(batch)))
	}
}

// close stops accepting writes and waits (up to the write timeout per batch) for the queue
// to drain.
func (t *redisTier) close() {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		close(t.queue)
		t.mu.Unlock()
		t.done.Wait()
	})
}

// flush waits until the writes queued so far have been attempted (for tests and jobs).
func (t *redisTier) flush(ctx context.Context) error {
	for t.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// isBreakerReject reports whether err is the breaker refusing the call (Redis skipped).
func isBreakerReject(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// isErrorReply reports whether err is an error reply from the server (as opposed to a
// network failure or a timeout).
func isErrorReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}
