"""Join nabla and PyTorch benchmark lines (JSON per line) into a table of
ratios nabla/PyTorch (< 1: nabla faster), printed as Markdown and saved as
JSON. Ratios of the median wall time, of the minimum wall time (the run
least disturbed by other processes) and of the median process CPU time
(leaves out waiting for a core; at 2 threads it adds both threads' time,
OpenMP spin-waits included, so it is only a sanity check there).
Usage: ratio_table.py IN.jsonl OUT.json"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
key = lambda r: (r["name"], r["threads"])
nb = {key(r): r for r in rows if r["impl"] == "nabla"}
pt = {key(r): r for r in rows if r["impl"] == "pytorch"}
table = []
print("| config | threads | nabla fwd ms | torch fwd ms | fwd ratio | nabla fwd+bwd ms | torch fwd+bwd ms "
      "| fwd+bwd ratio (median) | (min) | (cpu) | nabla fwd+bwd GFLOP/s (min) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in sorted(nb, key=lambda k: (k[1], list(nb).index(k))):
    if k not in pt:
        continue
    a, b = nb[k], pt[k]
    rf, rb = a["fwd_ms"] / b["fwd_ms"], a["fwdbwd_ms"] / b["fwdbwd_ms"]
    rmin = a["fwdbwd_min_ms"] / b["fwdbwd_min_ms"]
    rcpu = a["fwdbwd_cpu_ms"] / b["fwdbwd_cpu_ms"]
    gf = a["fwdbwd_gflops"] * a["fwdbwd_ms"] / a["fwdbwd_min_ms"]
    table.append({"name": k[0], "threads": k[1], "nabla": a, "pytorch": b, "fwd_ratio": rf, "fwdbwd_ratio": rb,
                  "fwdbwd_min_ratio": rmin, "fwdbwd_cpu_ratio": rcpu})
    print(f"| {k[0]} | {k[1]} | {a['fwd_ms']:.2f} | {b['fwd_ms']:.2f} | {rf:.2f} | {a['fwdbwd_ms']:.2f} | "
          f"{b['fwdbwd_ms']:.2f} | {rb:.2f} | {rmin:.2f} | {rcpu:.2f} | {gf:.0f} |")
json.dump(table, open(sys.argv[2], "w"), indent=1)
