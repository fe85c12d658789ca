#!/usr/bin/python3
"""Writes the seed corpora tests/fuzz/corpus/<name>/ (a few valid and
near-valid inputs per target, in each entry's input layout; see the comment at
the top of tests/fuzz/fuzz_<name>.c). Run once; the files are committed.
HDF5 seeds are written by h5py, the way PyTorch users write state_dicts."""
import gzip
import os
import struct
import sys

import h5py
import numpy as np

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(name, fname, data):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


# ---- idx: byte 0 = mode (bit0 data set, bit1 gzip by the harness; nb_idx_read: bits 2-3 dtype;
# data set: bits 2-7 num_classes code, then 2 bytes splitting the rest into images | labels)
def images(n, r, c):
    return struct.pack(">IIII", 0x803, n, r, c) + bytes((i * 37) % 256 for i in range(n * r * c))


def labels(n, k=10):
    return struct.pack(">II", 0x801, n) + bytes(i % k for i in range(n))


def idx(code, fmt, shape, values):
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + struct.pack(">" + fmt * len(values), *values)


def pair(mode, im, lb):
    return bytes([mode]) + struct.pack(">H", len(im)) + im + lb


put("idx", "read_images_raw", bytes([0]) + images(2, 3, 4))
put("idx", "read_images_gz_by_harness", bytes([2 | (1 << 2)]) + images(3, 2, 2))
put("idx", "read_gzip_file", bytes([0]) + gzip.compress(images(1, 4, 4), mtime=0))
put("idx", "read_truncated", bytes([0]) + images(2, 3, 4)[:-3])
put("idx", "read_trailing", bytes([0]) + images(1, 2, 2) + b"\x00")
put("idx", "read_int16", bytes([2 << 2]) + idx(0x0B, "h", (2, 3), [-32768, -1, 0, 1, 32767, 9]))
put("idx", "read_int32_2d", bytes([1 << 2]) + idx(0x0C, "i", (3, 2), [-7, 2**31 - 1, 0, 5, -(2**31), 1]))
put("idx", "read_float64_4d", bytes([0]) + idx(0x0E, "d", (1, 2, 1, 2), [0.5, -1e300, float("nan"), 2.0]))
put("idx", "read_float32_to_int64", bytes([2 << 2]) + idx(0x0D, "f", (2,), [1.5, -2.0]))
put("idx", "dataset_raw", pair(1, images(3, 2, 2), labels(3)))
put("idx", "dataset_gz_by_harness", pair(3, images(2, 3, 3), labels(2)))
put("idx", "dataset_label_out_of_range", pair(1 | (3 << 2), images(20, 1, 2), labels(20, 16)))  # num_classes 12
put("idx", "dataset_count_mismatch", pair(1, images(2, 2, 2), labels(3)))
put("idx", "dataset_gzip_cut", pair(1, images(2, 2, 2), gzip.compress(labels(2), mtime=0)[:-6]))

# ---- hdf5: the whole input is the file
tmp = os.path.join(root, "tmp.h5")


def h5(fname, fill, **kw):
    with h5py.File(tmp, "w", **kw) as f:
        fill(f)
    with open(tmp, "rb") as f:
        put("hdf5", fname, f.read())
    os.remove(tmp)


def state(f, nested=False, dt=np.float32):
    rng = np.random.default_rng(0)
    f.create_dataset("weight", data=rng.standard_normal((2, 3)).astype(dt))
    f.create_dataset("bias", data=rng.standard_normal(3).astype(dt))
    if nested:
        f.create_dataset("fc/weight", data=rng.standard_normal(4))
        f.create_dataset("conv/weight", data=rng.standard_normal((1, 1, 2, 2)).astype(dt))
        f.create_dataset("bn/num_batches_tracked", data=np.int64(3))
    else:
        f.create_dataset("fc.weight", data=rng.standard_normal(4))
        f.create_dataset("conv.weight", data=rng.standard_normal((1, 1, 2, 2)).astype(dt))
        f.create_dataset("bn.num_batches_tracked", data=np.int64(3))


h5("flat", state)
h5("nested", lambda f: state(f, nested=True))
h5("float16", lambda f: state(f, dt=np.float16))
h5("latest_format", state, libver="latest")


def odd(f):
    f.create_dataset("weight", data=np.zeros((3, 2), np.float32))  # wrong shape
    f.create_dataset("bias", data=np.arange(3, dtype=np.int32))      # wrong class
    f.create_dataset("chunked", data=np.ones((8, 8)), chunks=(4, 4), compression="gzip")
    f.create_dataset("text", data=np.bytes_("abc"))
    f.create_dataset("empty", shape=(0, 5), dtype=np.float32)
    f.attrs["format"] = "nabla-state-dict"


h5("odd_datasets", odd)
h5("no_datasets", lambda f: f.create_group("g"))

# ---- conv: byte 0 picks the op (0 conv2d, 1 max_pool2d, 2 avg_pool2d, 3 pad, 4 conv_output_size,
# 5 conv_transpose2d)
# small(lo, hi) reads lo + b % (hi - lo + 1); param(lo, hi) likewise for b < 0xF0.
def sm(v, lo):
    return v - lo


conv = [0, 0,                        # conv2d, rank 4
        2, 2, 5, 5,                  # N C H W
        3, 2, 3, 3,                  # O Cg kh kw
        1, 0, 1, 1, 1,               # weight rank 4, f32, same dtype, bias [O], grad
        sm(1, -1), sm(1, -1), sm(1, -1),   # stride, padding, dilation (h)
        sm(2, -1), sm(0, -1), sm(1, -1),   # (w)
        sm(1, -1), 0, 0, 0, 1, 2, 3]       # groups, kind explicit, mode zeros, params, seeds
put("conv", "conv2d_basic", bytes(conv))
g = list(conv)
g[3], g[6], g[7], g[21], g[22], g[23] = 4, 4, 2, sm(2, -1), 2, 1  # C 4, O 4, Cg 2, groups 2, "same", reflect
put("conv", "conv2d_groups_same_reflect", bytes(g))
u = list(conv)
u[1], u[11] = 3, 4  # unbatched (rank 3: C H W, then O starts early), float64
put("conv", "conv2d_unbatched_f64", bytes(u))
pool = [1, 0, 1, 2, 6, 6, 0, 1,
        sm(3, -1), sm(2, -1), sm(1, -1), sm(1, -1),
        sm(2, -1), sm(0, -1), sm(1, -1), sm(2, -1), 1, 5]
put("conv", "max_pool2d", bytes(pool))
a = list(pool)
a[0], a[-2] = 2, 3
put("conv", "avg_pool2d_ceil", bytes(a))
put("conv", "pad_reflect", bytes([3, 4, 1, 2, 3, 4, 0, 1, 1] + [sm(v, -5) for v in (1, 2, 0, 1, 0, 0)] + [1, 0, 7]))
put("conv", "pad_crop_constant", bytes([3, 2, 4, 4, 4, 0, 0] + [sm(v, -5) for v in (-1, 2, 3, -2, 0, 0)] + [0, 9, 7]))
put("conv", "output_size", bytes([4, sm(9, -1), sm(3, -1), sm(2, -1), sm(1, -1), sm(1, -1), sm(2, -1)]))
put("conv", "output_size_extreme", bytes([4, 0xF0, sm(3, -1), sm(1, -1), 0xF0, sm(1, -1), sm(1, -1)]))
convt = [5, 0,                       # conv_transpose2d, rank 4
         2, 3, 4, 5,                 # N Cin H W
         3, 2, 3, 3, 4,              # Cin (weight dim 0), Og, kh, kw, the module's out_channels
         1, 0, 1, 1, 1,              # weight rank 4, f32, same dtype, bias, grad
         sm(2, -1), sm(1, -1), sm(1, -1), sm(1, -1),   # stride, padding, output_padding, dilation (h)
         sm(1, -1), sm(0, -1), sm(0, -1), sm(2, -1),   # (w)
         sm(1, -1), 1, 0, 0,         # groups, zeros mode, the op, no output_size
         0, 0, 0, 0, 1, 2, 3, 4]     # output_size values, seeds
put("conv", "conv_transpose2d_basic", bytes(convt))
c = list(convt)
c[3], c[6], c[7], c[24], c[19] = 4, 4, 1, sm(4, -1), sm(2, -1)  # Cin 4, groups 4 (depthwise-like), dilation 2
c[18], c[16] = sm(1, -1), sm(1, -1)                              # output_padding 1 with stride 1: bias-only rows
put("conv", "conv_transpose2d_depthwise_dilated", bytes(c))
m = list(convt)
m[26], m[27] = 3, 2                                              # the module's forward with output_size [h, w]
m[28], m[29] = sm(8, -1), sm(9, -1)
put("conv", "conv_transpose2d_module_output_size", bytes(m))
print("corpus written to", root, file=sys.stderr)
