package loadgen

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Closed is a closed-loop load: Concurrency clients each POST a body, wait for the answer
// and send the next, for Warmup (not measured) and then Duration (measured).
type Closed struct {
	// Concurrency is the number of clients.
	Concurrency int
	// Warmup is the unmeasured load before the measured Duration.
	Warmup, Duration time.Duration
	// Path is the request path on every endpoint (e.g. /v1/embed).
	Path string
	// Bodies are the request bodies, sent in turn (client c starts at body 7c); Units[i]
	// is the work body i carries (e.g. its tokens), summed over the answered requests.
	Bodies [][]byte
	Units  []int
	// ContentType and Accept are the request's headers; Token, when set, is sent as a
	// bearer token.
	ContentType, Accept, Token string
	// Before and After, when set, are called right before and right after the measured
	// time (to read the server's own counters over it).
	Before, After func()
}

// Measurement is what one or more measured slices of load produced.
type Measurement struct {
	// Lats are the latencies of the answered requests (status 200), unsorted.
	Lats []time.Duration
	// Requests answered 200, Errors failed (transport error or another status than 200 or
	// 429), Throttled answered 429, and the Units of the answered requests.
	Requests, Errors, Throttled, Units int64
	// Seconds is the measured time.
	Seconds float64
	// FirstErr describes the first failed request ("" when none failed).
	FirstErr string
}

// Add adds o's requests and time to m.
func (m *Measurement) Add(o Measurement) {
	m.Lats = append(m.Lats, o.Lats...)
	m.Requests += o.Requests
	m.Errors += o.Errors
	m.Throttled += o.Throttled
	m.Units += o.Units
	m.Seconds += o.Seconds
	if m.FirstErr == "" {
		m.FirstErr = o.FirstErr
	}
}

// Run drives the endpoints (host:port; one per client, round robin) for Warmup + Duration
// and measures the Duration part.
func (lg Closed) Run(endpoints []string) Measurement {
	clients := make([]*fasthttp.HostClient, len(endpoints))
	for i, ep := range endpoints {
		clients[i] = &fasthttp.HostClient{Addr: strings.TrimPrefix(ep, "http://"), MaxConns: lg.Concurrency + 4,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	}
	var measuring atomic.Bool
	var reqs, errs, throttled, units atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, lg.Concurrency)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range lg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			hc := clients[c%len(clients)]
			for k := c * 7; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				q := k % len(lg.Bodies)
				req.Reset()
				req.SetRequestURI("http://" + hc.Addr + lg.Path)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType(lg.ContentType)
				req.Header.Set("Accept", lg.Accept)
				if lg.Token != "" {
					req.Header.Set("Authorization", "Bearer "+lg.Token)
				}
				req.SetBodyRaw(lg.Bodies[q])
				start := time.Now()
				err := hc.DoTimeout(req, resp, time.Minute)
				el := time.Since(start)
				if !measuring.Load() {
					continue
				}
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case resp.StatusCode() == fasthttp.StatusTooManyRequests:
					throttled.Add(1)
				case resp.StatusCode() != fasthttp.StatusOK:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d: %s", resp.StatusCode(), resp.Body()))
				default:
					reqs.Add(1)
					units.Add(int64(lg.Units[q]))
					lats[c] = append(lats[c], el)
				}
			}
		}()
	}
	time.Sleep(lg.Warmup)
	if lg.Before != nil {
		lg.Before()
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(lg.Duration)
	measuring.Store(false)
	m := Measurement{Seconds: time.Since(start).Seconds()}
	if lg.After != nil {
		lg.After()
	}
	close(stop)
	wg.Wait()
	for _, l := range lats {
		m.Lats = append(m.Lats, l...)
	}
	m.Requests, m.Errors, m.Throttled, m.Units = reqs.Load(), errs.Load(), throttled.Load(), units.Load()
	if e, ok := firstErr.Load().(string); ok {
		m.FirstErr = e
	}
	for _, hc := range clients {
		hc.CloseIdleConnections()
	}
	return m
}
