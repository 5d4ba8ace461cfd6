package gpuencoder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
)

// BatchConfig sets how requests are packed into model batches.
type BatchConfig struct {
	// MaxBatchTokens is the token budget of one batch, counted with padding (sequences x
	// longest sequence). Default 4096.
	MaxBatchTokens int
	// MaxBatchSeqs is the most sequences in one batch; 1 turns batching off. Default 64.
	MaxBatchSeqs int
	// MaxWait is how long the oldest queued sequence may wait for its batch to fill before
	// the batch runs anyway, while another batch is running (an idle service runs at once).
	// Zero means run as soon as a session is free. Default 2ms; a negative value means zero.
	MaxWait time.Duration
	// MaxQueueSeqs bounds the sequences waiting; a request that does not fit is refused
	// (429). Default 4096.
	MaxQueueSeqs int
	// BucketWidth groups sequences whose lengths differ by less than this many tokens.
	// Default 4.
	BucketWidth int
	// MaxPadding bounds the padding a batch may carry when it is topped up from other
	// buckets: padded tokens (sequences x longest) at most MaxPadding x real tokens, and no
	// sequence added shorter than longest / MaxPadding. Default 1.5.
	MaxPadding float64
}

func (c *BatchConfig) fill() {
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 4096
	}
	if c.MaxBatchSeqs <= 0 {
		c.MaxBatchSeqs = 64
	}
	if c.MaxWait == 0 {
		c.MaxWait = 2 * time.Millisecond
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	if c.MaxQueueSeqs <= 0 {
		c.MaxQueueSeqs = 4096
	}
	if c.BucketWidth <= 0 {
		c.BucketWidth = 4
	}
	if c.MaxPadding < 1 {
		c.MaxPadding = 1.5
	}
}

var (
	// errQueueFull is returned by submit when the queue has no room for the request.
	errQueueFull = errors.New("encoder queue is full")
	// errClosed is returned by submit once shutdown has begun.
	errClosed = errors.New("encoder service is shutting down")
	// errExpired marks work whose deadline passed before the model ran it.
	errExpired = errors.New("deadline expired before the model ran the request")
)

// job is one request: its sequences, where their vectors go and when it stops mattering.
type job struct {
	seqs      [][]int32
	out       [][]float32
	deadline  time.Time
	enqueued  time.Time
	pending   atomic.Int32
	cancelled atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	err       error
}

func newJob(seqs [][]int32, deadline time.Time) *job {
	j := &job{seqs: seqs, out: make([][]float32, len(seqs)), deadline: deadline, done: make(chan struct{})}
	j.pending.Store(int32(len(seqs)))
	return j
}

// fail ends the job with err (the first call wins) and stops its other sequences.
func (j *job) fail(err error) {
	j.cancelled.Store(true)
	j.closeOnce.Do(func() {
		j.err = err
		close(j.done)
	})
}

func (j *job) finishOne() {
	if j.pending.Add(-1) == 0 {
		j.closeOnce.Do(func() { close(j.done) })
	}
}

// dead reports whether the job's sequences must not reach the model any more.
func (j *job) dead(now time.Time) bool {
	return j.cancelled.Load() || !now.Before(j.deadline)
}

// item is one sequence of a job, the unit of batching.
type item struct {
	j   *job
	idx int
}

func (it item) len() int { return len(it.j.seqs[it.idx]) }

// batcher queues sequences in length buckets and feeds one worker per backend.
type batcher struct {
	cfg      BatchConfig
	backends []encoder.Embedder
	m        *metrics

	mu      sync.Mutex
	buckets [][]item
	queued  int
	wake    chan struct{}
	closing bool
	running int // batches taken and not finished

	seqsPerSec atomic.Uint64 // float64 bits: smoothed model throughput, for Retry-After
	wg         sync.WaitGroup
}

func newBatcher(cfg BatchConfig, backends []encoder.Embedder, maxSeqTokens int, m *metrics) *batcher {
	cfg.fill()
	b := &batcher{
		cfg:      cfg,
		backends: backends,
		m:        m,
		buckets:  make([][]item, (maxSeqTokens+cfg.BucketWidth-1)/cfg.BucketWidth+1),
		wake:     make(chan struct{}),
	}
	for _, be := range backends {
		b.wg.Add(1)
		go b.worker(be)
	}
	return b
}

func (b *batcher) bucketOf(n int) int {
	i := (n - 1) / b.cfg.BucketWidth
	if i >= len(b.buckets) {
		i = len(b.buckets) - 1
	}
	if i < 0 {
		i = 0
	}
	return i
}

// broadcast wakes every waiting worker; b.mu must be held.
func (b *batcher) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// submit queues every sequence of j, or none when they do not all fit.
func (b *batcher) submit(j *job) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return errClosed
	}
	if b.queued+len(j.seqs) > b.cfg.MaxQueueSeqs {
		return errQueueFull
	}
	j.enqueued = time.Now()
	for i, s := range j.seqs {
		bi := b.bucketOf(len(s))
		b.buckets[bi] = append(b.buckets[bi], item{j: j, idx: i})
		b.queued++
	}
	b.m.queueDepth.Set(float64(b.queued))
	b.broadcast()
	return nil
}

// depth returns the sequences waiting.
func (b *batcher) depth() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queued
}

// retryAfter estimates in whole seconds how long the current queue takes to drain.
func (b *batcher) retryAfter() int {
	rate := math.Float64frombits(b.seqsPerSec.Load())
	q := b.depth()
	if rate <= 0 {
		return 1
	}
	s := int(math.Ceil(float64(q) / rate))
	return min(max(s, 1), 30)
}

// close stops new work and waits until every queued sequence has been run or dropped.
func (b *batcher) close() {
	b.mu.Lock()
	b.closing = true
	b.broadcast()
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) worker(be encoder.Embedder) {
	defer b.wg.Done()
	for {
		batch, ok := b.next()
		if !ok {
			return
		}
		b.run(be, batch)
		b.mu.Lock()
		b.running--
		if b.running == 0 && b.queued > 0 {
			b.broadcast() // a worker waiting for its batch to fill may run it now
		}
		b.mu.Unlock()
	}
}

// next blocks until a batch is due and takes it off the queue; false once closed and empty.
func (b *batcher) next() ([]item, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.queued == 0 {
			if b.closing {
				return nil, false
			}
			b.waitLocked(nil)
			continue
		}
		now := time.Now()
		pick, oldest := -1, -1
		for bi, q := range b.buckets {
			if len(q) == 0 {
				continue
			}
			if oldest < 0 || q[0].j.enqueued.Before(b.buckets[oldest][0].j.enqueued) {
				oldest = bi
			}
			if b.fullLocked(bi) && (pick < 0 || q[0].j.enqueued.Before(b.buckets[pick][0].j.enqueued)) {
				pick = bi
			}
		}
		due := b.buckets[oldest][0].j.enqueued.Add(b.cfg.MaxWait)
		switch {
		case !now.Before(due):
			// The oldest sequence is overdue: its bucket goes first, even before full
			// buckets of other lengths, so no length starves under load.
			pick = oldest
		case pick < 0 && (b.closing || b.running == 0):
			// Waiting for a batch to fill only pays while the model is busy: an idle
			// service runs what it has at once.
			pick = oldest
		}
		if pick < 0 {
			t := time.NewTimer(due.Sub(now))
			b.waitLocked(t.C)
			t.Stop()
			continue
		}
		if batch := b.takeLocked(pick, now); len(batch) > 0 {
			b.running++
			return batch, true
		}
	}
}

// waitLocked releases b.mu until the queue changes or timer fires.
func (b *batcher) waitLocked(timer <-chan time.Time) {
	wake := b.wake
	b.mu.Unlock()
	select {
	case <-wake:
	case <-timer:
	}
	b.mu.Lock()
}

// fullLocked reports whether bucket bi alone fills a batch.
func (b *batcher) fullLocked(bi int) bool {
	q := b.buckets[bi]
	if len(q) >= b.cfg.MaxBatchSeqs {
		return true
	}
	return len(q)*min((bi+1)*b.cfg.BucketWidth, len(b.buckets)*b.cfg.BucketWidth) >= b.cfg.MaxBatchTokens
}

// takeLocked takes a batch starting with bucket pick (first in, first out), then tops it
// up from the shorter buckets and then the longer ones while the padded token budget and
// MaxPadding allow. Dead sequences met on the way are dropped and their jobs failed.
func (b *batcher) takeLocked(pick int, now time.Time) []item {
	var batch []item
	longest, real := 0, 0
	full := false
	order := make([]int, 0, len(b.buckets))
	order = append(order, pick)
	for bi := pick - 1; bi >= 0; bi-- {
		order = append(order, bi)
	}
	for bi := pick + 1; bi < len(b.buckets); bi++ {
		order = append(order, bi)
	}
	for _, bi := range order {
		q := b.buckets[bi]
		k := 0
		for ; k < len(q) && !full; k++ {
			it := q[k]
			if it.j.dead(now) {
				it.j.fail(errExpired)
				b.m.expired.Inc()
				b.removedLocked(it)
				continue
			}
			l := max(longest, it.len())
			padded := (len(batch) + 1) * l
			if len(batch) > 0 && padded > b.cfg.MaxBatchTokens {
				full = true
				break
			}
			if bi != pick && (float64(padded) > b.cfg.MaxPadding*float64(real+it.len()) ||
				float64(it.len())*b.cfg.MaxPadding < float64(l)) {
				break // this bucket's lengths are too far from the batch's; try the next
			}
			batch = append(batch, it)
			longest, real = l, real+it.len()
			b.removedLocked(it)
			if len(batch) >= b.cfg.MaxBatchSeqs {
				full = true
			}
		}
		b.buckets[bi] = append(q[:0], q[k:]...)
		if full {
			break
		}
	}
	b.m.queueDepth.Set(float64(b.queued))
	return batch
}

func (b *batcher) removedLocked(it item) {
	b.queued--
}

// run embeds one batch on backend be and delivers the vectors. Sequences whose job died
// since they were taken are dropped here, before the model.
func (b *batcher) run(be encoder.Embedder, batch []item) {
	now := time.Now()
	live := batch[:0]
	for _, it := range batch {
		if it.j.dead(now) {
			it.j.fail(errExpired)
			b.m.expired.Inc()
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	ids := make([][]int32, len(live))
	tokens, longest := 0, 0
	for i, it := range live {
		ids[i] = it.j.seqs[it.idx]
		tokens += len(ids[i])
		longest = max(longest, len(ids[i]))
	}
	start := time.Now()
	b.m.running.Inc()
	vecs, err := be.Embed(context.Background(), ids)
	b.m.running.Dec()
	el := time.Since(start)
	b.m.batchSeqs.Observe(float64(len(live)))
	b.m.batchTokens.Observe(float64(len(live) * longest))
	b.m.batchDuration.Observe(el.Seconds())
	if err == nil && len(vecs) != len(ids) {
		err = fmt.Errorf("backend returned %d vectors for %d sequences", len(vecs), len(ids))
	}
	if err != nil {
		b.m.backendErrors.Inc()
		for _, it := range live {
			it.j.fail(fmt.Errorf("model: %w", err))
		}
		return
	}
	b.m.tokens.Add(float64(tokens))
	b.m.seqs.Add(float64(len(live)))
	b.noteRate(float64(len(live)) / max(el.Seconds(), 1e-6) * float64(len(b.backends)))
	for i, it := range live {
		it.j.out[it.idx] = vecs[i]
		it.j.finishOne()
	}
}

// noteRate folds one batch's throughput into the smoothed rate.
func (b *batcher) noteRate(r float64) {
	for {
		old := b.seqsPerSec.Load()
		o := math.Float64frombits(old)
		n := r
		if o > 0 {
			n = 0.8*o + 0.2*r
		}
		if b.seqsPerSec.CompareAndSwap(old, math.Float64bits(n)) {
			return
		}
	}
}
