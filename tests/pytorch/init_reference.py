"""PyTorch twin of tests/test_init.c: torch.nn.init (torch 1.13.1) written to argv[1].

PyTorch's random numbers are not nabla's, so what is compared is what does not
depend on them: the exact bounds and standard deviations each function passes
to uniform_ / normal_ (captured by wrapping torch.Tensor.uniform_ and
normal_), calculate_gain, the fans, the deterministic eye_ / dirac_, and the
moments of trunc_normal_ over a large sample.

Layout (float64 unless noted):
  ncases; case/{i}/fn (FNS index), shape, a, gain, mode (0 fan_in, 1 fan_out,
      2 FAN_OUT), nonlinearity (NONLINEARITIES index) when given;
      case/{i}/args [2]: (from, to) of uniform_ or (mean, std) of normal_
  ngains; gain/{j}/nonlinearity (index), param (absent: None), value
  nfans; fan/{j}/shape, fan_in, fan_out
  eye/{j}/shape, value; dirac/{j}/shape, groups, value
  ntrunc; trunc/{j}/mean, std, a, b, n, sample_mean, sample_std, min, max
"""
import math
import sys

import h5py
import numpy as np
import torch
from torch import nn

FNS = ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]
NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid", "tanh", "relu", "leaky_relu", "selu"]
MODES = ["fan_in", "fan_out", "FAN_OUT"]

CASES = [
    ("uniform_", (5,), dict(a=-2.0, b=3.0)),
    ("normal_", (5,), dict(mean=1.5, std=0.3)),
    ("xavier_uniform_", (3, 4), {}),
    ("xavier_uniform_", (16, 3, 5, 5), dict(gain=math.sqrt(2.0))),
    ("xavier_uniform_", (0, 5), {}),
    ("xavier_normal_", (8, 4, 3), dict(gain=0.5)),
    ("xavier_normal_", (7, 1), {}),
    ("kaiming_uniform_", (3, 4), {}),
    ("kaiming_uniform_", (16, 3, 5, 5), dict(a=math.sqrt(5))),  # nn.Conv2d's own init
    ("kaiming_uniform_", (16, 3, 5, 5), dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_uniform_", (2, 3, 2, 2, 2), dict(nonlinearity="tanh")),
    ("kaiming_uniform_", (10, 7), dict(nonlinearity="conv_transpose2d")),
    ("kaiming_normal_", (16, 3, 3, 3), dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", (10, 7), dict(a=0.2)),
    ("kaiming_normal_", (10, 7), dict(nonlinearity="selu")),
    ("kaiming_normal_", (10, 7, 2), dict(nonlinearity="sigmoid", mode="FAN_OUT")),
]
GAINS = [(n, None) for n in NONLINEARITIES] + [("leaky_relu", 0.2), ("leaky_relu", 0.0), ("leaky_relu", 3.0)]
FANS = [(2, 3), (5, 4, 3), (6, 2, 3, 3), (4, 3, 2, 2, 2), (0, 5), (3, 0, 2)]
EYES = [(3, 5), (4, 2), (3, 3)]
DIRACS = [((6, 2, 3, 3), 2), ((4, 4, 3), 1), ((2, 3, 3, 3, 3), 1), ((6, 4, 2, 4), 3), ((3, 5, 1), 1)]
TRUNCS = [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 3.0), (-1.0, 0.5, -1.2, 5.0)]
NTRUNC = 2_000_000

captured = []
_uniform, _normal = torch.Tensor.uniform_, torch.Tensor.normal_


def uniform_(self, a=0.0, b=1.0, **kw):
    captured.append((a, b))
    return _uniform(self, a, b, **kw)


def normal_(self, mean=0.0, std=1.0, **kw):
    captured.append((mean, std))
    return _normal(self, mean, std, **kw)


torch.Tensor.uniform_, torch.Tensor.normal_ = uniform_, normal_


def main():
    torch.manual_seed(0)
    with h5py.File(sys.argv[1], "w") as f:
        f["ncases"] = len(CASES)
        for i, (fn, shape, kw) in enumerate(CASES):
            g = f.create_group("case/%d" % i)
            g["fn"], g["shape"] = FNS.index(fn), np.array(shape, dtype=np.int64)
            for k, v in kw.items():
                if k == "mode":
                    g[k] = MODES.index(v)
                elif k == "nonlinearity":
                    g[k] = NONLINEARITIES.index(v)
                else:
                    g[k] = float(v)
            captured.clear()
            getattr(nn.init, fn)(torch.empty(shape, dtype=torch.float64), **kw)
            g["args"] = np.array(captured[0] if captured else (np.nan, np.nan), dtype=np.float64)
        f["ngains"] = len(GAINS)
        for j, (name, param) in enumerate(GAINS):
            g = f.create_group("gain/%d" % j)
            g["nonlinearity"] = NONLINEARITIES.index(name)
            if param is not None:
                g["param"] = param
            g["value"] = float(nn.init.calculate_gain(name, param))
        f["nfans"] = len(FANS)
        for j, shape in enumerate(FANS):
            fi, fo = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
            g = f.create_group("fan/%d" % j)
            g["shape"], g["fan_in"], g["fan_out"] = np.array(shape, dtype=np.int64), fi, fo
        f["neye"] = len(EYES)
        for j, shape in enumerate(EYES):
            g = f.create_group("eye/%d" % j)
            g["shape"], g["value"] = np.array(shape, dtype=np.int64), nn.init.eye_(torch.empty(shape)).double().numpy()
        f["ndirac"] = len(DIRACS)
        for j, (shape, groups) in enumerate(DIRACS):
            g = f.create_group("dirac/%d" % j)
            g["shape"], g["groups"] = np.array(shape, dtype=np.int64), groups
            g["value"] = nn.init.dirac_(torch.empty(shape), groups=groups).double().numpy()
        f["ntrunc"] = len(TRUNCS)
        for j, (mean, std, a, b) in enumerate(TRUNCS):
            x = nn.init.trunc_normal_(torch.empty(NTRUNC, dtype=torch.float64), mean, std, a, b)
            g = f.create_group("trunc/%d" % j)
            g["mean"], g["std"], g["a"], g["b"], g["n"] = mean, std, a, b, NTRUNC
            g["sample_mean"], g["sample_std"] = x.mean().item(), x.std().item()
            g["min"], g["max"] = x.min().item(), x.max().item()


if __name__ == "__main__":
    main()
