package edge

import (
	"strconv"
	"time"
)

// stageTimer records how long each stage of a request took, for the Server-Timing header
// and the stage histogram.
type stageTimer struct {
	names []string
	durs  []time.Duration
	last  time.Time
}

func newStageTimer() *stageTimer { return &stageTimer{last: time.Now()} }

// mark ends the current stage, naming it, and starts the next.
func (t *stageTimer) mark(name string) {
	now := time.Now()
	t.add(name, now.Sub(t.last))
	t.last = now
}

// add records a stage measured elsewhere.
func (t *stageTimer) add(name string, d time.Duration) {
	t.names = append(t.names, name)
	t.durs = append(t.durs, d)
}

// header formats the stages as a Server-Timing header value (durations in milliseconds).
func (t *stageTimer) header(total time.Duration) string {
	b := make([]byte, 0, 32*(len(t.names)+1))
	for i, n := range t.names {
		b = appendTiming(b, n, t.durs[i])
		b = append(b, ", "...)
	}
	return string(appendTiming(b, "total", total))
}

func appendTiming(b []byte, name string, d time.Duration) []byte {
	b = append(b, name...)
	b = append(b, ";dur="...)
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
}
