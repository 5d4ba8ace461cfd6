package wasmhost

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricCalls = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_calls_total",
		Help: "Guest function calls, by module.",
	}, []string{"module"})
	metricTraps = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_traps_total",
		Help: "Guest calls that trapped or were interrupted (the instance is replaced), by module.",
	}, []string{"module"})
	metricInstances = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_instances_created_total",
		Help: "Guest instances created, replacements of failed ones included, by module.",
	}, []string{"module"})
	metricSwaps = promauto.NewCounter(prometheus.CounterOpts{
		Name: "podsearch_wasm_swaps_total",
		Help: "Hot swaps of a module or shard (the old one drained and closed).",
	})
)

// RegisterMetrics registers the wasm metrics (podsearch_wasm_*) on reg as well, so a
// service whose /metrics serves its own registry (the edge's) shows them. They stay on
// the default registry too; registering them twice on reg is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricCalls, metricTraps, metricInstances, metricSwaps} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}
