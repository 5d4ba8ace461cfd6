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
// Four codes are summed at once with four independent scalar accumulators (each in the
// scalar order), so the table loads of different codes overlap. A candidate is pushed only
// when it does not exceed the heap's bound. There is no SIMD gather in wasm: the vector unit
// only loads 16 code bytes at once (when m is a multiple of 16), halving memory accesses.

// LUT8 adds to s the entry of table L (of the 16 starting at t) picked by byte L of v.
#define LUT8(s, v, L) s += t[(L) * 256 + wasm_u8x16_extract_lane(v, L)]
#define LUT8x16(s, v)                                                                      \
	do {                                                                                   \
		LUT8(s, v, 0); LUT8(s, v, 1); LUT8(s, v, 2); LUT8(s, v, 3);                        \
		LUT8(s, v, 4); LUT8(s, v, 5); LUT8(s, v, 6); LUT8(s, v, 7);                        \
		LUT8(s, v, 8); LUT8(s, v, 9); LUT8(s, v, 10); LUT8(s, v, 11);                      \
		LUT8(s, v, 12); LUT8(s, v, 13); LUT8(s, v, 14); LUT8(s, v, 15);                    \
	} while (0)

// scan8_four sums four consecutive codes (m a multiple of 16) into s[0..3].
static inline void scan8_four(const uint8_t *c0, uint32_t m, const float *lut, float *s) {
	const uint8_t *c1 = c0 + m, *c2 = c1 + m, *c3 = c2 + m;
	float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
	for (uint32_t j = 0; j < m; j += 16) {
		const float *t = lut + (uintptr_t)j * 256;
		v128_t v0 = wasm_v128_load(c0 + j);
		v128_t v1 = wasm_v128_load(c1 + j);
		v128_t v2 = wasm_v128_load(c2 + j);
		v128_t v3 = wasm_v128_load(c3 + j);
		LUT8x16(s0, v0);
		LUT8x16(s1, v1);
		LUT8x16(s2, v2);
		LUT8x16(s3, v3);
	}
	s[0] = s0;
	s[1] = s1;
	s[2] = s2;
	s[3] = s3;
}

// scan8_one sums one code in the scalar order.
static inline float scan8_one(const uint8_t *c, uint32_t m, const float *lut) {
	float acc = 0.0f;
	for (uint32_t j = 0; j < m; j++) acc += lut[(uintptr_t)j * 256 + c[j]];
	return acc;
}

EXPORT(scan8)
void scan8(const uint8_t *codes, uint32_t n, uint32_t m, const float *lut, uint32_t first_id,
           topk_head *h) {
	uint32_t i = 0;
	float bound = topk_bound(h);
	if (m % 16 == 0) {
		// Codes are read 16 bytes at a time and their bytes taken from the vector, which
		// halves the memory accesses (each checked against the memory's bounds).
		for (; i + 4 <= n; i += 4) {
			float s[4];
			scan8_four(codes + (uintptr_t)i * m, m, lut, s);
			float s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
			if (s0 <= bound) { topk_push(h, s0, first_id + i); bound = topk_bound(h); }
			if (s1 <= bound) { topk_push(h, s1, first_id + i + 1); bound = topk_bound(h); }
			if (s2 <= bound) { topk_push(h, s2, first_id + i + 2); bound = topk_bound(h); }
			if (s3 <= bound) { topk_push(h, s3, first_id + i + 3); bound = topk_bound(h); }
		}
	}
	for (; i < n; i++) {
		float acc = scan8_one(codes + (uintptr_t)i * m, m, lut);
		if (acc <= bound) { topk_push(h, acc, first_id + i); bound = topk_bound(h); }
	}
}

// scan8_dists writes the distance of every one of the n codes to out[0..n-1].
static void scan8_dists(const uint8_t *codes, uint32_t n, uint32_t m, const float *lut, float *out) {
	uint32_t i = 0;
	if (m % 16 == 0) {
		for (; i + 4 <= n; i += 4) {
			const uint8_t *c0 = codes + (uintptr_t)i * m;
			scan8_four(c0, m, lut, out + i);
		}
	}
	for (; i < n; i++) out[i] = scan8_one(codes + (uintptr_t)i * m, m, lut);
}

// scan8_ranges writes the distances of the codes of rows [ranges[2r], ranges[2r+1]) for
// r = 0..nranges-1 to out, one range after the other (the index's search path: one call
// for every probed list of a segment; the host applies list offsets, filters and
// tombstones itself).
EXPORT(scan8_ranges)
void scan8_ranges(const uint8_t *codes, uint32_t m, const float *lut, const uint32_t *ranges,
                  uint32_t nranges, float *out) {
	for (uint32_t r = 0; r < nranges; r++) {
		uint32_t a = ranges[2 * r], b = ranges[2 * r + 1];
		scan8_dists(codes + (uintptr_t)a * m, b - a, m, lut, out);
		out += b - a;
	}
}

// ---------------------------------------------------------------------------------------
// 4-bit fast-scan over the layout of pq.PackFastScan4: block b (vectors 32b..32b+31) is m
// groups of 16 bytes; byte t of group j holds code(32b+t, j) in its low nibble and
// code(32b+16+t, j) in its high nibble. qlut holds m tables of 16 uint8 entries. The
// distance of a vector is the exact integer sum of its m table entries (pq.ScanFastScan4),
// computed 32 vectors at a time with two i8x16.swizzle lookups per group and uint16 lanes.
// Vectors at or beyond n_valid (the padding of the last block) are skipped.

// FS_ACC adds the table entries of one block's group g into four uint16 accumulators, a0/a1
// for vectors 0..15 and a2/a3 for vectors 16..31. The swizzle result is added whole as eight
// uint16 lanes (even byte + 256 * odd byte, modulo 2^16) into a0/a2 and its odd bytes alone
// into a1/a3; fs_fix then recovers the even sums as a0 - 256 * a1, exact because every true
// sum stays below 65536 (m <= 256).
#define FS_ACC(g, a0, a1, a2, a3)                                                          \
	do {                                                                                   \
		v128_t lo_ = wasm_i8x16_swizzle(tbl, wasm_v128_and(g, low4));                      \
		v128_t hi_ = wasm_i8x16_swizzle(tbl, wasm_v128_and(wasm_u16x8_shr(g, 4), low4));   \
		a0 = wasm_i16x8_add(a0, lo_);                                                      \
		a1 = wasm_i16x8_add(a1, wasm_u16x8_shr(lo_, 8));                                   \
		a2 = wasm_i16x8_add(a2, hi_);                                                      \
		a3 = wasm_i16x8_add(a3, wasm_u16x8_shr(hi_, 8));                                   \
	} while (0)

// FS_FIX turns the accumulators into the sums of vectors t = 0..31: t even < 16 in lane t/2
// of a0, t odd < 16 in a1, and likewise a2/a3 for t >= 16.
#define FS_FIX(a0, a1, a2, a3)                                                             \
	do {                                                                                   \
		a0 = wasm_i16x8_sub(a0, wasm_i16x8_shl(a1, 8));                                    \
		a2 = wasm_i16x8_sub(a2, wasm_i16x8_shl(a3, 8));                                    \
	} while (0)

// fs_store writes the 32 sums of one block to out[0..31] in vector order.
static inline void fs_store(v128_t a0, v128_t a1, v128_t a2, v128_t a3, uint16_t *out) {
	FS_FIX(a0, a1, a2, a3);
	wasm_v128_store(out, wasm_i16x8_shuffle(a0, a1, 0, 8, 1, 9, 2, 10, 3, 11));
	wasm_v128_store(out + 8, wasm_i16x8_shuffle(a0, a1, 4, 12, 5, 13, 6, 14, 7, 15));
	wasm_v128_store(out + 16, wasm_i16x8_shuffle(a2, a3, 0, 8, 1, 9, 2, 10, 3, 11));
	wasm_v128_store(out + 24, wasm_i16x8_shuffle(a2, a3, 4, 12, 5, 13, 6, 14, 7, 15));
}

// fs_emit offers the 32 sums of one block to the heap. The scan visits ids in ascending
// order, so a sum equal to the heap's bound can never enter (the tie goes to the smaller id,
// already kept): only sums strictly below the bound are looked at.
static void fs_emit(v128_t a0, v128_t a1, v128_t a2, v128_t a3, uint32_t base, uint32_t n_valid,
                    topk_head *h) {
	FS_FIX(a0, a1, a2, a3);
	float bound = topk_bound(h);
	if (bound <= 0.0f) return;
	v128_t thr = wasm_i16x8_splat(bound > 65535.0f ? (int16_t)0xffff : (int16_t)(uint16_t)(bound - 1.0f));
	uint32_t m0 = (uint32_t)wasm_i16x8_bitmask(wasm_u16x8_le(a0, thr));
	uint32_t m1 = (uint32_t)wasm_i16x8_bitmask(wasm_u16x8_le(a1, thr));
	uint32_t m2 = (uint32_t)wasm_i16x8_bitmask(wasm_u16x8_le(a2, thr));
	uint32_t m3 = (uint32_t)wasm_i16x8_bitmask(wasm_u16x8_le(a3, thr));
	if ((m0 | m1 | m2 | m3) == 0) return;
	// Vector t of the block is lane (t%16)/2 of a0 (t even, < 16), a1 (odd, < 16), a2, a3.
	// Bit t of keep says whether it may enter; offer them in ascending id order.
	uint32_t keep = 0;
	for (uint32_t i = 0; i < 8; i++) {
		keep |= (m0 >> i & 1) << (2 * i) | (m1 >> i & 1) << (2 * i + 1) |
		        (m2 >> i & 1) << (16 + 2 * i) | (m3 >> i & 1) << (17 + 2 * i);
	}
	uint16_t lanes[4][8];
	wasm_v128_store(lanes[0], a0);
	wasm_v128_store(lanes[1], a1);
	wasm_v128_store(lanes[2], a2);
	wasm_v128_store(lanes[3], a3);
	while (keep) {
		uint32_t t = (uint32_t)__builtin_ctz(keep);
		keep &= keep - 1;
		uint32_t id = base + t;
		if (id >= n_valid) break;
		float d = (float)lanes[(t >> 4) * 2 + (t & 1)][(t & 15) >> 1];
		if (d < topk_bound(h)) topk_push(h, d, id);
	}
}

// FS_SCAN runs the fast-scan of nblocks blocks, two blocks per pass sharing each table load,
// and hands each block's accumulators to EMIT(a0, a1, a2, a3, b).
#define FS_SCAN(EMIT)                                                                      \
	do {                                                                                   \
		const v128_t low4 = wasm_i8x16_splat(0x0f);                                        \
		const uintptr_t stride = (uintptr_t)m * 16;                                        \
		uint32_t b = 0;                                                                    \
		for (; b + 2 <= nblocks; b += 2) {                                                 \
			const uint8_t *blk = packed + (uintptr_t)b * stride;                           \
			v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0;                    \
			v128_t c0 = a0, c1 = a0, c2 = a0, c3 = a0;                                     \
			for (uint32_t j = 0; j < m; j++) {                                             \
				v128_t tbl = wasm_v128_load(qlut + (uintptr_t)j * 16);                     \
				v128_t g = wasm_v128_load(blk + (uintptr_t)j * 16);                        \
				v128_t g2 = wasm_v128_load(blk + stride + (uintptr_t)j * 16);              \
				FS_ACC(g, a0, a1, a2, a3);                                                 \
				FS_ACC(g2, c0, c1, c2, c3);                                                \
			}                                                                              \
			EMIT(a0, a1, a2, a3, b);                                                       \
			EMIT(c0, c1, c2, c3, b + 1);                                                   \
		}                                                                                  \
		for (; b < nblocks; b++) {                                                         \
			const uint8_t *blk = packed + (uintptr_t)b * stride;                           \
			v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0;                    \
			for (uint32_t j = 0; j < m; j++) {                                             \
				v128_t tbl = wasm_v128_load(qlut + (uintptr_t)j * 16);                     \
				v128_t g = wasm_v128_load(blk + (uintptr_t)j * 16);                        \
				FS_ACC(g, a0, a1, a2, a3);                                                 \
			}                                                                              \
			EMIT(a0, a1, a2, a3, b);                                                       \
		}                                                                                  \
	} while (0)

EXPORT(fastscan4)
void fastscan4(const uint8_t *packed, uint32_t nblocks, uint32_t m, const uint8_t *qlut,
               uint32_t first_id, uint32_t n_valid, topk_head *h) {
#define FS_HEAP(a0, a1, a2, a3, b) fs_emit(a0, a1, a2, a3, first_id + (b) * 32, n_valid, h)
	FS_SCAN(FS_HEAP);
#undef FS_HEAP
}

// fastscan4_sums writes the 32 sums of every block to out[0..32*nblocks-1] in vector order,
// the values pq.ScanFastScan4 writes (padding vectors included).
static void fastscan4_sums(const uint8_t *packed, uint32_t nblocks, uint32_t m, const uint8_t *qlut,
                           uint16_t *out) {
#define FS_OUT(a0, a1, a2, a3, b) fs_store(a0, a1, a2, a3, out + (uintptr_t)(b) * 32)
	FS_SCAN(FS_OUT);
#undef FS_OUT
}

// fastscan4_ranges writes the sums of blocks [ranges[2r], ranges[2r+1]) for
// r = 0..nranges-1 to out, one range after the other (one call for every probed list of a
// segment).
EXPORT(fastscan4_ranges)
void fastscan4_ranges(const uint8_t *packed, uint32_t m, const uint8_t *qlut, const uint32_t *ranges,
                      uint32_t nranges, uint16_t *out) {
	for (uint32_t r = 0; r < nranges; r++) {
		uint32_t a = ranges[2 * r], b = ranges[2 * r + 1];
		fastscan4_sums(packed + (uintptr_t)a * m * 16, b - a, m, qlut, out);
		out += (uintptr_t)(b - a) * 32;
	}
}

// ---------------------------------------------------------------------------------------
// 8-bit scalar-quantized re-rank of candidate ids (codes[id*d .. id*d+d-1], one byte per
// dimension), as sq.Query.Distance computes it.

// bytes_f32 converts four uint32 lanes holding 0..255 to float32, exactly: OR-ing the value
// into the mantissa of 2^23 and subtracting 2^23. (clang turns a plain int-to-float
// conversion of bytes into four scalar conversions, which made the loop 4x slower than Go.)
static inline v128_t bytes_f32(v128_t w) {
	return wasm_f32x4_sub(wasm_v128_or(w, wasm_i32x4_splat(0x4B000000)), wasm_f32x4_splat(8388608.0f));
}

// sq8_ip_one: -(c + (s0+s1) + (s2+s3)) where s_r sums a[j]*code[j] over j = r mod 4 (the
// tail of d not a multiple of 4 goes to s0); the four sums are the lanes of one f32x4.
static inline float sq8_ip_one(const uint8_t *code, uint32_t d, const float *a, float c) {
	v128_t acc = wasm_f32x4_splat(0.0f);
	uint32_t j = 0;
	// 16 dimensions per step, added to the lanes in ascending j as the 4-at-a-time loop does.
	for (; j + 16 <= d; j += 16) {
		v128_t b = wasm_v128_load(code + j);
		v128_t lo = wasm_u16x8_extend_low_u8x16(b), hi = wasm_u16x8_extend_high_u8x16(b);
		acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j), bytes_f32(wasm_u32x4_extend_low_u16x8(lo))));
		acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j + 4), bytes_f32(wasm_u32x4_extend_high_u16x8(lo))));
		acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j + 8), bytes_f32(wasm_u32x4_extend_low_u16x8(hi))));
		acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j + 12), bytes_f32(wasm_u32x4_extend_high_u16x8(hi))));
	}
	for (; j + 4 <= d; j += 4) {
		v128_t bytes = wasm_v128_load32_zero(code + j);
		v128_t f = bytes_f32(wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(bytes)));
		acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j), f));
	}
	float s0 = wasm_f32x4_extract_lane(acc, 0);
	for (; j < d; j++) s0 += a[j] * (float)code[j];
	float s1 = wasm_f32x4_extract_lane(acc, 1);
	float s2 = wasm_f32x4_extract_lane(acc, 2);
	float s3 = wasm_f32x4_extract_lane(acc, 3);
	return -(c + (s0 + s1) + (s2 + s3));
}

// sq8_l2_one: the sum over j ascending of (a[j] - scale[j]*code[j])^2.
static inline float sq8_l2_one(const uint8_t *code, uint32_t d, const float *a, const float *scale) {
	float s = 0.0f;
	for (uint32_t j = 0; j < d; j++) {
		float diff = a[j] - scale[j] * (float)code[j];
		s += diff * diff;
	}
	return s;
}

EXPORT(sq8_ip)
void sq8_ip(const uint8_t *codes, uint32_t d, const float *a, float c, const uint32_t *ids,
            uint32_t nids, topk_head *h) {
	for (uint32_t i = 0; i < nids; i++) topk_push(h, sq8_ip_one(codes + (uintptr_t)ids[i] * d, d, a, c), ids[i]);
}

EXPORT(sq8_l2)
void sq8_l2(const uint8_t *codes, uint32_t d, const float *a, const float *scale,
            const uint32_t *ids, uint32_t nids, topk_head *h) {
	for (uint32_t i = 0; i < nids; i++) topk_push(h, sq8_l2_one(codes + (uintptr_t)ids[i] * d, d, a, scale), ids[i]);
}

// sq8_ip_dists and sq8_l2_dists write the distance of candidate ids[i] to out[i].
EXPORT(sq8_ip_dists)
void sq8_ip_dists(const uint8_t *codes, uint32_t d, const float *a, float c, const uint32_t *ids,
                  uint32_t nids, float *out) {
	for (uint32_t i = 0; i < nids; i++) out[i] = sq8_ip_one(codes + (uintptr_t)ids[i] * d, d, a, c);
}

EXPORT(sq8_l2_dists)
void sq8_l2_dists(const uint8_t *codes, uint32_t d, const float *a, const float *scale,
                  const uint32_t *ids, uint32_t nids, float *out) {
	for (uint32_t i = 0; i < nids; i++) out[i] = sq8_l2_one(codes + (uintptr_t)ids[i] * d, d, a, scale);
}
