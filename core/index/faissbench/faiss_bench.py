#!/usr/bin/python3
"""FAISS side of `podsearch bench index`: builds FAISS indexes over the same vectors and
queries as the Go benchmark and prints one JSON object per configuration and setting.

Run with Debian's /usr/bin/python3 (python3-faiss, python3-numpy). Timing is single-thread,
one query per search call, as an edge serves; the Python call overhead (a few microseconds)
is included. Exit status 3 means FAISS or NumPy is not installed.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
try:
    import numpy as np
    import faiss
except ImportError as e:  # the Go side reports this as "FAISS skipped"
    print("faiss_bench: %s" % e, file=sys.stderr)
    sys.exit(3)


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise SystemExit("faiss_bench: %s is empty" % path)
    d = int(raw[0])
    rows = raw.reshape(-1, d + 1)
    return rows[:, 1:].copy().view(dtype) if dtype == np.float32 else rows[:, 1:].copy()


def recall(found, gt, k):
    r1 = float(np.mean(found[:, 0] == gt[:, 0]))
    rk = np.mean([len(set(found[i, :k]) & set(gt[i, :k])) / float(k) for i in range(len(gt))])
    return r1, float(rk)


def time_queries(index, xq, k, min_seconds):
    """Searches every query one at a time, repeating the set for at least min_seconds and
    three passes; returns the results, the best pass's thread CPU microseconds per query
    (the cost of a query, not its wait for a core on a shared machine) and the best pass's
    wall microseconds per query."""
    index.search(xq[:1], k)  # warm-up
    out = np.empty((len(xq), k), dtype=np.int64)
    passes, total, best_cpu, best_wall = 0, 0.0, float("inf"), float("inf")
    while True:
        t0, c0 = time.perf_counter(), time.thread_time()
        for i in range(len(xq)):
            _, I = index.search(xq[i:i + 1], k)
            out[i] = I[0]
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        total += dt
        best_wall, best_cpu = min(best_wall, dt), min(best_cpu, dc)
        passes += 1
        if total >= min_seconds and passes >= 3:
            break
    return out, best_cpu / len(xq) * 1e6, best_wall / len(xq) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", choices=["l2", "ip"], default="l2")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nlist", type=int, required=True)
    ap.add_argument("--m", type=int, required=True, help="PQ sub-quantizers (8-bit IVFPQ)")
    ap.add_argument("--m4", type=int, required=True, help="PQ sub-quantizers (4-bit fast-scan)")
    ap.add_argument("--nprobe", default="1,2,4,8,16")
    ap.add_argument("--refine", type=int, default=4)
    ap.add_argument("--hnsw-ef", default="16,32,64")
    ap.add_argument("--min-seconds", type=float, default=0.5)
    a = ap.parse_args()

    xb = read_vecs(a.base, np.float32)
    xq = read_vecs(a.queries, np.float32)
    gt = read_vecs(a.gt, np.int32)
    n, d = xb.shape
    metric = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    nprobes = [int(x) for x in a.nprobe.split(",") if x]

    def emit(config, setting, timed, bpv, build_s):
        found, us, wall = timed
        r1, rk = recall(found, gt, a.k)
        print(json.dumps({"engine": "faiss", "config": config, "setting": setting, "recall@1": round(r1, 4),
                          "recall@10": round(rk, 4), "us_per_query": round(us, 1), "wall_us_per_query": round(wall, 1),
                          "bytes_per_vector": bpv, "build_s": round(build_s, 3), "n": n, "d": d, "nq": len(xq)}),
              flush=True)

    def build(factory):
        t0 = time.perf_counter()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index = faiss.index_factory(d, factory, metric)
        index.train(xb)
        index.add(xb)
        faiss.omp_set_num_threads(1)
        return index, time.perf_counter() - t0

    flat, bt = build("Flat")
    emit("Flat", "exact", time_queries(flat, xq, a.k, a.min_seconds), 4 * d, bt)

    for factory, bpv in [
        ("IVF%d,PQ%dnp" % (a.nlist, a.m), a.m),
        ("IVF%d,PQ%dnp,RFlat" % (a.nlist, a.m), a.m + 4 * d),
        ("IVF%d,PQ%dx4fs" % (a.nlist, a.m4), a.m4 / 2.0),
        ("IVF%d,PQ%dx4fs,RFlat" % (a.nlist, a.m4), a.m4 / 2.0 + 4 * d),
    ]:
        owner, bt = build(factory)  # keep the factory's object alive: it owns the C++ index
        index = owner
        refine = factory.endswith("RFlat")
        if refine:
            index = faiss.downcast_index(owner)
            ivf = faiss.extract_index_ivf(faiss.downcast_index(index.base_index))
        else:
            ivf = faiss.extract_index_ivf(owner)
        for nprobe in nprobes:
            if nprobe > a.nlist:
                continue
            ivf.nprobe = nprobe
            params = "nprobe=%d" % nprobe
            if refine:
                index.k_factor = a.refine
                params += ",k_factor=%d" % a.refine
            emit(factory, params, time_queries(index, xq, a.k, a.min_seconds), bpv, bt)

    index, bt = build("HNSW32,Flat")
    for ef in [int(x) for x in a.hnsw_ef.split(",") if x]:
        index.hnsw.efSearch = ef
        emit("HNSW32,Flat", "efSearch=%d" % ef, time_queries(index, xq, a.k, a.min_seconds), 4 * d + 32 * 2 * 4, bt)


if __name__ == "__main__":
    main()
