package cache

import "github.com/prometheus/client_golang/prometheus"

// Tier names used as the "tier" label.
const (
	tierMemory = "memory"
	tierRedis  = "redis"
)

// Lookup results used as the "result" label: hit, miss (absent), invalid (present but
// corrupted or foreign, so a miss), error (the call failed), skipped (the breaker was open).
const (
	resHit     = "hit"
	resMiss    = "miss"
	resInvalid = "invalid"
	resError   = "error"
	resSkipped = "skipped"
)

// metrics are the cache's Prometheus collectors.
type metrics struct {
	lookups  *prometheus.CounterVec // tier, result; one per sequence
	writes   *prometheus.CounterVec // result: ok, error, skipped, dropped; one per sequence
	encoded  prometheus.Counter     // sequences sent to the backing Embedder
	refused  *prometheus.CounterVec // reason; Redis values refused (each also a lookup "invalid")
	breaker  prometheus.Gauge       // 0 closed, 1 half-open, 2 open
	redisDur *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_query_cache_lookups_total",
			Help: "Query-embedding cache lookups per tier and result (hit, miss, invalid, error, skipped), one per token sequence.",
		}, []string{"tier", "result"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_query_cache_redis_writes_total",
			Help: "Vectors written to Redis by result (ok, error, skipped by the open breaker, dropped from a full queue).",
		}, []string{"result"}),
		encoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podsearch_query_cache_encoded_total",
			Help: "Token sequences the cache sent to the backing encoder (misses in every tier).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsearch_query_cache_redis_refused_total",
			Help: "Redis values refused and treated as misses, by reason: corrupt, old_format, model (another model's), key (copied from another key), auth (missing or wrong HMAC).",
		}, []string{"reason"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podsearch_query_cache_redis_breaker_state",
			Help: "State of the circuit breaker in front of Redis: 0 closed, 1 half-open, 2 open (Redis skipped).",
		}),
		redisDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podsearch_query_cache_redis_seconds",
			Help:    "Duration of Redis calls of the query-embedding cache (op: get, set).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
	}
	for _, t := range []string{tierMemory, tierRedis} {
		for _, r := range []string{resHit, resMiss, resInvalid, resError, resSkipped} {
			m.lookups.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{reasonCorrupt, reasonFormat, reasonModel, reasonKey, reasonAuth} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lookups, m.writes, m.encoded, m.refused, m.breaker, m.redisDur} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
