package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/internal/standin"
)

// openRedis opens a client for url, closed when the test ends.
func openRedis(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	rc, err := OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

func flush(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func embed(t *testing.T, c *Cache, seqs [][]int32) [][]float32 {
	t.Helper()
	v, err := c.Embed(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRedisSharedTier(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	cfg := Config{Redis: rc, TTL: time.Hour, TTLJitter: 0.2}
	a, encA := newCache(t, cfg, fpA)
	seqs := queries(50, 3)
	checkVectors(t, seqs, embed(t, a, seqs), 1-1e-9)
	flush(t, a)
	if n, _ := srv.Do("DBSIZE"); n != "50" {
		t.Fatalf("DBSIZE %s after 50 misses, want 50", n)
	}
	// A second process (fresh in-process tier) is served by Redis alone.
	b, encB := newCache(t, cfg, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Calls() != 0 || encA.Calls() != 1 {
		t.Fatalf("encoder calls: A %d (want 1), B %d (want 0)", encA.Calls(), encB.Calls())
	}
	if h := lookups(b, tierRedis, resHit); h != 50 {
		t.Fatalf("redis hits %d, want 50", h)
	}
	// Every key carries the TTL with its jitter: within 1h ± 20%.
	keys, err := srv.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Split(keys, "\n") {
		if !strings.HasPrefix(k, DefaultPrefix+":"+fpA[:16]+":") {
			t.Fatalf("key %q lacks the prefix and fingerprint", k)
		}
		ms, err := srv.Do("PTTL", k)
		if err != nil {
			t.Fatal(err)
		}
		pttl, _ := strconv.ParseInt(ms, 10, 64)
		if d := time.Duration(pttl) * time.Millisecond; d < 47*time.Minute || d > 72*time.Minute {
			t.Fatalf("key %s TTL %v outside 1h±20%%", k, d)
		}
	}
}

// Corrupted values, foreign values and garbage under the cache's keys are misses: the
// encoder answers, the right vector is returned and the entry is rewritten.
func TestRedisCorruptedAndForeignValuesAreMisses(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	a, _ := newCache(t, Config{Redis: rc}, fpA)
	seqs := queries(10, 4)
	embed(t, a, seqs)
	flush(t, a)
	md := a.current()
	k0, k1, k2 := md.keys.key(seqs[0]), md.keys.key(seqs[1]), md.keys.key(seqs[2])
	good, err := srv.Do("GET", k0)
	if err != nil || good == "" {
		t.Fatalf("GET %s: %q %v", k0, good, err)
	}
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 1
	foreign, err := encodeValue(Float16, newFPTag(fpB), k1, sealer{}, standin.Vector([]int32{9, 9}, 512))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{k0: string(flipped), k1: string(foreign), k2: "not a vector"} {
		if _, err := srv.Do("SET", k, v); err != nil {
			t.Fatal(err)
		}
	}
	b, encB := newCache(t, Config{Redis: rc}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Sequences() != 3 {
		t.Fatalf("encoder asked for %d sequences, want the 3 bad entries", encB.Sequences())
	}
	if n := lookups(b, tierRedis, resInvalid); n != 3 {
		t.Fatalf("invalid count %d, want 3", n)
	}
	flush(t, b)
	for _, k := range []string{k0, k1, k2} {
		v, _ := srv.Do("GET", k)
		if _, err := decodeValue([]byte(v), md.tag, k, sealer{}); err != nil {
			t.Fatalf("bad entry %s not rewritten: %v", k, err)
		}
	}
	// A cache in front of another model shares no keys with this one.
	other, encO := newCache(t, Config{Redis: rc}, fpB)
	embed(t, other, seqs)
	if encO.Sequences() != int64(len(seqs)) || lookups(other, tierRedis, resHit) != 0 {
		t.Fatalf("another model read this model's vectors (encoded %d, hits %d)", encO.Sequences(), lookups(other, tierRedis, resHit))
	}
}

// The cache-poisoning attempt of issue 17: `COPY <key of A> <key of B> REPLACE` makes B's
// entry hold A's vector. The copy is refused (counted as a key refusal), B is re-encoded
// and its entry rewritten with B's own vector.
func TestRedisCopiedValueIsRefusedAndRewritten(t *testing.T) {
	for _, secret := range [][]byte{nil, []byte("a-secret-of-32-bytes-for-the-tst")} {
		t.Run(fmt.Sprintf("secret=%v", secret != nil), func(t *testing.T) {
			srv := redistest.Start(t)
			rc := openRedis(t, srv.URL())
			cfg := Config{Redis: rc, Secret: secret}
			a, _ := newCache(t, cfg, fpA)
			qa, qb := []int32{101, 7, 9}, []int32{202, 3}
			embed(t, a, [][]int32{qa, qb})
			flush(t, a)
			ka, kb := a.current().keys.key(qa), a.current().keys.key(qb)
			if n, err := srv.Do("COPY", ka, kb, "REPLACE"); err != nil || n != "1" {
				t.Fatalf("COPY: %q %v", n, err)
			}
			b, encB := newCache(t, cfg, fpA)
			got := embed(t, b, [][]int32{qb})
			checkVectors(t, [][]int32{qb}, got, 0.99999)
			if cosine(got[0], standin.Vector(qa, 512)) > 0.999 {
				t.Fatal("served A's vector for B")
			}
			if encB.Sequences() != 1 || lookups(b, tierRedis, resInvalid) != 1 || refused(b, reasonKey) != 1 {
				t.Fatalf("encoded %d, invalid %d, key refusals %d; want 1, 1, 1",
					encB.Sequences(), lookups(b, tierRedis, resInvalid), refused(b, reasonKey))
			}
			flush(t, b)
			v, err := srv.Do("GET", kb)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeValue([]byte(v), b.current().tag, kb, b.seal)
			if err != nil {
				t.Fatalf("B's entry not rewritten: %v", err)
			}
			checkVectors(t, [][]int32{qb}, [][]float32{back}, 0.99999)
			// A third process reads B's rewritten entry from Redis.
			c, encC := newCache(t, cfg, fpA)
			checkVectors(t, [][]int32{qb}, embed(t, c, [][]int32{qb}), 0.99999)
			if encC.Calls() != 0 {
				t.Fatal("the rewritten entry was not served")
			}
		})
	}
}

// With a secret, a value forged by a Redis writer who lacks it (well-formed, bound to the
// right key and model, CRC-sealed) is refused; so are the entries of a cache without the
// secret, and those of a cache with another secret.
func TestRedisSecretRefusesForgedValues(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	secret := []byte("the-edges-share-this-secret-32by")
	a, _ := newCache(t, Config{Redis: rc, Secret: secret}, fpA)
	seqs := queries(3, 21)
	md := a.current()
	for i, s := range seqs {
		k := md.keys.key(s)
		forged, err := encodeValue(Float16, md.tag, k, sealer{}, standin.Vector([]int32{9999, int32(i)}, 512))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Do("SET", k, string(forged)); err != nil {
			t.Fatal(err)
		}
	}
	got := embed(t, a, seqs)
	checkVectors(t, seqs, got, 0.99999)
	if n := refused(a, reasonAuth); n != 3 {
		t.Fatalf("auth refusals %d, want 3", n)
	}
	flush(t, a)
	// The rewritten entries are authenticated: another edge with the secret reads them, a
	// cache without it or with another secret refuses them.
	b, encB := newCache(t, Config{Redis: rc, Secret: secret}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Calls() != 0 {
		t.Fatal("an edge with the same secret did not read the authenticated entries")
	}
	for _, other := range [][]byte{nil, []byte("another-secret-of-enough-length!")} {
		c, encC := newCache(t, Config{Redis: rc, Secret: other}, fpA)
		checkVectors(t, seqs, embed(t, c, seqs), 1-1e-9)
		if encC.Sequences() != 3 || refused(c, reasonAuth) != 3 {
			t.Fatalf("secret %q: encoded %d, auth refusals %d; want 3 and 3", other, encC.Sequences(), refused(c, reasonAuth))
		}
	}
	if _, err := New(&standin.Encoder{FP: fpA}, Config{Secret: []byte("short")}); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

func refused(c *Cache, reason string) int {
	return int(testutilToFloat(c.m.refused.WithLabelValues(reason)))
}

func TestRedisEncodings(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	for _, tc := range []struct {
		enc    Encoding
		minCos float64
		bytes  int
	}{{Int8, 0.999, 539}, {Float32, 1 - 1e-9, 2071}, {Float16, 0.99999, 1047}} {
		cfg := Config{Redis: rc, Encoding: tc.enc, Prefix: "t" + tc.enc.String()}
		a, _ := newCache(t, cfg, fpA)
		seqs := queries(5, 5)
		embed(t, a, seqs)
		flush(t, a)
		n, err := srv.Do("STRLEN", a.current().keys.key(seqs[0]))
		if err != nil || n != strconv.Itoa(tc.bytes) {
			t.Fatalf("%s: STRLEN %s %v, want %d", tc.enc, n, err, tc.bytes)
		}
		b, encB := newCache(t, cfg, fpA)
		checkVectors(t, seqs, embed(t, b, seqs), tc.minCos)
		if encB.Calls() != 0 {
			t.Fatalf("%s: second cache called the encoder", tc.enc)
		}
	}
}

func TestRedisBatchStoreAndLookup(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	a, _ := newCache(t, Config{Redis: rc}, fpA)
	seqs := queries(1200, 6)
	vecs := make([][]float32, len(seqs))
	for i, s := range seqs {
		vecs[i] = standin.Vector(s, 512)
	}
	if err := a.Store(context.Background(), seqs[:1000], vecs[:1000]); err != nil {
		t.Fatal(err)
	}
	b, encB := newCache(t, Config{Redis: rc}, fpA)
	got := b.Lookup(context.Background(), seqs)
	for i := range seqs {
		if (got[i] != nil) != (i < 1000) {
			t.Fatalf("sequence %d: found=%v", i, got[i] != nil)
		}
	}
	checkVectors(t, seqs[:1000], got[:1000], 0.99999)
	if h, m := lookups(b, tierRedis, resHit), lookups(b, tierRedis, resMiss); h != 1000 || m != 200 {
		t.Fatalf("redis hits %d misses %d, want 1000 and 200", h, m)
	}
	if encB.Calls() != 0 {
		t.Fatal("Lookup called the encoder")
	}
}

// An ACL user with a password works; a wrong password costs errors in the metrics and
// nothing for the callers.
func TestRedisACL(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := srv.Do("ACL", "SETUSER", "podsearch", "on", ">s3cret", "~podsearch:*", "+get", "+set", "+mget", "+ping", "+hello"); err != nil {
		t.Fatal(err)
	}
	good := openRedis(t, "redis://podsearch:s3cret@"+srv.Addr())
	a, _ := newCache(t, Config{Redis: good}, fpA)
	seqs := queries(5, 7)
	embed(t, a, seqs)
	flush(t, a)
	if n := testutilWrites(a, "ok"); n != 5 {
		t.Fatalf("ACL user wrote %d values, want 5", n)
	}
	bad := openRedis(t, "redis://podsearch:wrong@"+srv.Addr())
	b, encB := newCache(t, Config{Redis: bad}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 1-1e-9)
	if encB.Sequences() != 5 || lookups(b, tierRedis, resError) != 5 {
		t.Fatalf("wrong password: encoded %d, redis errors %d; want 5 and 5", encB.Sequences(), lookups(b, tierRedis, resError))
	}
}

// A Redis that stops answering (CLIENT PAUSE) trips the breaker after a few timeouts;
// callers see no error, and once Redis answers again the breaker closes by itself.
func TestRedisSlowTripsBreakerAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	cfg := Config{Redis: rc, LookupTimeout: 30 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
		BreakerFailures: 2, BreakerCooldown: 100 * time.Millisecond, MemoryBytes: 1}
	c, _ := newCache(t, cfg, fpA)
	warm := queries(3, 8)
	embed(t, c, warm)
	flush(t, c)
	if _, err := srv.Do("CLIENT", "PAUSE", "1500", "ALL"); err != nil {
		t.Fatal(err)
	}
	for i := 0; lookups(c, tierRedis, resSkipped) == 0; i++ {
		if i > 200 {
			t.Fatal("breaker never opened while Redis was paused")
		}
		checkVectors(t, warm, embed(t, c, warm), 0.99999)
	}
	// Redis answers again after the pause; the breaker probes and closes.
	hits := lookups(c, tierRedis, resHit)
	deadline := time.Now().Add(10 * time.Second)
	for lookups(c, tierRedis, resHit) == hits {
		if time.Now().After(deadline) {
			t.Fatal("cache never read Redis again after the pause")
		}
		checkVectors(t, warm, embed(t, c, warm), 0.99999)
		time.Sleep(20 * time.Millisecond)
	}
}

func testutilWrites(c *Cache, res string) int {
	return int(testutilToFloat(c.m.writes.WithLabelValues(res)))
}

func TestRedisCached(t *testing.T) {
	srv := redistest.Start(t)
	rc := openRedis(t, srv.URL())
	a, _ := newCache(t, Config{Redis: rc}, fpA)
	seqs := queries(4, 12)
	embed(t, a, seqs[:2])
	flush(t, a)
	if _, err := srv.Do("SET", a.current().keys.key(seqs[1]), "garbage"); err != nil {
		t.Fatal(err)
	}
	got, err := a.Cached(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0] || got[1] || got[2] || got[3] {
		t.Fatalf("Cached = %v, want [true false false false]", got)
	}
	srv.Kill()
	if _, err := a.Cached(context.Background(), seqs); err == nil {
		t.Fatal("Cached with Redis down: no error")
	}
	m, _ := newCache(t, Config{}, fpA)
	embed(t, m, seqs[:1])
	if got, err := m.Cached(context.Background(), seqs[:2]); err != nil || !got[0] || got[1] {
		t.Fatalf("memory-only Cached = %v, %v", got, err)
	}
}

// TLS (rediss) with a private CA: the cache works when the server certificate checks out,
// and degrades to the encoder (no failure) when it does not.
func TestRedisTLS(t *testing.T) {
	_, tlsInfo := redistest.StartTLS(t)
	good := openRedis(t, "rediss://"+tlsInfo.Addr+"?tls_ca="+tlsInfo.CAFile)
	a, _ := newCache(t, Config{Redis: good}, fpA)
	seqs := queries(5, 13)
	embed(t, a, seqs)
	flush(t, a)
	if n := testutilWrites(a, "ok"); n != 5 {
		t.Fatalf("%d vectors written over TLS, want 5", n)
	}
	b, encB := newCache(t, Config{Redis: good}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Calls() != 0 {
		t.Fatal("TLS reads missed")
	}
	// Without the CA the certificate is not trusted: every lookup is an error, no caller fails.
	untrusted := openRedis(t, "rediss://"+tlsInfo.Addr)
	c, encC := newCache(t, Config{Redis: untrusted}, fpA)
	checkVectors(t, seqs, embed(t, c, seqs), 1-1e-9)
	if encC.Sequences() != 5 || lookups(c, tierRedis, resError) != 5 {
		t.Fatalf("untrusted certificate: encoded %d, errors %d", encC.Sequences(), lookups(c, tierRedis, resError))
	}
}

// A Sentinel-managed master, reached through the Sentinel by master name.
func TestRedisSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "podsearch-master")
	rc := openRedis(t, "redis+sentinel://"+sentinel.Addr()+"/podsearch-master")
	a, _ := newCache(t, Config{Redis: rc}, fpA)
	seqs := queries(20, 14)
	embed(t, a, seqs)
	flush(t, a)
	if n, _ := master.Do("DBSIZE"); n != "20" {
		t.Fatalf("master DBSIZE %s, want 20", n)
	}
	b, encB := newCache(t, Config{Redis: rc}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Calls() != 0 {
		t.Fatal("reads through the Sentinel missed")
	}
}

// A full Redis under noeviction refuses writes (OOM error replies): the writes are counted as
// errors, but a live Redis keeps serving reads, so the breaker must stay closed.
func TestRedisFullKeepsServingReads(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
	rc := openRedis(t, srv.URL())
	a, _ := newCache(t, Config{Redis: rc, BreakerFailures: 2}, fpA)
	seqs := queries(3000, 15)
	for lo := 0; lo < len(seqs); lo += 100 {
		embed(t, a, seqs[lo:lo+100])
		flush(t, a)
	}
	if testutilWrites(a, "error") == 0 {
		t.Fatal("3000 vectors fit in 3 MB: the test does not fill Redis")
	}
	b, encB := newCache(t, Config{Redis: rc, BreakerFailures: 2}, fpA)
	checkVectors(t, seqs, embed(t, b, seqs), 0.99999)
	if encB.Sequences() == 3000 || lookups(b, tierRedis, resHit) == 0 {
		t.Fatalf("a full Redis served no reads (encoded %d)", encB.Sequences())
	}
	if st := testutilToFloat(a.m.breaker); st != 0 {
		t.Fatalf("breaker state %v after OOM replies, want 0 (closed)", st)
	}
	if lookups(b, tierRedis, resSkipped) != 0 {
		t.Fatal("reads were skipped")
	}
}
