"""Shared helpers for the trainer's end-to-end tests (run by CTest with
Debian's /usr/bin/python3): argv = mnist_train binary, data dir, work dir."""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np


def args():
    binary, data, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    return binary, data, work


def train(binary, data, work, *flags, name="run"):
    """Run mnist_train in work/ and return its stdout; fail loudly on error."""
    cmd = [binary, "--data", data, "--metrics", f"{name}.csv", "--plot", f"{name}.svg", *map(str, flags)]
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr, sep="\n")
        raise SystemExit(f"FAILED: {' '.join(cmd)} exited {r.returncode}")
    return r.stdout


def read_h5(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f.keys()}


def assert_bitwise_equal(a, b, what):
    da, db = read_h5(a), read_h5(b)
    assert sorted(da) == sorted(db), f"{what}: keys differ: {sorted(da)} vs {sorted(db)}"
    for k in da:
        x, y = np.asarray(da[k]), np.asarray(db[k])
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: {k} dtype/shape differ"
        assert x.tobytes() == y.tobytes(), f"{what}: {k} differs (max abs diff {np.max(np.abs(x - y))})"


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    nd = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
