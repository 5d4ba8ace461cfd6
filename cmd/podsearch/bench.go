package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
)

// benchCommand is one `podsearch bench X` benchmark.
type benchCommand struct {
	summary string
	run     func(args []string) error
}

var benches = map[string]benchCommand{}

// registerBench adds `podsearch bench NAME`; each benchmark lives in its own bench_NAME.go.
func registerBench(name, summary string, run func(args []string) error) {
	if _, dup := benches[name]; dup {
		panic("podsearch: bench registered twice: " + name)
	}
	benches[name] = benchCommand{summary: summary, run: run}
}

func init() {
	register(&command{
		name:    "bench",
		summary: "side-by-side benchmarks (index, wasm, encoder, e2e); 'bench -h' lists them",
		run:     runBench,
	})
}

func runBench(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		names := make([]string, 0, len(benches))
		for n := range benches {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintln(os.Stdout, "usage: podsearch bench NAME [flags]\n\nbenchmarks:")
		for _, n := range names {
			fmt.Fprintf(os.Stdout, "  %-10s %s\n", n, benches[n].summary)
		}
		if len(args) == 0 {
			return fmt.Errorf("%w: name a benchmark", errUsage)
		}
		return nil
	}
	b, ok := benches[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown benchmark %q", errUsage, args[0])
	}
	return b.run(args[1:])
}

// startCPUProfile starts a CPU profile written to path; the returned function stops it and
// closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
