"""Data-parallel training under mpirun gives the weights of one process
training on the same data order with the combined batch:
 - mpirun -np 1 is bitwise today's single-process run;
 - 2 ranks x batch 32 and 4 ranks x batch 16 (oversubscribed) match one
   process with batch 64 to float rounding (each rank's gradient sums 32
   samples, then the two halves are added: another summation order);
 - a run with another batch size does NOT match (the comparison can fail);
 - only rank 0 writes files, and the reported test accuracy is the whole
   test set's (each rank evaluates a slice; the counts are summed).
argv: mnist_train, data dir, work dir, mpirun."""
import subprocess
import sys

import numpy as np

from common import args, assert_bitwise_equal, read_h5, train

binary, data, work = args()
# --timeout only guards against a hang (and ends the ranks cleanly): no run
# comes near it, however busy the machine.
mpirun = [sys.argv[4], "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "--timeout", "1800"]
common = ["--model", "small", "--limit-train", 384, "--limit-test", 200, "--epochs", 1, "--threads", 1]


def mpi_train(np_, *flags, name):
    cmd = [*mpirun, "-np", str(np_), binary, "--data", data, "--metrics", f"{name}.csv", "--plot", f"{name}.svg",
           *map(str, flags)]
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=2000)
    if r.returncode != 0:
        print(r.stdout, r.stderr, sep="\n")
        raise SystemExit(f"FAILED: {' '.join(cmd)} exited {r.returncode}")
    return r.stdout


def max_diff(a, b):
    da, db = read_h5(a), read_h5(b)
    assert sorted(da) == sorted(db)
    return max(float(np.max(np.abs(da[k].astype(np.float64) - db[k]))) for k in da)


def accuracy(out):
    return [line for line in out.splitlines() if line.startswith("final test accuracy")]


for opt in ("sgd", "adadelta"):
    one = train(binary, data, work, *common, "--optimizer", opt, "--batch-size", 64, "--save", f"{opt}1.h5",
                name=f"{opt}1")
    solo = mpi_train(1, *common, "--optimizer", opt, "--batch-size", 64, "--save", f"{opt}np1.h5", name=f"{opt}np1")
    assert_bitwise_equal(f"{work}/{opt}1.h5", f"{work}/{opt}np1.h5", f"{opt}: mpirun -np 1")
    for np_, b in ((2, 32), (4, 16)):
        out = mpi_train(np_, *common, "--optimizer", opt, "--batch-size", b, "--save", f"{opt}{np_}.h5",
                        name=f"{opt}{np_}")
        assert f"data-parallel: {np_} ranks, batch {b} per rank (64 in all)" in out, out
        assert out.count("saved weights") == 1, "only rank 0 prints"
        d = max_diff(f"{work}/{opt}1.h5", f"{work}/{opt}{np_}.h5")
        print(f"{opt}: {np_} ranks x {b} vs 1 x 64: max |diff| {d:.3g}")
        assert d < 2e-6, f"{opt}: {np_} ranks differ from one process by {d}"
        assert accuracy(out) == accuracy(one), (accuracy(out), accuracy(one))
    # Negative control: another global batch gives visibly other weights.
    train(binary, data, work, *common, "--optimizer", opt, "--batch-size", 32, "--save", f"{opt}b32.h5",
          name=f"{opt}b32")
    d = max_diff(f"{work}/{opt}1.h5", f"{work}/{opt}b32.h5")
    assert d > 1e-4, f"{opt}: batch 32 vs 64 differ by only {d}: the comparison above could not fail"

# Rank 0 alone wrote its files (rank 1 would have written under the same names).
m = open(f"{work}/sgd2.csv").read().splitlines()
assert len(m) == 2 and m[0].startswith("epoch,"), m
print("OK")
