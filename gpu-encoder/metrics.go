package gpuencoder

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus series, registered on the server's own registry so
// that several servers can live in one process (tests, the batching benchmark).
type metrics struct {
	queueDepth    prometheus.Gauge
	running       prometheus.Gauge
	batchSeqs     prometheus.Histogram
	batchTokens   prometheus.Histogram
	batchDuration prometheus.Histogram
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	tokens        prometheus.Counter
	seqs          prometheus.Counter
	expired       prometheus.Counter
	rejected      *prometheus.CounterVec
	inflightBytes prometheus.Gauge
	backendErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "podsearch_encoder"
	m := &metrics{
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "queue_depth",
			Help: "Sequences waiting for a batch."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "batches_running",
			Help: "Batches on the model now."}),
		batchSeqs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_size",
			Help: "Sequences per model batch.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		batchTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_padded_tokens",
			Help: "Padded tokens per model batch (sequences x longest).", Buckets: prometheus.ExponentialBuckets(8, 2, 12)}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_duration_seconds",
			Help: "Model time per batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Embed requests by HTTP status code."}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "Embed request latency by HTTP status code.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"code"}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "tokens_total",
			Help: "Tokens embedded (without padding); rate() of it is tokens/s."}),
		seqs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sequences_total",
			Help: "Sequences embedded."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "expired_sequences_total",
			Help: "Sequences dropped before the model because their deadline passed or their caller left."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rejected_requests_total",
			Help: "Requests refused before queueing, by reason (bad_input, too_large, queue_full, inflight_bytes, expired)."}, []string{"reason"}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_body_bytes",
			Help: "Body bytes of admitted requests not yet answered (by Content-Length), bounded by MaxInflightBytes."}),
		backendErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "backend_errors_total",
			Help: "Model batches that failed."}),
	}
	reg.MustRegister(m.queueDepth, m.running, m.batchSeqs, m.batchTokens, m.batchDuration, m.requests, m.latency,
		m.tokens, m.seqs, m.expired, m.rejected, m.backendErrors, m.inflightBytes)
	return m
}
