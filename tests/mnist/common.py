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


def run(binary, work, *flags, env=None):
    """Run mnist_train in work/; return (exit status, stdout, stderr), whatever they are."""
    r = subprocess.run([binary, *map(str, flags)], cwd=work, capture_output=True, text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def no_sanitizer_report(err, what):
    """Under the ASan build a leak or an error report makes the run fail too; say which."""
    assert "Sanitizer" not in err and "runtime error" not in err, f"{what}: sanitizer report:\n{err}"


FNV_OFFSET, FNV_PRIME, MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def _fnv(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def checkpoint_checksum(f):
    """nabla/checkpoint.h's checksum of an open h5py file, written independently of the C code:
    FNV-1a 64 over every dataset but checkpoint.checksum, in byte order of the names: the name,
    a NUL, b'f' or b'i', ndim and the dims as int64, the values as float64 or int64, little endian."""
    h = FNV_OFFSET
    for name in sorted((k for k in f.keys() if k != "checkpoint.checksum"), key=lambda k: k.encode()):
        v = np.asarray(f[name][()])
        is_float = v.dtype.kind == "f"
        h = _fnv(h, name.encode() + b"\0" + (b"f" if is_float else b"i"))
        h = _fnv(h, np.array([v.ndim, *v.shape], dtype="<i8").tobytes())
        h = _fnv(h, v.astype("<f8" if is_float else "<i8").tobytes())
    return h


def edit_checkpoint(path, edit, fix_checksum=True):
    """Apply edit(f) to the checkpoint (an open h5py file) and, if fix_checksum, write the
    checksum the edited file should have, so that the checks behind the checksum are reached."""
    with h5py.File(path, "r+") as f:
        edit(f)
        if fix_checksum:
            assert "checkpoint.checksum" in f
            del f["checkpoint.checksum"]
            f["checkpoint.checksum"] = np.array(checkpoint_checksum(f), dtype=np.uint64).view(np.int64)
