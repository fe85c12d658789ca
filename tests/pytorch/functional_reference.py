"""PyTorch twin of tests/test_functional.c: writes inputs, outputs and
gradients of torch.nn.functional (torch 1.13, float64) for every case the C
test checks. argv[1] is the output HDF5 path.

Each case is a group holding its inputs, the upstream gradient `go`, the
output `y` and the gradients `g_<input>`. The C test reads the inputs back,
so nothing here needs to be reproduced by nabla's rng."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_util import grads, leaf, open_output, save  # noqa: E402

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)
out = open_output(sys.argv[1])

# ---- linear ----
for name, xs, bias in [("bias", (5, 7), True), ("nobias", (5, 7), False), ("3d", (2, 3, 7), True),
                       ("1d", (7,), True)]:
    g = "linear/" + name
    x, w = leaf(*xs), leaf(4, 7)
    b = leaf(4) if bias else None
    save(g + "/x", x)
    save(g + "/w", w)
    if bias:
        save(g + "/b", b)
    grads(g, F.linear(x, w, b), {"x": x, "w": w, "b": b})

# ---- pooling: (name, shape, kernel, stride, padding, dilation, ceil_mode, count_include_pad) ----
pools = [
    ("k2", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False, True),
    ("k3s2p1", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), False, True),
    ("k3s2p1_nopad", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), False, False),
    ("ceil", (1, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True, True),
    ("ceilpad", (2, 2, 8, 9), (3, 3), (2, 2), (1, 1), (1, 1), True, True),
    ("ceilpad_nopad", (2, 2, 8, 9), (3, 3), (2, 2), (1, 1), (1, 1), True, False),
    ("nonsq", (2, 1, 6, 11), (2, 3), (1, 2), (1, 1), (1, 1), False, True),
    ("s1", (1, 2, 5, 6), (3, 2), (1, 1), (0, 1), (1, 1), False, True),
    ("3d", (3, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1), False, True),
    ("k2odd", (2, 3, 7, 11), (2, 2), (2, 2), (0, 0), (1, 1), False, True),
]
for name, shape, k, s, p, d, ceil, cip in pools:
    for kind in ("max", "avg"):
        if kind == "max" and not cip:
            continue
        g = "%s_pool2d/%s" % (kind, name)
        x = leaf(*shape)
        save(g + "/x", x)
        save(g + "/params", torch.tensor([*k, *s, *p, *d, int(ceil), int(cip)], dtype=torch.int64))
        if kind == "max":
            y = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
        else:
            y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        grads(g, y, {"x": x})
for name, shape, k, s, p, d, ceil in [("dil", (1, 3, 9, 10), (3, 2), (1, 2), (1, 0), (2, 1), False),
                                      ("dilceil", (2, 2, 10, 9), (3, 3), (2, 2), (1, 1), (2, 2), True)]:
    g = "max_pool2d/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    save(g + "/params", torch.tensor([*k, *s, *p, *d, int(ceil), 1], dtype=torch.int64))
    grads(g, F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), {"x": x})

# max_pool2d(x, 2) with many ties (small integers): the first of equal maxima wins
g = "max_pool2d/k2ties"
x = torch.randint(-1, 2, (2, 4, 6, 8)).double().requires_grad_()
save(g + "/x", x)
save(g + "/params", torch.tensor([2, 2, 2, 2, 0, 0, 1, 1, 0, 1], dtype=torch.int64))
grads(g, F.max_pool2d(x, 2), {"x": x})

# ---- batch_norm: (name, shape, affine, running stats, training, momentum, eps) ----
for name, shape, affine, stats, training, mom, eps in [
    ("train4d", (4, 3, 5, 6), True, True, True, 0.1, 1e-5),
    ("train2d", (6, 4), True, True, True, 0.3, 1e-3),
    ("train3d_noaffine", (3, 2, 7), False, True, True, 0.1, 1e-5),
    ("train_nostats", (4, 3, 2, 3), True, False, True, 0.1, 1e-5),
    ("eval4d", (4, 3, 5, 6), True, True, False, 0.1, 1e-5),
    ("eval_noaffine", (5, 4), False, True, False, 0.1, 1e-4),
]:
    g = "batch_norm/" + name
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
    C = shape[1]
    w = (torch.rand(C) + 0.5).requires_grad_() if affine else None
    b = torch.randn(C).requires_grad_() if affine else None
    rm = torch.randn(C) * 0.1 if stats else None
    rv = torch.rand(C) + 0.5 if stats else None
    save(g + "/x", x)
    save(g + "/x2", torch.randn(*shape) * 3 - 1)
    save(g + "/hyper", torch.tensor([mom, eps, float(training)]))
    if affine:
        save(g + "/w", w)
        save(g + "/b", b)
    if stats:
        save(g + "/rm0", rm)
        save(g + "/rv0", rv)
    y = F.batch_norm(x, rm, rv, w, b, training, mom, eps)
    if stats:
        save(g + "/rm1", rm)
        save(g + "/rv1", rv)
    grads(g, y, {"x": x, "w": w, "b": b})
    with torch.no_grad():  # a second call: running stats after two updates
        y2 = F.batch_norm(torch.tensor(out[g + "/x2"][()]), rm, rv, w, b, training, mom, eps)
    save(g + "/y2", y2)
    if stats:
        save(g + "/rm2", rm)
        save(g + "/rv2", rv)

# ---- losses ----
reds = ["mean", "sum", "none"]
for name, shape, tshape, ignore in [("2d", (6, 5), (6,), False), ("4d", (2, 4, 3, 3), (2, 3, 3), False),
                                    ("ignore", (5, 3), (5,), True), ("1d", (4,), (), False)]:
    C = shape[1] if len(shape) > 1 else shape[0]
    t = torch.randint(0, C, tshape)
    if ignore:
        t[1] = -100
        t[3] = -100
    for r in reds:
        g = "cross_entropy/%s_%s" % (name, r)
        x = leaf(*shape, scale=2.0)
        save(g + "/x", x)
        save(g + "/t", t)
        grads(g, F.cross_entropy(x, t, reduction=r), {"x": x})
        g = "nll_loss/%s_%s" % (name, r)
        x = torch.log_softmax(torch.randn(*shape), dim=1 if len(shape) > 1 else 0).requires_grad_()
        save(g + "/x", x)
        save(g + "/t", t)
        grads(g, F.nll_loss(x, t, reduction=r), {"x": x})
for r in reds:
    g = "mse_loss/" + r
    x, t = leaf(3, 4, 5), leaf(3, 4, 5)
    save(g + "/x", x)
    save(g + "/t", t)
    grads(g, F.mse_loss(x, t, reduction=r), {"x": x, "t": t})

# ---- leaky_relu ----
for name, slope in [("s001", 0.01), ("s02", 0.2), ("neg", -0.5)]:
    g = "leaky_relu/" + name
    x = leaf(4, 5)
    save(g + "/x", x)
    save(g + "/slope", torch.tensor(slope))
    grads(g, F.leaky_relu(x, slope), {"x": x})

out.close()
