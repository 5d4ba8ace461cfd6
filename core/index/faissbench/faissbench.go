// Package faissbench runs FAISS beside podsearch's index in `podsearch bench index`: it
// embeds faiss_bench.py, a Python script for Debian's python3-faiss, and runs it on the
// same vectors and queries, single-threaded, one query per call.
package faissbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	_ "embed"
)

//go:embed faiss_bench.py
var script []byte

// Script is the Python source run by Run.
func Script() []byte { return bytes.Clone(script) }

// ErrUnavailable is returned when Python, NumPy or FAISS is not installed.
var ErrUnavailable = errors.New("faissbench: FAISS not available (apt-get install python3-faiss python3-numpy libopenblas0-pthread)")

// Options are the script's inputs: file paths (TEXMEX .fvecs/.ivecs) and settings.
type Options struct {
	// Python is the interpreter (default /usr/bin/python3, which has Debian's numpy).
	Python               string
	Base, Queries, Truth string
	Metric               string // "l2" or "ip"
	K, NList, M, M4      int
	NProbes              []int
	Refine               int
	HNSWEf               []int
	MinSeconds           float64
}

// Row is one configuration's result.
type Row map[string]any

// Run executes the script and returns its rows.
func Run(ctx context.Context, o Options) ([]Row, error) {
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	if _, err := exec.LookPath(o.Python); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	dir, err := os.MkdirTemp("", "faissbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "faiss_bench.py")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		return nil, err
	}
	args := []string{path, "--base", o.Base, "--queries", o.Queries, "--gt", o.Truth,
		"--metric", o.Metric, "--k", strconv.Itoa(o.K), "--nlist", strconv.Itoa(o.NList),
		"--m", strconv.Itoa(o.M), "--m4", strconv.Itoa(o.M4), "--nprobe", joinInts(o.NProbes),
		"--refine", strconv.Itoa(o.Refine), "--hnsw-ef", joinInts(o.HNSWEf),
		"--min-seconds", strconv.FormatFloat(o.MinSeconds, 'f', -1, 64)}
	cmd := exec.CommandContext(ctx, o.Python, args...)
	// One BLAS thread for single-thread timing; passive OpenMP waits so idle build threads do
	// not spin on a shared machine.
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("faissbench: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("faissbench: bad output line %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
