"""MNIST training benchmark driver (bench/mnist_bench.sh calls it): one epoch
of PyTorch's MNIST example net (batch 64, Adadelta lr 1) in nabla
(BUILD/examples/mnist/mnist_train) and in PyTorch (mnist_torch.py), PyTorch
twice, with jemalloc and with glibc's malloc, over OpenBLAS's OpenMP build
(torch_runtime.py), in the order nabla, PyTorch + jemalloc, PyTorch + glibc
for each thread count. Prints the table: seconds per epoch, the nabla /
PyTorch-at-its-best time ratio, and each epoch time as a multiple of the machine's limit (the net's FLOPs per
epoch over the measured FMA peak at that thread count; bench/README.md
derives the count). Writes one JSON result file (run_common.result_path).

With a FRACTION (0.1) or --limit-train N only the first images are trained
on and seconds per epoch are extrapolated linearly to 60000 images (the
table says so). Both evaluate on the full 10000-image test set.

usage: mnist_run.py [FRACTION | --limit-train N] [--threads "1 2"] [--build DIR] [--data DIR]
                    [--torch-blas openmp|pthread|system] [--out FILE]
       mnist_run.py --print RESULT.json      (the table of a saved run)"""
import argparse
import csv
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import run_common as rc  # noqa: E402
import torch_runtime  # noqa: E402

EPOCH_IMAGES = 60000

# The example net's layers with a weight: (name, multiply-adds per image in
# the forward pass, whether backward computes the layer's input gradient).
# conv1's input is the image, whose gradient nobody needs.
LAYERS = (
    ("conv1 1->32 3x3, 28x28 -> 26x26", 32 * 26 * 26 * 1 * 3 * 3, False),
    ("conv2 32->64 3x3, 26x26 -> 24x24", 64 * 24 * 24 * 32 * 3 * 3, True),
    ("fc1 9216->128", 9216 * 128, True),
    ("fc2 128->10", 128 * 10, True),
)


def flops_per_image():
    """FLOPs (2 per multiply-add) of one training image, forward + backward:
    forward, weight gradient, and input gradient where needed, each the same
    multiply-adds as the forward (direct count; bias, activations, pooling,
    dropout, loss and the optimizer are left out: about 1% together)."""
    return sum(2 * macs * (2 + needs_dx) for _, macs, needs_dx in LAYERS)


def limit_seconds(peak_gflops):
    """The machine's limit for one 60000-image epoch: its FLOPs at the FMA peak."""
    return EPOCH_IMAGES * flops_per_image() / (peak_gflops * 1e9) if peak_gflops else None


def run_nabla(run, exe, data, limit, t):
    with tempfile.TemporaryDirectory() as work:
        out = run.nabla([exe, "--data", data, "--epochs", "1", "--limit-train", str(limit), "--threads", str(t),
                         "--metrics", "m.csv", "--plot", "p.svg"], t, cwd=work)
        with open(os.path.join(work, "m.csv")) as f:
            last = list(csv.DictReader(f))[-1]
    rss = re.search(r"^peak resident memory: (\d+) MiB", out, re.M)
    return {"images": limit, "seconds": float(last["seconds"]), "test_accuracy": float(last["test_accuracy"]),
            "peak_rss_mib": int(rss.group(1)) if rss else None}


def row(t, nb, pt, peak):
    """One table row: each side's epoch time, extrapolated to 60000 images, against the limit and each other."""
    lim = limit_seconds(machine.peak_at(peak, t))
    r = {"threads": t, "limit_s_per_epoch": lim}
    for key, res in [("nabla", nb)] + [("pytorch_" + a, pt[a]) for a in pt]:
        if res:
            res = dict(res)
            res["s_per_epoch"] = res["seconds"] * EPOCH_IMAGES / res["images"]
            res["images_per_s"] = res["images"] / res["seconds"]
            res["times_limit"] = res["s_per_epoch"] / lim if lim else None
        r[key] = res
    best = min(((r["pytorch_" + a]["s_per_epoch"], a) for a in pt if r["pytorch_" + a]), default=(None, None))
    r["pytorch_best"] = {"s_per_epoch": best[0], "allocator": best[1]}
    r["ratio_to_pytorch_best"] = rc.ratio(nb and r["nabla"]["s_per_epoch"], best[0])
    r["pytorch_best_times_limit"] = rc.ratio(best[0], lim)
    return r


def table(record):
    s = record["settings"]
    out = [f"    {l}" for l in rc.header_lines(record)]
    extrap = "" if s["limit_train"] >= EPOCH_IMAGES else f", extrapolated from {s['limit_train']} images"
    out.append(f"    one epoch of {EPOCH_IMAGES} images{extrap}; limit = {s['flops_per_image'] * EPOCH_IMAGES / 1e12:.3f}"
               f" TFLOP per epoch / measured FMA peak at that thread count")
    out.append("")
    out.append("| threads | limit s/epoch | nabla s/epoch | nabla x limit | torch+jemalloc s/epoch | torch+glibc s/epoch "
               "| torch best x limit | nabla / torch best | nabla img/s | test % nabla / jemalloc / glibc "
               "| peak RSS MiB nabla / jemalloc / glibc |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in record["results"]:
        nb, je, gl = r["nabla"] or {}, r["pytorch_jemalloc"] or {}, r["pytorch_glibc"] or {}
        out.append(
            f"| {r['threads']} | {rc.fmt(r['limit_s_per_epoch'], '.1f')} | {rc.fmt(nb.get('s_per_epoch'), '.1f')} | "
            f"{rc.fmt(nb.get('times_limit'))} | {rc.fmt(je.get('s_per_epoch'), '.1f')} | "
            f"{rc.fmt(gl.get('s_per_epoch'), '.1f')} | {rc.fmt(r['pytorch_best_times_limit'])} | "
            f"**{rc.fmt(r['ratio_to_pytorch_best'])}** | {rc.fmt(nb.get('images_per_s'), '.0f')} | "
            f"{rc.fmt(nb.get('test_accuracy'))} / {rc.fmt(je.get('test_accuracy'))} / "
            f"{rc.fmt(gl.get('test_accuracy'))} | {nb.get('peak_rss_mib', '-')} / {je.get('peak_rss_mib', '-')} / "
            f"{gl.get('peak_rss_mib', '-')} |")
    out.append("")
    out.append("x limit: epoch time / the machine's limit (1.00 would run every FMA unit flat out); nabla / torch best: "
               "< 1 means nabla is faster than the faster of PyTorch's two runs.")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fraction", nargs="?", type=float, help="train on this fraction of the epoch (extrapolated)")
    ap.add_argument("--limit-train", type=int)
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--build", default=os.path.join(machine.ROOT, "build"))
    ap.add_argument("--data", default=os.path.join(machine.ROOT, "data", "mnist"))
    ap.add_argument("--torch-blas", choices=torch_runtime.BLAS_CHOICES, default="openmp",
                    help="OpenBLAS build for PyTorch (default openmp; system: Debian's alternatives)")
    ap.add_argument("--out", help="result file (default bench/results/mnist-<date>-<commit>.json)")
    ap.add_argument("--print", dest="show", metavar="RESULT", help="print the table of a saved result and exit")
    a = ap.parse_args()
    if a.show:
        print(table(json.load(open(a.show))))
        return
    limit = a.limit_train or (max(64, round(EPOCH_IMAGES * a.fraction)) if a.fraction else EPOCH_IMAGES)
    limit = min(limit, EPOCH_IMAGES)
    threads = [int(t) for t in a.threads.replace(",", " ").split()]
    exe = os.path.join(a.build, "examples", "mnist", "mnist_train")
    if not os.access(exe, os.X_OK):
        sys.exit(f"mnist_run: build {exe} first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && "
                 "cmake --build build -j2)")
    if not os.path.exists(os.path.join(a.data, "train-images-idx3-ubyte")):
        sys.exit("mnist_run: run scripts/fetch_mnist.sh first")
    data = os.path.abspath(a.data)
    run = rc.Run("mnist", a.build, threads, a.torch_blas)
    twin = os.path.join(machine.ROOT, "bench", "mnist_torch.py")
    results = []
    for t in threads:
        nb = run_nabla(run, exe, data, limit, t)
        pt = {}
        for alloc in torch_runtime.ALLOCATORS:
            lines = run.pytorch([twin, data, str(t), str(limit)], t, alloc)
            pt[alloc] = lines[-1] if lines else None
        results.append(row(t, nb, pt, run.machine["fma_peak"]))
        print(f"mnist_run: {t} thread(s) done", file=sys.stderr)
    settings = {"limit_train": limit, "threads": threads, "epoch_images": EPOCH_IMAGES,
                "flops_per_image": flops_per_image(), "layers": [list(l) for l in LAYERS],
                "timing": "training loop of one epoch (or of the first limit_train images, extrapolated), "
                          "evaluation excluded; batch 64, Adadelta lr 1, test on 10000 images at batch 1000"}
    record = run.finish(settings, results)
    path = rc.result_path("mnist", record, a.out)
    rc.write(record, path)
    print(table(record))
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
