package edge

import (
	"context"
	"os"
	"time"
)

// Watch reloads the shards whenever the file at path changes (its size, modification time
// or inode, as an atomic rename gives), checking every interval, until ctx ends. Point it at
// the file a shard rollout replaces last, such as the index manifest. A failed reload is
// logged and retried at the next change. Watch takes the file's current state as the
// baseline, then returns at once and watches in the background; the returned channel is
// closed when the watcher has stopped.
func (s *Server) Watch(ctx context.Context, path string, interval time.Duration) <-chan struct{} {
	last, _ := os.Stat(path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fi, err := os.Stat(path)
			if err != nil || (last != nil && os.SameFile(fi, last) && fi.Size() == last.Size() && fi.ModTime().Equal(last.ModTime())) {
				continue
			}
			last = fi
			s.log.Info("watched file changed; reloading shards", "path", path)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			_, _, _ = s.Reload(rctx) // Reload logs its outcome
			cancel()
		}
	}()
	return done
}
