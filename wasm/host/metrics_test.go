package wasmhost

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterMetricsOnAnotherRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 { // a second registration (a reload, a second node) is not an error
		if err := RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
	}
	metricCalls.WithLabelValues("metrics-test").Inc()
	metricInstances.WithLabelValues("metrics-test").Inc()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"podsearch_wasm_calls_total", "podsearch_wasm_instances_created_total"} {
		if !strings.Contains(got, want) {
			t.Errorf("registry has %q, not %s", got, want)
		}
	}
}

func TestMetricsStayOffTheDefaultRegistry(t *testing.T) {
	metricCalls.WithLabelValues("metrics-test").Inc()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "podsearch_wasm_") {
			t.Errorf("%s is on the default registry", f.GetName())
		}
	}
}
