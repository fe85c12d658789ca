"""Compare two benchmark result files of the same kind (conv2d or mnist,
written by bench/run_conv2d.sh or bench/mnist_bench.sh): per config and
thread count, nabla's time after / before, PyTorch-at-its-best's after /
before (PyTorch did not change, so its ratio is the noise of the pair), and
nabla / PyTorch in each run. Warns when the two runs were taken on different
machines (CPU, core count, flags, FMA peak), with different settings or
builds, from a dirty tree, or on a busy machine.

usage: /usr/bin/python3 bench/compare.py BEFORE.json AFTER.json [--fail-if-slower PCT]
  --fail-if-slower PCT   exit 1 when nabla's time got more than PCT% worse on
                         any row (by more than PyTorch's own drift on that row)"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import run_common as rc  # noqa: E402

PEAK_TOLERANCE = 0.10  # FMA peaks further apart than this: not the same machine (or not the same state)
NOISE_WARN = 0.10      # PyTorch moving more than this between the runs: the pair is noisy


def machine_differences(a, b):
    ma, mb = a["machine"], b["machine"]
    why = []
    for key, label in (("model", "CPU model"), ("logical_cpus", "logical CPUs"), ("flags", "CPU flags"),
                       ("family_model_stepping", "CPU family/model/stepping")):
        if ma["cpu"].get(key) != mb["cpu"].get(key):
            why.append(f"{label}: {ma['cpu'].get(key)} vs {mb['cpu'].get(key)}")
    pa, pb = ma["fma_peak"].get("best", {}), mb["fma_peak"].get("best", {})
    for t in sorted(set(pa) | set(pb)):
        x, y = pa.get(t), pb.get(t)
        if not x or not y or abs(y / x - 1) > PEAK_TOLERANCE:
            why.append(f"FMA peak at {t} thread(s): {x} vs {y} GFLOP/s")
    for key in ("CMAKE_BUILD_TYPE", "NB_NATIVE", "NB_SANITIZE", "compiler"):
        if ma["build"].get(key) != mb["build"].get(key):
            why.append(f"build {key}: {ma['build'].get(key)} vs {mb['build'].get(key)}")
    for side in ("jemalloc", "glibc"):
        ra, rb = a["pytorch_runtime"].get(side, {}), b["pytorch_runtime"].get(side, {})
        for t in sorted(set(ra) & set(rb)):
            da = (ra[t]["config"]["torch"], ra[t]["blas"]["kind"], (ra[t].get("openblas") or {}).get("corename"))
            db = (rb[t]["config"]["torch"], rb[t]["blas"]["kind"], (rb[t].get("openblas") or {}).get("corename"))
            if da != db:
                why.append(f"PyTorch + {side} at {t} thread(s): {da} vs {db}")
    return why


def settings_differences(a, b):
    sa, sb = a["settings"], b["settings"]
    skip = {"timing", "layers"}
    return [f"{k}: {sa.get(k)} vs {sb.get(k)}" for k in sorted(set(sa) | set(sb)) if k not in skip
            and sa.get(k) != sb.get(k)]


def rows_conv2d(rec):
    out = {}
    for r in rec["results"]:
        out[(r["name"], r["threads"])] = {
            "nabla": (r["nabla"] or {}).get("fwdbwd_ms"),
            "nabla_fwd": (r["nabla"] or {}).get("fwd_ms"),
            "pytorch": r["pytorch_best"]["fwdbwd_ms"]["ms"],
            "ratio": r["ratio"]["fwdbwd_ms"]}
    return out


def rows_mnist(rec):
    out = {}
    for r in rec["results"]:
        out[("epoch", r["threads"])] = {
            "nabla": (r["nabla"] or {}).get("s_per_epoch"),
            "pytorch": r["pytorch_best"]["s_per_epoch"],
            "ratio": r["ratio_to_pytorch_best"],
            "times_limit": (r["nabla"] or {}).get("times_limit")}
    return out


def describe_run(label, rec):
    m, g = rec["machine"], rec["machine"]["git"]
    busy = machine.busy_reasons(rec["load"])
    lines = [f"{label}: {m['date_utc']}, commit {g['short']}{' (DIRTY)' if g['dirty'] else ''} {g['subject']!r}, "
             f"{m['cpu']['model']}, FMA peak {m['fma_peak'].get('best')}"]
    if busy:
        lines.append(f"  WARNING {label} ran on a busy machine: " + "; ".join(busy))
    if g["dirty"]:
        lines.append(f"  note: {label} was built from a tree with uncommitted changes")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--fail-if-slower", type=float, metavar="PCT")
    a = ap.parse_args()
    before, after = json.load(open(a.before)), json.load(open(a.after))
    kind = before.get("benchmark")
    if kind != after.get("benchmark"):
        sys.exit(f"compare: {a.before} is a {kind} run, {a.after} a {after.get('benchmark')} run")
    rows = {"conv2d": rows_conv2d, "mnist": rows_mnist}.get(kind)
    if not rows:
        sys.exit(f"compare: unknown benchmark {kind!r}")

    print("\n".join(describe_run("before", before) + describe_run("after", after)))
    diff = machine_differences(before, after)
    if diff:
        print("WARNING different machines or setups, ratios are not a measure of the change:\n  " + "\n  ".join(diff))
    sdiff = settings_differences(before, after)
    if sdiff:
        print("note: settings differ: " + "; ".join(sdiff))
    print()

    rb, ra = rows(before), rows(after)
    what = "fwd+bwd median ms" if kind == "conv2d" else "s/epoch"
    print(f"| config | threads | nabla before | nabla after | **nabla after/before** | PyTorch best after/before "
          f"(noise) | nabla/PyTorch before | nabla/PyTorch after |{' nabla x limit before → after |' if kind == 'mnist' else ''}")
    print("|---|---|---|---|---|---|---|---|" + ("---|" if kind == "mnist" else ""))
    logs, failed, noisy = [], [], []
    for key in list(rb) + [k for k in ra if k not in rb]:
        b, f = rb.get(key), ra.get(key)
        if not b or not f:
            print(f"| {key[0]} | {key[1]} | {'(not run)' if not b else rc.fmt(b['nabla'])} | "
                  f"{'(not run)' if not f else rc.fmt(f['nabla'])} | | | | |" + (" |" if kind == "mnist" else ""))
            continue
        n, p = rc.ratio(f["nabla"], b["nabla"]), rc.ratio(f["pytorch"], b["pytorch"])
        if n:
            logs.append(math.log(n))
        if p and abs(p - 1) > NOISE_WARN:
            noisy.append(f"{key[0]}/{key[1]}")
        extra = (f" {rc.fmt(b['times_limit'])} → {rc.fmt(f['times_limit'])} |" if kind == "mnist" else "")
        print(f"| {key[0]} | {key[1]} | {rc.fmt(b['nabla'])} | {rc.fmt(f['nabla'])} | **{rc.fmt(n, '.3f')}** | "
              f"{rc.fmt(p, '.3f')} | {rc.fmt(b['ratio'])} | {rc.fmt(f['ratio'])} |{extra}")
        if a.fail_if_slower is not None and n and n / (p or 1) > 1 + a.fail_if_slower / 100 \
                and n > 1 + a.fail_if_slower / 100:
            failed.append(f"{key[0]} at {key[1]} thread(s): nabla x{n:.3f}, PyTorch x{p:.3f}")
    print()
    print(f"times: {what}; after/before < 1 means faster after. ", end="")
    if logs:
        print(f"Geometric mean of nabla after/before: {math.exp(sum(logs) / len(logs)):.3f} over {len(logs)} rows.")
    if noisy:
        print(f"WARNING PyTorch itself moved by more than {NOISE_WARN:.0%} on {', '.join(noisy)}: "
              "those rows measure the machine, not the change")
    if failed:
        print(f"FAIL: nabla more than {a.fail_if_slower}% slower on: " + "; ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
