"""PyTorch twin of tests/test_clip_grad.c: torch.nn.utils.clip_grad_norm_ and
clip_grad_value_ (torch 1.13.1) written to argv[1].

Layout: ncases; case/{i}/fn (0 clip_grad_norm_, 1 clip_grad_value_),
  nparams, max_norm, norm_type, error_if_nonfinite, clip_value (as given),
  p{k}/f32 (1: float32), p{k}/grad (absent: grad None) and p{k}/after (the grad
  after the call, float64), total_norm (clip_grad_norm_), error (1 when PyTorch
  raised; the grads are then unchanged)
"""
import math
import sys

import h5py
import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
SHAPES = [(3, 4), (5,), (2, 3, 2)]


def grads(scale, dtypes, present=(True, True, True), special=None):
    out = []
    for k, (s, d) in enumerate(zip(SHAPES, dtypes)):
        g = (torch.randn(s, dtype=torch.float64) * scale).to(d) if present[k] else None
        if g is not None and special is not None and k == 0:
            g.view(-1)[3] = special
        out.append(g)
    return out


F32, F64 = torch.float32, torch.float64
CASES = [
    # (fn, kwargs, dtypes, scale, present, special)
    (0, dict(max_norm=1.0), (F64,) * 3, 1.0, None, None),
    (0, dict(max_norm=1.0), (F32,) * 3, 1.0, None, None),
    (0, dict(max_norm=100.0), (F64,) * 3, 1.0, None, None),  # no clipping: the coefficient is clamped to 1
    (0, dict(max_norm=0.5, norm_type=1.0), (F32,) * 3, 2.0, None, None),
    (0, dict(max_norm=0.5, norm_type=math.inf), (F64,) * 3, 2.0, None, None),
    (0, dict(max_norm=0.5, norm_type=math.inf), (F32,) * 3, 2.0, None, None),
    (0, dict(max_norm=2.0, norm_type=3.5), (F64,) * 3, 1.0, None, None),
    (0, dict(max_norm=2.0, norm_type=0.5), (F32,) * 3, 1.0, None, None),
    (0, dict(max_norm=3.0, norm_type=0.0), (F64,) * 3, 1.0, None, None),
    (0, dict(max_norm=0.3, norm_type=-math.inf), (F64,) * 3, 1.0, None, None),
    (0, dict(max_norm=1.0), (F64,) * 3, 1.0, (True, False, True), None),
    (0, dict(max_norm=1.0), (F32, F64, F32), 1.0, None, None),
    (0, dict(max_norm=1.0), (F32,) * 3, 1.0, None, math.nan),  # scaled by a NaN norm
    (0, dict(max_norm=1.0, error_if_nonfinite=True), (F64,) * 3, 1.0, None, math.inf),
    (0, dict(max_norm=1.0, norm_type=math.inf, error_if_nonfinite=True), (F32,) * 3, 1.0, None, math.nan),
    (0, dict(max_norm=1.0), (F64,) * 3, 1.0, (False, False, False), None),
    (1, dict(clip_value=0.5), (F64,) * 3, 1.0, None, None),
    (1, dict(clip_value=0.25), (F32, F64, F32), 1.0, (True, False, True), math.nan),
    (1, dict(clip_value=-0.5), (F32,) * 3, 1.0, None, None),  # min > max: everything becomes max
]


def main():
    with h5py.File(sys.argv[1], "w") as f:
        f["ncases"] = len(CASES)
        for i, (fn, kw, dtypes, scale, present, special) in enumerate(CASES):
            g = f.create_group("case/%d" % i)
            g["fn"], g["nparams"] = fn, len(SHAPES)
            for k, v in kw.items():
                g[k] = float(v)
            gs = grads(scale, dtypes, present or (True,) * 3, special)
            params = []
            for k, (s, d, gr) in enumerate(zip(SHAPES, dtypes, gs)):
                p = torch.zeros(s, dtype=d, requires_grad=True)
                g["p%d/f32" % k] = int(d == F32)
                if gr is not None:
                    g["p%d/grad" % k] = gr.double().numpy()
                    p.grad = gr.clone()
                params.append(p)
            try:
                if fn == 0:
                    g["total_norm"] = float(nn.utils.clip_grad_norm_(params, **kw))
                else:
                    nn.utils.clip_grad_value_(params, **kw)
                g["error"] = 0
            except RuntimeError:
                g["error"] = 1
            for k, p in enumerate(params):
                if p.grad is not None:
                    g["p%d/after" % k] = p.grad.double().numpy()


if __name__ == "__main__":
    main()
