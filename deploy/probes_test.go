package deploy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsearch/podsearch/edge"
)

// TestEdgeProbePathsAnswer starts a real edge node and requests every path the manifests
// probe or scrape on serve-edge containers: each must answer 200.
func TestEdgeProbePathsAnswer(t *testing.T) {
	paths := map[string]bool{}
	for _, dir := range overlays {
		for _, o := range build(t, dir, map[string]bool{}) {
			pt := podTemplate(o)
			if pt == nil {
				continue
			}
			for _, c := range pt.Spec.Containers {
				if len(c.Args) == 0 || c.Args[0] != "serve-edge" {
					continue
				}
				for _, p := range []string{pathOf(c.StartupProbe), pathOf(c.ReadinessProbe), pathOf(c.LivenessProbe), pt.Annotations["prometheus.io/path"]} {
					if p != "" {
						paths[p] = true
					}
				}
			}
		}
	}
	if len(paths) == 0 {
		t.Fatal("no serve-edge probes found")
	}
	srv, err := edge.New(edge.Config{
		Open: func(context.Context) (edge.Searcher, error) {
			return probeSearcher{}, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	for p := range paths {
		resp, err := http.Get("http://" + ln.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("serve-edge answers %s with %d", p, resp.StatusCode)
		}
	}
}

func pathOf(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return ""
	}
	return p.HTTPGet.Path
}

// probeSearcher is a node's shards reduced to what the probes need: a version.
type probeSearcher struct{}

func (probeSearcher) Search(context.Context, edge.ShardQuery) ([]edge.Hit, error) { return nil, nil }
func (probeSearcher) IndexVersion() string                                        { return "probe" }
func (probeSearcher) Fingerprint() string                                         { return "" }
func (probeSearcher) Close() error                                                { return nil }
