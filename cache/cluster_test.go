package cache

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/internal/standin"
)

// A 3-master Redis Cluster on loopback: writes and batched reads span hash slots on every
// node (pipelined GETs, since MGET cannot cross slots) and a second cache reads them all.
func TestRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	rc := openRedis(t, cl.URL())
	a, _ := newCache(t, Config{Redis: rc}, fpA)
	if !a.redis.cluster {
		t.Fatal("a cluster URL did not give a cluster client")
	}
	seqs := queries(350, 11)
	vecs := make([][]float32, 300)
	for i := range vecs {
		vecs[i] = standin.Vector(seqs[i], 512)
	}
	if err := a.Store(context.Background(), seqs[:300], vecs); err != nil {
		t.Fatal(err)
	}
	embed(t, a, seqs[300:]) // background writes
	flush(t, a)
	total := 0
	for _, n := range cl.Nodes {
		s, err := n.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		k, _ := strconv.Atoi(s)
		if k == 0 {
			t.Fatalf("node %s holds no keys", n.Addr())
		}
		total += k
	}
	if total != 350 {
		t.Fatalf("cluster holds %d keys, want 350", total)
	}
	// The readers' request-path timeout is generous: this test is about where the keys live,
	// and a full race run on two busy cores can hold a pipelined read past the default 100ms,
	// which the cache (rightly) turns into misses.
	readers := Config{Redis: rc, LookupTimeout: 5 * time.Second}
	b, encB := newCache(t, readers, fpA)
	got := b.Lookup(context.Background(), seqs)
	checkVectors(t, seqs, got, 0.99999)
	c, encC := newCache(t, readers, fpA)
	checkVectors(t, seqs, embed(t, c, seqs), 0.99999)
	if encB.Calls()+encC.Calls() != 0 {
		t.Fatal("reading from the cluster called the encoder")
	}
}
