package wasmhost

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// The wasm metrics count for the whole process, as the runtime they describe is shared by
// the process (Shared). They are registered on no registry until RegisterMetrics puts them
// on the one a service serves.
var (
	metricCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_calls_total",
		Help: "Guest function calls, by module.",
	}, []string{"module"})
	metricTraps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_traps_total",
		Help: "Guest calls that trapped or were interrupted (the instance is replaced), by module.",
	}, []string{"module"})
	metricInstances = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podsearch_wasm_instances_created_total",
		Help: "Guest instances created, replacements of failed ones included, by module.",
	}, []string{"module"})
)

// RegisterMetrics registers the wasm metrics (podsearch_wasm_*) on reg, the registry a
// service serves on its /metrics (the edge's). Several registries may hold them (one per
// edge node of a process); registering them twice on reg is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricCalls, metricTraps, metricInstances} {
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
