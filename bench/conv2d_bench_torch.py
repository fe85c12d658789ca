"""Conv2d benchmark, PyTorch side: the twin of conv2d_bench.c (same configs,
same timing protocol: 2 warm-up runs, then the median and minimum wall time
and the median process CPU time of REPEATS runs). The first line describes
the PyTorch runtime (torch_runtime.report: BLAS and allocator actually
loaded, threads, build configuration); run it through bench/run_conv2d.sh,
which sets the environment (torch_runtime.child_env).
Usage: /usr/bin/python3 conv2d_bench_torch.py CONFIGS THREADS [REPEATS]"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_runtime  # noqa: E402


def main():
    configs, threads = sys.argv[1], int(sys.argv[2])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    torch.set_num_threads(threads)  # Debian's build defaults to 1 thread here
    print(json.dumps({"impl": "pytorch", "runtime": torch_runtime.report(torch, threads)}), flush=True)
    torch.manual_seed(0)
    for line in open(configs):
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        name = f[0]
        N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, g = map(int, f[1:])
        x = torch.randn(N, C, H, W)
        w = torch.randn(O, C // g, kh, kw) * 0.1
        b = torch.randn(O) * 0.1
        y = F.conv2d(x, w, b, (sh, sw), (ph, pw), (dh, dw), g)
        gy = torch.randn_like(y)
        flops = 2.0 * N * O * y.shape[2] * y.shape[3] * (C // g) * kh * kw
        res = {}
        for backward in (False, True):
            for t in (x, w, b):
                t.requires_grad_(backward)
                t.grad = None
            times, cpu = [], []
            for r in range(-2, repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                y = F.conv2d(x, w, b, (sh, sw), (ph, pw), (dh, dw), g)
                if backward:
                    y.backward(gy)
                t1, c1 = time.perf_counter(), time.process_time()
                for t in (x, w, b):
                    t.grad = None
                if r >= 0:
                    times.append((t1 - t0) * 1e3)
                    cpu.append((c1 - c0) * 1e3)
            res[backward] = statistics.median(times)
            res[backward, "min"] = min(times)
            res[backward, "cpu"] = statistics.median(cpu)
        print(json.dumps({"impl": "pytorch", "name": name, "threads": threads,
                          "fwd_ms": round(res[False], 4), "fwdbwd_ms": round(res[True], 4),
                          "fwd_min_ms": round(res[False, "min"], 4), "fwdbwd_min_ms": round(res[True, "min"], 4),
                          "fwd_cpu_ms": round(res[False, "cpu"], 4), "fwdbwd_cpu_ms": round(res[True, "cpu"], 4),
                          "fwd_gflops": round(flops / res[False] / 1e6, 2),
                          "fwdbwd_gflops": round(3 * flops / res[True] / 1e6, 2)}), flush=True)


if __name__ == "__main__":
    main()
