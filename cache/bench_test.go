package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/cache/internal/redistest"
	"github.com/podsearch/podsearch/cache/internal/standin"
)

// usedMemory reads used_memory from INFO memory.
func usedMemory(tb testing.TB, s *redistest.Server) int64 {
	tb.Helper()
	info, err := s.Do("INFO", "memory")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkRedisBytesPerQuery stores 20,000 512-d query vectors per encoding (TTL set, as in
// production) and reports Redis memory per cached query two ways: MEMORY USAGE of a sample of
// keys, and the growth of used_memory divided by the number of keys.
//
//	go test -run '^$' -bench RedisBytesPerQuery -benchtime 1x ./cache/
func BenchmarkRedisBytesPerQuery(b *testing.B) {
	const n = 20000
	for _, enc := range []Encoding{Float16, Int8, Float32} {
		b.Run(enc.String(), func(b *testing.B) {
			srv := redistest.Start(b)
			rc, err := OpenRedis(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			c, _ := newCacheTB(b, Config{Redis: rc, Encoding: enc})
			seqs := queries(n, 20)
			vecs := make([][]float32, n)
			for i := range seqs {
				vecs[i] = standin.Vector(seqs[i], 512)
			}
			for i := 0; i < b.N; i++ {
				if _, err := srv.Do("FLUSHALL"); err != nil {
					b.Fatal(err)
				}
				before := usedMemory(b, srv)
				if err := c.Store(context.Background(), seqs, vecs); err != nil {
					b.Fatal(err)
				}
				after := usedMemory(b, srv)
				var sample int64
				for j := 0; j < 200; j++ {
					v, err := srv.Do("MEMORY", "USAGE", c.current().keys.key(seqs[j*97]))
					if err != nil {
						b.Fatal(err)
					}
					k, _ := strconv.ParseInt(v, 10, 64)
					sample += k
				}
				b.ReportMetric(float64(encodedSize(enc, 512, checksumSize)), "value-bytes")
				b.ReportMetric(float64(sample)/200, "memory-usage-bytes/query")
				b.ReportMetric(float64(after-before)/n, "used-memory-bytes/query")
			}
		})
	}
}

// BenchmarkEmbed measures one single-query Embed per tier: an in-process hit, a Redis hit
// (in-process tier too small to hold anything) and a miss to the stand-in encoder, whose
// own cost is a few microseconds.
//
//	go test -run '^$' -bench 'Embed/' ./cache/
func BenchmarkEmbed(b *testing.B) {
	srv := redistest.Start(b)
	rc, err := OpenRedis(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	seqs := queries(4096, 21)
	ctx := context.Background()
	b.Run("memory-hit", func(b *testing.B) {
		c, _ := newCacheTB(b, Config{})
		for _, s := range seqs {
			if _, err := c.Embed(ctx, [][]int32{s}); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Embed(ctx, [][]int32{seqs[i%len(seqs)]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis-hit", func(b *testing.B) {
		w, _ := newCacheTB(b, Config{Redis: rc})
		if err := w.Store(ctx, seqs, standinVectors(seqs)); err != nil {
			b.Fatal(err)
		}
		c, enc := newCacheTB(b, Config{Redis: rc, MemoryBytes: 1})
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Embed(ctx, [][]int32{seqs[i%len(seqs)]}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if enc.Calls() != 0 {
			b.Fatalf("redis-hit benchmark called the encoder %d times", enc.Calls())
		}
	})
	b.Run("miss", func(b *testing.B) {
		c, _ := newCacheTB(b, Config{Redis: rc, Prefix: "miss"})
		for i := 0; i < b.N; i++ {
			if _, err := c.Embed(ctx, [][]int32{{int32(i), int32(i >> 16), 77}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func standinVectors(seqs [][]int32) [][]float32 {
	out := make([][]float32, len(seqs))
	for i, s := range seqs {
		out[i] = standin.Vector(s, 512)
	}
	return out
}

// newCacheTB is newCache for benchmarks.
func newCacheTB(tb testing.TB, cfg Config, fps ...string) (*Cache, *standin.Encoder) {
	tb.Helper()
	fp := fpA
	if len(fps) > 0 {
		fp = fps[0]
	}
	t, ok := tb.(*testing.T)
	if ok {
		return newCache(t, cfg, fp)
	}
	enc := &standin.Encoder{FP: fp}
	c, err := New(enc, quietConfig(cfg))
	if err != nil {
		tb.Fatal(fmt.Errorf("new cache: %w", err))
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c, enc
}

// BenchmarkCodec measures encoding and decoding one 512-d float16 value, sealed with a
// CRC-32C (no secret) or an HMAC-SHA256 (with a cache secret).
func BenchmarkCodec(b *testing.B) {
	v := standin.Vector([]int32{1, 2, 3}, 512)
	tag := newFPTag(fpA)
	const key = "podsearch:qe:a1b2c3d4e5f60718:AAAAAAAAAAAAAAAAAAAAAA"
	for _, s := range []struct {
		name string
		seal sealer
	}{{"crc", sealer{}}, {"hmac", sealer{secret: []byte("0123456789abcdef0123456789abcdef")}}} {
		val, err := encodeValue(Float16, tag, key, s.seal, v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := encodeValue(Float16, tag, key, s.seal, v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeValue(val, tag, key, s.seal); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
