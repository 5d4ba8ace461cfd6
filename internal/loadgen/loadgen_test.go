package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestQuantileRules: the two rules on the same samples, as the benchmarks have computed
// them (Lower: index ⌊p·(n−1)⌋, Upper: index min(n−1, ⌊p·n⌋)).
func TestQuantileRules(t *testing.T) {
	var d []time.Duration
	for i := 10; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	Sort(d)
	for _, c := range []struct {
		p            float64
		lower, upper time.Duration
	}{{0.5, 5 * time.Millisecond, 6 * time.Millisecond}, {0.9, 9 * time.Millisecond, 10 * time.Millisecond},
		{0.99, 9 * time.Millisecond, 10 * time.Millisecond}, {0, time.Millisecond, time.Millisecond}, {1, 10 * time.Millisecond, 10 * time.Millisecond}} {
		if l, u := Quantile(d, c.p, Lower), Quantile(d, c.p, Upper); l != c.lower || u != c.upper {
			t.Errorf("p%.2f: lower %v upper %v, want %v %v", c.p, l, u, c.lower, c.upper)
		}
	}
	if Quantile(nil, 0.5, Upper) != 0 || Quantile(nil, 0.5, Lower) != 0 {
		t.Error("quantile of no samples")
	}
	if Millis(1234567*time.Nanosecond) != 1.234 {
		t.Errorf("Millis %v", Millis(1234567*time.Nanosecond))
	}
}

// TestClosedCountsAnswers runs the closed loop against a loopback server that answers 200,
// 429 or 500 by body: answered requests carry their units and latencies, 429s count as
// throttled, 500s as errors with the first described; Before and After frame the measured
// time, and warm-up requests are not counted.
func TestClosedCountsAnswers(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path != "/embed" || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "x/y" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		buf := make([]byte, 16)
		n, _ := r.Body.Read(buf)
		switch string(buf[:n]) {
		case "busy":
			http.Error(w, "busy", http.StatusTooManyRequests)
		case "fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	var before, after time.Time
	lg := Closed{Concurrency: 2, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Path: "/embed",
		Bodies: [][]byte{[]byte("ok"), []byte("busy"), []byte("fail")}, Units: []int{3, 0, 0},
		ContentType: "a/b", Accept: "x/y", Token: "tok",
		Before: func() { before = time.Now() }, After: func() { after = time.Now() }}
	m := lg.Run([]string{srv.URL})
	if m.Requests == 0 || m.Throttled == 0 || m.Errors == 0 || m.Units != 3*m.Requests || int64(len(m.Lats)) != m.Requests {
		t.Fatalf("measurement %+v", m)
	}
	if !strings.Contains(m.FirstErr, "status 500") {
		t.Errorf("first error %q", m.FirstErr)
	}
	if m.Seconds < 0.2 || after.Sub(before) < 200*time.Millisecond {
		t.Errorf("measured %.3fs, window %v", m.Seconds, after.Sub(before))
	}
	if counted := m.Requests + m.Throttled + m.Errors; served.Load() <= counted {
		t.Errorf("served %d, counted %d: warm-up requests must not count", served.Load(), counted)
	}
	var total Measurement
	total.Add(m)
	total.Add(m)
	if total.Requests != 2*m.Requests || len(total.Lats) != 2*len(m.Lats) || total.FirstErr != m.FirstErr {
		t.Errorf("sum %+v", total)
	}
}

// TestAttackerRate sends a fixed rate for a short duration to a loopback server and gets
// every result back; a cancelled context stops it early.
func TestAttackerRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	target := func(tg *vegeta.Target) error {
		tg.Method, tg.URL = http.MethodGet, srv.URL
		return nil
	}
	res := NewAttacker(AttackOptions{Rate: 50, Workers: 2, Duration: 400 * time.Millisecond, Timeout: time.Second, Name: "t"}).Run(context.Background(), target)
	if len(res) < 10 || len(res) > 25 {
		t.Fatalf("%d results at 50/s for 0.4s, want about 20", len(res))
	}
	for _, r := range res {
		if r.Code != http.StatusOK || r.Attack != "t" {
			t.Fatalf("result %+v", r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res = NewAttacker(AttackOptions{Workers: 2, Duration: 10 * time.Second, Timeout: time.Second}).Run(ctx, target)
	if time.Since(start) > 5*time.Second || len(res) == 0 {
		t.Fatalf("cancelled attack ran %v with %d results", time.Since(start), len(res))
	}
}
