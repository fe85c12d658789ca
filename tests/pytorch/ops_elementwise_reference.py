"""PyTorch reference for tests/test_ops_elementwise.c: forward values of the
elementwise ops (unary, with a scalar, binary with broadcasting and with
transposed operands) in float32 and float64.

Usage: ops_elementwise_reference.py OUT.h5
Layout: /<dtype>/in/<name> holds the inputs, /<dtype>/<op>/<case> the outputs.
"""
import sys

import h5py
import torch

torch.manual_seed(1234)
out_path = sys.argv[1]

# Inputs are made in float64 and rounded once per dtype, so both dtypes see
# the same values; the C test reads them back rather than regenerating them.
base = {
    "x": torch.randn(4, 33, dtype=torch.float64) * 3,          # any sign
    "xpos": torch.rand(4, 33, dtype=torch.float64) * 5 + 0.05,  # for log, sqrt, fractional pow
    "a": torch.randn(2, 3, 4, dtype=torch.float64),
    "b": torch.rand(2, 3, 4, dtype=torch.float64) + 0.5,       # away from 0 for div
    "c": torch.rand(3, 1, dtype=torch.float64) + 0.5,
    "d": torch.rand(4, dtype=torch.float64) + 0.5,
    "e": torch.tensor(1.75, dtype=torch.float64),
    "f": torch.rand(3, dtype=torch.float64) + 0.5,
}
base["x"][0, 0] = 0.0  # relu at exactly 0
# exp, sigmoid and tanh over their whole float32 range: overflow, denormals,
# tiny arguments (tanh x ~ x), infinities and NaN
base["wide"] = torch.cat([
    torch.linspace(-110, 95, 4101, dtype=torch.float64),
    torch.logspace(-9, 0, 50, dtype=torch.float64), -torch.logspace(-9, 0, 50, dtype=torch.float64),
    torch.tensor([0.0, -0.0, 0.625, -0.625, float("inf"), -float("inf"), float("nan")], dtype=torch.float64),
])

SCALARS = {"add_scalar": 0.1, "sub_scalar": 0.3, "mul_scalar": 1.7, "div_scalar": 0.3, "rsub_scalar": 2.5}
POWS = {"2": 2.0, "3": 3.0, "0.5": 0.5, "-0.5": -0.5, "-1": -1.0, "-2": -2.0, "1.3": 1.3, "0": 0.0}

with h5py.File(out_path, "w") as f:
    for dname, dt in (("f32", torch.float32), ("f64", torch.float64)):
        t = {k: v.to(dt) for k, v in base.items()}
        for k, v in t.items():
            f[f"{dname}/in/{k}"] = v.numpy()
        x, xp = t["x"], t["xpos"]
        un = {
            "neg": -x, "exp": torch.exp(x), "log": torch.log(xp), "sqrt": torch.sqrt(xp),
            "relu": torch.relu(x), "sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x),
        }
        for k, v in un.items():
            f[f"{dname}/unary/{k}"] = v.numpy()
        w = t["wide"]
        for k, fn in (("exp", torch.exp), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
            f[f"{dname}/wide/{k}"] = fn(w).numpy()
        sc = {
            "add_scalar": x + SCALARS["add_scalar"], "sub_scalar": x - SCALARS["sub_scalar"],
            "mul_scalar": x * SCALARS["mul_scalar"], "div_scalar": x / SCALARS["div_scalar"],
            "rsub_scalar": SCALARS["rsub_scalar"] - x,
        }
        for k, v in sc.items():
            f[f"{dname}/scalar/{k}"] = v.numpy()
        for k, p in POWS.items():
            # fractional powers of negatives are NaN: use the positive input there
            src = xp if p != int(p) else x
            f[f"{dname}/pow/{k}"] = torch.pow(src, p).numpy()
        a, b, c, d, e, ff = t["a"], t["b"], t["c"], t["d"], t["e"], t["f"]
        at = a.transpose(1, 2)  # [2, 4, 3], not contiguous
        cases = {
            "ab": (a, b), "ac": (a, c), "ca": (c, a), "ad": (a, d), "ae": (a, e), "ea": (e, a),
            "at_bt": (at, b.transpose(1, 2)), "at_f": (at, ff),
            "c_d": (c, d),  # [3, 1] with [4] -> [3, 4]
        }
        for op, fn in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)):
            for k, (u, v) in cases.items():
                f[f"{dname}/{op}/{k}"] = fn(u, v).contiguous().numpy()
