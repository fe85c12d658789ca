"""Conv2d benchmark driver (bench/run_conv2d.sh calls it): nabla
(BUILD/bench/conv2d_bench) and PyTorch (conv2d_bench_torch.py) side by side
on bench/conv2d_configs.txt at each thread count, PyTorch twice, with jemalloc
and with glibc's malloc, over OpenBLAS's OpenMP build (torch_runtime.py), in
the order nabla, PyTorch + jemalloc, PyTorch + glibc for each thread count.
Prints the table (ratios against PyTorch at its best: the faster of its two
runs, metric by metric) and writes one JSON result file
(run_common.result_path).

usage: conv2d_run.py [--repeats N] [--threads "1 2"] [--only NAME,NAME] [--build DIR]
                     [--configs FILE] [--torch-blas openmp|pthread|system] [--out FILE]
       conv2d_run.py --print RESULT.json      (the table of a saved run)"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import run_common as rc  # noqa: E402
import torch_runtime  # noqa: E402

FIELDS = ("fwd_ms", "fwdbwd_ms", "fwd_min_ms", "fwdbwd_min_ms", "fwd_cpu_ms", "fwdbwd_cpu_ms")
KEYS = ("N", "C", "H", "W", "O", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw", "groups")


def read_configs(path, only):
    configs = []
    for line in open(path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if only and f[0] not in only:
            continue
        configs.append({"name": f[0], **dict(zip(KEYS, map(int, f[1:])))})
    missing = set(only or ()) - {c["name"] for c in configs}
    if missing:
        sys.exit(f"conv2d_run: no config named {', '.join(sorted(missing))} in {path}")
    return configs


def forward_flops(c):
    """2 * multiply-adds of the direct forward; forward + backward counts 3x this."""
    ho = (c["H"] + 2 * c["ph"] - c["dh"] * (c["kh"] - 1) - 1) // c["sh"] + 1
    wo = (c["W"] + 2 * c["pw"] - c["dw"] * (c["kw"] - 1) - 1) // c["sw"] + 1
    return 2.0 * c["N"] * c["O"] * ho * wo * (c["C"] // c["groups"]) * c["kh"] * c["kw"]


def best_of(runs, field):
    """PyTorch at its best for one metric: (value, allocator) of the faster run."""
    have = [(r[field], a) for a, r in runs.items() if r and r.get(field)]
    return min(have) if have else (None, None)


def join(configs, threads, lines, peak):
    """One result row per (config, threads) with the ratios to PyTorch at its best."""
    rows = []
    for t in threads:
        for c in configs:
            nb = lines[("nabla", t)].get(c["name"])
            pt = {a: lines[(a, t)].get(c["name"]) for a in torch_runtime.ALLOCATORS}
            row = {"name": c["name"], "threads": t, "geometry": {k: c[k] for k in KEYS},
                   "forward_gflop": forward_flops(c) / 1e9,
                   "nabla": {k: nb[k] for k in FIELDS} if nb else None}
            for a in torch_runtime.ALLOCATORS:
                row["pytorch_" + a] = {k: pt[a][k] for k in FIELDS} if pt[a] else None
            row["pytorch_best"], row["ratio"] = {}, {}
            for field in FIELDS:
                v, a = best_of(pt, field)
                row["pytorch_best"][field] = {"ms": v, "allocator": a}
                row["ratio"][field] = rc.ratio(nb and nb[field], v)
            if nb:
                gf = 3 * forward_flops(c) / nb["fwdbwd_min_ms"] / 1e6
                p = machine.peak_at(peak, t)
                row["nabla_fwdbwd_gflops_min"] = round(gf, 1)
                row["nabla_fwdbwd_fraction_of_peak"] = round(gf / p, 3) if p else None
            rows.append(row)
    return rows


def table(record):
    """Markdown table of a record, preceded by its header lines."""
    out = [f"    {l}" for l in header(record)]
    out.append("")
    out.append("| config | threads | nabla fwd ms | torch fwd ms (jemalloc / glibc) | fwd ratio | nabla fwd+bwd ms "
               "| torch+jemalloc fwd+bwd ms | torch+glibc fwd+bwd ms | fwd+bwd ratio (median) | (min) | (cpu) "
               "| nabla fwd+bwd GFLOP/s (min) | of FMA peak |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in record["results"]:
        nb, je, gl = r["nabla"] or {}, r["pytorch_jemalloc"] or {}, r["pytorch_glibc"] or {}
        q, frac = r["ratio"], r.get("nabla_fwdbwd_fraction_of_peak")
        out.append(
            f"| {r['name']} | {r['threads']} | {rc.fmt(nb.get('fwd_ms'))} | {rc.fmt(je.get('fwd_ms'))} / "
            f"{rc.fmt(gl.get('fwd_ms'))} | {rc.fmt(q['fwd_ms'])} | {rc.fmt(nb.get('fwdbwd_ms'))} | "
            f"{rc.fmt(je.get('fwdbwd_ms'))} | {rc.fmt(gl.get('fwdbwd_ms'))} | **{rc.fmt(q['fwdbwd_ms'])}** | "
            f"{rc.fmt(q['fwdbwd_min_ms'])} | {rc.fmt(q['fwdbwd_cpu_ms'])} | "
            f"{rc.fmt(r.get('nabla_fwdbwd_gflops_min'), '.0f')} | {rc.fmt(frac and 100 * frac, '.0f')}% |")
    out.append("")
    out.append("Ratios: nabla time / PyTorch-at-its-best time (the faster of its jemalloc and glibc runs, metric by "
               "metric); < 1 means nabla is faster. GFLOP/s count forward + backward as 3x the direct forward.")
    return "\n".join(out)


def header(record):
    s = record["settings"]
    return rc.header_lines(record) + [
        f"{s['repeats']} timed repeats after 2 warm-ups per config; configs {s['configs_file']}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--only", default="", help="comma-separated config names (default: all)")
    ap.add_argument("--build", default=os.path.join(machine.ROOT, "build"))
    ap.add_argument("--configs", default=os.path.join(machine.ROOT, "bench", "conv2d_configs.txt"))
    ap.add_argument("--torch-blas", choices=torch_runtime.BLAS_CHOICES, default="openmp",
                    help="OpenBLAS build for PyTorch (default openmp; system: Debian's alternatives)")
    ap.add_argument("--out", help="result file (default bench/results/conv2d-<date>-<commit>.json)")
    ap.add_argument("--print", dest="show", metavar="RESULT", help="print the table of a saved result and exit")
    a = ap.parse_args()
    if a.show:
        print(table(json.load(open(a.show))))
        return
    threads = [int(t) for t in a.threads.replace(",", " ").split()]
    only = [n for n in a.only.split(",") if n]
    configs = read_configs(a.configs, only)
    exe = os.path.join(a.build, "bench", "conv2d_bench")
    if not os.access(exe, os.X_OK):
        sys.exit(f"conv2d_run: build {exe} first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && "
                 "cmake --build build -j2)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for c in configs:
            f.write(" ".join([c["name"]] + [str(c[k]) for k in KEYS]) + "\n")
        cfg = f.name
    try:
        run = rc.Run("conv2d", a.build, threads, a.torch_blas)
        twin = os.path.join(machine.ROOT, "bench", "conv2d_bench_torch.py")
        lines = {}
        for t in threads:
            out = run.nabla([exe, cfg, str(t), str(a.repeats)], t)
            lines[("nabla", t)] = {r["name"]: r for r in map(json.loads, filter(None, out.splitlines()))}
            for alloc in torch_runtime.ALLOCATORS:
                rows = run.pytorch([twin, cfg, str(t), str(a.repeats)], t, alloc)
                lines[(alloc, t)] = {r["name"]: r for r in rows}
            print(f"conv2d_run: {t} thread(s) done", file=sys.stderr)
        settings = {"repeats": a.repeats, "threads": threads, "configs_file": os.path.relpath(a.configs, machine.ROOT),
                    "only": only or None, "timing": "median / min wall and median process CPU ms of REPEATS runs "
                    "after 2 warm-ups; forward, and forward + backward (input, weight, bias gradients)"}
        record = run.finish(settings, join(configs, threads, lines, run.machine["fma_peak"]))
    finally:
        os.unlink(cfg)
    path = rc.result_path("conv2d", record, a.out)
    rc.write(record, path)
    print(table(record))
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
