// scan.c: the podsearch PQ scan kernel, a WebAssembly guest built with clang --target=wasm32
// -msimd128 (see wasm/build.sh). It imports its linear memory: the host creates one memory per
// index shard holding the shard's codes once, and every warm instance of this module serving
// that shard imports the same memory, each with its own scratch region and shadow stack (the
// host sets __stack_pointer per instance). The kernel therefore keeps no static data: every
// buffer it touches is passed in by the host.
//
// Results must equal the pure-Go reference (core/pq, core/sq) bit for bit: float sums run in
// the same order as the Go loops, and top-k ties break on the smaller id.

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// ---------------------------------------------------------------------------------------
// Top-k selection: a max-heap of (dist, id) of capacity k at h, laid out as
//   uint32 k; uint32 n; float dist[k]; uint32 id[k].
// The root is the worst kept result: the largest distance, on ties the largest id.

typedef struct {
	uint32_t k;
	uint32_t n;
} topk_head;

static inline float *topk_dist(topk_head *h) { return (float *)(h + 1); }
static inline uint32_t *topk_ids(topk_head *h) { return (uint32_t *)(h + 1) + h->k; }

// worse reports whether (da, ia) ranks after (db, ib).
static inline int worse(float da, uint32_t ia, float db, uint32_t ib) {
	return da > db || (da == db && ia > ib);
}

static void sift_down(float *d, uint32_t *id, uint32_t n, uint32_t i) {
	float dv = d[i];
	uint32_t iv = id[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= n) break;
		if (c + 1 < n && worse(d[c + 1], id[c + 1], d[c], id[c])) c++;
		if (!worse(d[c], id[c], dv, iv)) break;
		d[i] = d[c];
		id[i] = id[c];
		i = c;
	}
	d[i] = dv;
	id[i] = iv;
}

static void sift_up(float *d, uint32_t *id, uint32_t i) {
	float dv = d[i];
	uint32_t iv = id[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!worse(dv, iv, d[p], id[p])) break;
		d[i] = d[p];
		id[i] = id[p];
		i = p;
	}
	d[i] = dv;
	id[i] = iv;
}

// topk_push offers one candidate to the heap.
static inline void topk_push(topk_head *h, float dist, uint32_t id) {
	float *d = topk_dist(h);
	uint32_t *ids = topk_ids(h);
	if (h->n < h->k) {
		d[h->n] = dist;
		ids[h->n] = id;
		sift_up(d, ids, h->n);
		h->n++;
		return;
	}
	if (h->k == 0 || !worse(d[0], ids[0], dist, id)) return;
	d[0] = dist;
	ids[0] = id;
	sift_down(d, ids, h->n, 0);
}

// topk_bound is the distance a candidate must not exceed to enter the heap.
static inline float topk_bound(topk_head *h) {
	if (h->n < h->k) return __builtin_inff();
	return topk_dist(h)[0];
}

// topk_init empties the heap at h and sets its capacity.
EXPORT(topk_init) void topk_init(topk_head *h, uint32_t k) {
	h->k = k;
	h->n = 0;
}

// topk_finish sorts the kept results in place, best first, and returns their count.
EXPORT(topk_finish) uint32_t topk_finish(topk_head *h) {
	float *d = topk_dist(h);
	uint32_t *ids = topk_ids(h);
	uint32_t n = h->n;
	// The heap's root is the worst: swapping it to the end sorts ascending.
	for (uint32_t end = n; end > 1; end--) {
		float td = d[0];
		uint32_t ti = ids[0];
		d[0] = d[end - 1];
		ids[0] = ids[end - 1];
		d[end - 1] = td;
		ids[end - 1] = ti;
		sift_down(d, ids, end - 1, 0);
	}
	return n;
}

// ---------------------------------------------------------------------------------------
// 8-bit PQ scan: codes[n][m] bytes, lut[m][256] float32; the distance of code i is
// sum over j ascending of lut[j][codes[i][j]], accumulated in float32 from 0.
// Four codes are summed at once in the lanes of an f32x4 (each lane in the scalar order),
// and one vector compare against the heap bound rejects most of them.

static inline v128_t gather4(const float *lut, const uint8_t *c, uint32_t m) {
	return wasm_f32x4_make(lut[c[0]], lut[c[m]], lut[c[2 * m]], lut[c[3 * m]]);
}

EXPORT(scan8)
void scan8(const uint8_t *codes, uint32_t n, uint32_t m, const float *lut, uint32_t first_id,
           topk_head *h) {
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4) {
		const uint8_t *c = codes + (uintptr_t)i * m;
		v128_t acc = wasm_f32x4_splat(0.0f);
		for (uint32_t j = 0; j < m; j++) {
			acc = wasm_f32x4_add(acc, gather4(lut + (uintptr_t)j * 256, c + j, m));
		}
		v128_t keep = wasm_f32x4_le(acc, wasm_f32x4_splat(topk_bound(h)));
		if (!wasm_v128_any_true(keep)) continue;
		topk_push(h, wasm_f32x4_extract_lane(acc, 0), first_id + i);
		topk_push(h, wasm_f32x4_extract_lane(acc, 1), first_id + i + 1);
		topk_push(h, wasm_f32x4_extract_lane(acc, 2), first_id + i + 2);
		topk_push(h, wasm_f32x4_extract_lane(acc, 3), first_id + i + 3);
	}
	for (; i < n; i++) {
		const uint8_t *c = codes + (uintptr_t)i * m;
		float acc = 0.0f;
		for (uint32_t j = 0; j < m; j++) acc += lut[(uintptr_t)j * 256 + c[j]];
		topk_push(h, acc, first_id + i);
	}
}
