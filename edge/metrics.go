package edge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// metrics are the node's Prometheus series. Without Config.Registry each node has a
// registry of its own, so several nodes can run in one process (tests, the demo).
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	stage       *prometheus.HistogramVec
	rateLimited prometheus.Counter
	peerErrors  *prometheus.CounterVec
	partial     prometheus.Counter
	degraded    prometheus.Counter
	reloads     *prometheus.CounterVec
	unreadable  prometheus.Counter
	inflight    prometheus.Gauge
	ready       prometheus.Gauge
	handler     fasthttp.RequestHandler
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	own := reg == nil
	if own {
		reg = prometheus.NewRegistry()
	}
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100us .. 3.3s
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_edge_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "podsearch_edge_request_duration_seconds", Help: "Request latency by route.", Buckets: buckets,
		}, []string{"route"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "podsearch_edge_stage_duration_seconds", Help: "Time per pipeline stage of search requests.", Buckets: buckets,
		}, []string{"stage"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podsearch_edge_rate_limited_total", Help: "Requests refused with 429 by the per-client rate limit.",
		}),
		peerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_edge_peer_errors_total", Help: "Failed or late fan-out calls by peer.",
		}, []string{"peer"}),
		partial: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podsearch_edge_partial_responses_total", Help: "Responses flagged partial because a peer's shards were missing.",
		}),
		degraded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podsearch_edge_degraded_queries_total", Help: "Hybrid queries answered keyword-only because embedding failed.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_edge_reloads_total", Help: "Shard reloads by result.",
		}, []string{"result"}),
		unreadable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podsearch_edge_unreadable_shards_total",
			Help: "Searches that found a served segment file changed on disk (answered without the local shards).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podsearch_edge_inflight_requests", Help: "Search requests being served.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podsearch_edge_ready", Help: "1 when shards are loaded and the node is not draining.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.stage, m.rateLimited, m.peerErrors,
		m.partial, m.degraded, m.reloads, m.unreadable, m.inflight, m.ready}
	if own {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: metrics: %w", err)
		}
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m, nil
}
