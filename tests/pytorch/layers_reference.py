"""PyTorch twin of tests/test_layers.c: inputs, outputs and gradients (torch
1.13, float64) of the layers of issue 13: adaptive pools, max_pool2d's
indices and max_unpool2d, avg_pool2d's divisor_override, group_norm,
layer_norm, interpolate, embedding; BatchNorm1d over training steps; and the
state_dicts of GroupNorm, LayerNorm, BatchNorm1d and Embedding modules for an
HDF5 round trip. argv[1] is the output HDF5 path; each module's state_dict is
also written, one dataset per key (the h5py idiom), to
<argv[1] without .h5>_<module>.h5.

Each case is a group holding its inputs, the upstream gradient `go`, the
output `y` and the gradients `g_<input>`; integer arguments are in `args`.
The C test reads the inputs back, so nothing here depends on nabla's rng."""
import os
import sys

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_util import grads, leaf, open_output, save  # noqa: E402

torch.manual_seed(4321)
torch.set_default_dtype(torch.float64)
out = open_output(sys.argv[1])
stem = sys.argv[1][:-3] if sys.argv[1].endswith(".h5") else sys.argv[1]


def args(group, *values):
    save(group + "/args", torch.tensor(values, dtype=torch.int64))


NONE = -1  # NB_SIZE_NONE

# ---- adaptive pools: (name, input shape, (out_h, out_w)); -1 is None ----
for name, shape, (oh, ow) in [("down", (2, 3, 7, 9), (3, 4)), ("none_h", (2, 3, 5, 7), (NONE, 3)),
                              ("unbatched", (3, 10, 10), (4, 4)), ("global", (2, 2, 6, 6), (1, 1)),
                              ("up", (1, 2, 4, 5), (9, 10)), ("same", (2, 1, 5, 5), (5, 5)),
                              ("odd", (1, 3, 13, 11), (5, 3))]:
    size = (None if oh == NONE else oh, None if ow == NONE else ow)
    g = "adaptive_avg_pool2d/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    args(g, oh, ow)
    grads(g, F.adaptive_avg_pool2d(x, size), {"x": x})
    g = "adaptive_max_pool2d/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    args(g, oh, ow)
    y, i = F.adaptive_max_pool2d(x, size, return_indices=True)
    save(g + "/indices", i)
    grads(g, y, {"x": x})
# ties and overlapping windows: small integers
g = "adaptive_max_pool2d/ties"
x = torch.randint(-1, 2, (2, 3, 7, 6)).double().requires_grad_()
save(g + "/x", x)
args(g, 4, 5)
y, i = F.adaptive_max_pool2d(x, (4, 5), return_indices=True)
save(g + "/indices", i)
grads(g, y, {"x": x})

# ---- max_pool2d with indices, then max_unpool2d of the result ----
# (name, shape, kernel, stride, padding, dilation, ceil_mode)
for name, shape, k, s, p, d, ceil in [("k2", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
                                      ("k2odd", (2, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),
                                      ("k3s2p1", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), False),
                                      ("dilceil", (1, 2, 10, 9), (3, 3), (2, 2), (1, 1), (2, 2), True),
                                      ("unbatched", (3, 6, 6), (2, 3), (2, 1), (1, 1), (1, 1), False)]:
    g = "max_pool2d_indices/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    args(g, *k, *s, *p, *d, int(ceil))
    y, i = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    save(g + "/indices", i)
    grads(g, y, {"x": x})
    # unpool the pooled values (a fresh leaf with the same values) with the pool's parameters
    if d == (1, 1) and not ceil:
        u = "max_unpool2d/" + name
        xu = y.detach().clone().requires_grad_()
        save(u + "/x", xu)
        save(u + "/indices", i)
        args(u, *k, *s, *p)
        osz = shape[-2:]  # the pooled input's size (the default differs for odd sizes)
        save(u + "/output_size", torch.tensor(osz, dtype=torch.int64))
        grads(u, F.max_unpool2d(xu, i, k, s, p, output_size=osz), {"x": xu})
# output_size given (as [h, w] and as [n, c, h, w]); duplicate indices (overlapping windows)
x = torch.randn(2, 3, 9, 7)
y, i = F.max_pool2d(x, 2, return_indices=True)
for name, osz in [("size2", (9, 7)), ("size4", (2, 3, 8, 7))]:
    u = "max_unpool2d/" + name
    xu = y.clone().requires_grad_()
    save(u + "/x", xu)
    save(u + "/indices", i)
    args(u, 2, 2, 2, 2, 0, 0)
    save(u + "/output_size", torch.tensor(osz, dtype=torch.int64))
    grads(u, F.max_unpool2d(xu, i, 2, output_size=osz), {"x": xu})
x = torch.randint(-1, 2, (1, 2, 6, 6)).double()
y, i = F.max_pool2d(x, 3, 1, return_indices=True)  # neighbouring windows share winners
u = "max_unpool2d/duplicates"
xu = torch.randn(y.shape).requires_grad_()
save(u + "/x", xu)
save(u + "/indices", i)
args(u, 3, 3, 1, 1, 0, 0)
grads(u, F.max_unpool2d(xu, i, 3, 1), {"x": xu})

# ---- avg_pool2d with divisor_override: (name, shape, kernel, stride, padding, ceil, count_include_pad, divisor) ----
for name, shape, k, s, p, ceil, cip, div in [("d3", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False, True, 3),
                                             ("pad", (2, 2, 7, 9), (3, 3), (2, 2), (1, 1), True, False, 5),
                                             ("neg", (1, 2, 6, 5), (3, 2), (1, 2), (1, 0), False, True, -2)]:
    g = "avg_pool2d_divisor/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    args(g, *k, *s, *p, int(ceil), int(cip), div)
    grads(g, F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div), {"x": x})

# ---- group_norm: (name, shape, groups, affine, eps) ----
for name, shape, groups, affine, eps in [("g3", (2, 6, 3, 4), 3, True, 1e-5), ("g2_noaffine", (3, 4, 5), 2, False, 1e-5),
                                         ("2d", (4, 6), 3, True, 1e-3), ("instance", (2, 8, 2, 3), 8, True, 1e-5),
                                         ("one_group", (2, 4, 3, 3), 1, True, 0.1)]:
    g = "group_norm/" + name
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
    w = (torch.rand(shape[1]) + 0.5).requires_grad_() if affine else None
    b = torch.randn(shape[1]).requires_grad_() if affine else None
    save(g + "/x", x)
    args(g, groups)
    save(g + "/eps", torch.tensor(eps))
    if affine:
        save(g + "/w", w)
        save(g + "/b", b)
    grads(g, F.group_norm(x, groups, w, b, eps), {"x": x, "w": w, "b": b})

# ---- layer_norm: (name, shape, normalized_shape, weight, bias, eps) ----
for name, shape, ns, has_w, has_b, eps in [("last", (2, 3, 4), (4,), True, True, 1e-5),
                                           ("two", (2, 3, 4), (3, 4), True, True, 1e-5),
                                           ("all", (2, 3, 4), (2, 3, 4), True, True, 1e-3),
                                           ("noaffine", (5, 6), (6,), False, False, 1e-5),
                                           ("weight_only", (3, 7), (7,), True, False, 1e-5),
                                           ("1d", (4,), (4,), True, True, 1e-5)]:
    g = "layer_norm/" + name
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
    w = (torch.rand(ns) + 0.5).requires_grad_() if has_w else None
    b = torch.randn(ns).requires_grad_() if has_b else None
    save(g + "/x", x)
    args(g, *ns)
    save(g + "/eps", torch.tensor(eps))
    if has_w:
        save(g + "/w", w)
    if has_b:
        save(g + "/b", b)
    grads(g, F.layer_norm(x, ns, w, b, eps), {"x": x, "w": w, "b": b})

# ---- interpolate: (name, shape, size or None, scale or None, mode, align_corners, recompute) ----
# Several channels: PyTorch computes one-channel input with another kernel (see src/nn/upsample.c).
# args: [size_h, size_w, mode (0 nearest, 1 bilinear), align, recompute]; scale_factor in `scale`
for name, shape, size, scale, mode, align, recompute in [
    ("nearest_size", (2, 3, 5, 7), (7, 10), None, "nearest", None, None),
    ("nearest_down", (2, 2, 9, 8), (4, 3), None, "nearest", None, None),
    ("nearest_x2", (1, 2, 4, 5), None, (2.0, 2.0), "nearest", None, None),
    ("nearest_s17", (1, 2, 5, 6), None, (1.7, 1.3), "nearest", None, None),
    ("nearest_s17_recompute", (1, 2, 5, 6), None, (1.7, 1.3), "nearest", None, True),
    ("nearest_s06", (2, 3, 9, 10), None, (0.6, 0.45), "nearest", None, False),
    ("nearest_x3_same_w", (1, 2, 3, 4), None, (3.0, 1.2), "nearest", None, None),
    ("bilinear_size", (2, 3, 5, 7), (8, 11), None, "bilinear", False, None),
    ("bilinear_size_align", (2, 3, 5, 7), (8, 11), None, "bilinear", True, None),
    ("bilinear_down", (1, 2, 9, 10), (4, 3), None, "bilinear", False, None),
    ("bilinear_down_align", (1, 2, 9, 10), (4, 3), None, "bilinear", True, None),
    ("bilinear_x2", (2, 2, 4, 5), None, (2.0, 2.0), "bilinear", False, None),
    ("bilinear_s17", (1, 2, 5, 6), None, (1.7, 2.3), "bilinear", False, None),
    ("bilinear_s17_recompute", (1, 2, 5, 6), None, (1.7, 2.3), "bilinear", False, True),
    ("bilinear_s17_align", (1, 2, 5, 6), None, (1.7, 2.3), "bilinear", True, None),
    ("bilinear_same_h", (1, 2, 4, 5), None, (1.2, 0.5), "bilinear", False, None),
    ("bilinear_to_1", (2, 2, 5, 6), (1, 1), None, "bilinear", True, None),
]:
    g = "interpolate/" + name
    x = leaf(*shape)
    save(g + "/x", x)
    args(g, *(size if size else (0, 0)), 0 if mode == "nearest" else 1, int(bool(align)), int(bool(recompute)))
    save(g + "/scale", torch.tensor(scale if scale else (0.0, 0.0)))
    y = F.interpolate(x, size=size, scale_factor=scale, mode=mode, align_corners=align,
                      recompute_scale_factor=recompute)
    # torch 1.13's nearest backward indexes with other rules than its forward
    # (nearest_idx: a copy when out == in, a halving when out == 2 in, whatever
    # the scale_factor), so for such a case its gradient is not the forward's;
    # nabla's is (gradcheck checks it): only the forward is compared.
    inconsistent = mode == "nearest" and scale and any(
        o in (i, 2 * i) and s not in (1.0, 2.0) for i, o, s in zip(x.shape[2:], y.shape[2:], scale))
    grads(g, y, {} if inconsistent else {"x": x})

# ---- embedding: (name, indices, num, dim, padding_idx (None: -9), scale_grad_by_freq) ----
NOPAD = -9
for name, idx, num, dim, pad, freq in [("plain", [[1, 3, 1], [0, 6, 4]], 7, 4, None, False),
                                       ("pad", [[1, 2, 1], [2, 6, 2]], 7, 4, 2, False),
                                       ("pad_neg", [[1, 6, 1, 5]], 7, 3, -1, False),
                                       ("freq", [[1, 3, 1], [0, 3, 1]], 5, 3, None, True),
                                       ("freq_pad", [[1, 3, 1], [0, 3, 4]], 5, 3, 3, True),
                                       ("scalar", 4, 6, 5, None, False)]:
    g = "embedding/" + name
    ind = torch.tensor(idx, dtype=torch.int64)
    w = leaf(num, dim)
    save(g + "/input", ind)
    save(g + "/w", w)
    args(g, NOPAD if pad is None else pad, int(freq))
    grads(g, F.embedding(ind, w, padding_idx=pad, scale_grad_by_freq=freq), {"w": w})

torch.set_default_dtype(torch.float32)

# ---- BatchNorm1d: three training steps, then eval; momentum 0.1 and None (cumulative); no running stats ----
for name, shape, momentum, affine, track in [("2d", (6, 4), 0.1, True, True), ("3d", (5, 4, 3), 0.1, True, True),
                                             ("2d_cumulative", (6, 4), None, True, True),
                                             ("3d_noaffine", (3, 4, 5), 0.3, False, True),
                                             ("3d_notrack", (5, 4, 3), 0.1, True, False)]:
    g = "batch_norm1d/" + name
    bn = nn.BatchNorm1d(4, momentum=momentum, affine=affine, track_running_stats=track)
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.rand(4) + 0.5)
            bn.bias.copy_(torch.randn(4))
        save(g + "/w", bn.weight)
        save(g + "/b", bn.bias)
    save(g + "/hyper", torch.tensor([-1.0 if momentum is None else momentum, float(affine), float(track)],
                                    dtype=torch.float64))
    bn.train()
    for step in range(3):
        x = torch.randn(*shape) * 2 + 1
        save("%s/x%d" % (g, step), x)
        with torch.no_grad():
            save("%s/y%d" % (g, step), bn(x))
    if track:
        save(g + "/running_mean", bn.running_mean)
        save(g + "/running_var", bn.running_var)
        save(g + "/num_batches_tracked", bn.num_batches_tracked)
    bn.eval()
    x = torch.randn(*shape)
    save(g + "/x_eval", x)
    with torch.no_grad():
        save(g + "/y_eval", bn(x))

# ---- modules for the HDF5 round trip: state_dict file, an input and the output ----
modules = {
    "groupnorm": (nn.GroupNorm(3, 6), (2, 6, 4, 4)),
    "layernorm": (nn.LayerNorm((3, 4)), (2, 5, 3, 4)),
    "batchnorm1d": (nn.BatchNorm1d(5), (8, 5, 3)),
    "embedding": (nn.Embedding(10, 3, padding_idx=0), None),
}
for key, (m, shape) in modules.items():
    with torch.no_grad():
        for p in m.parameters():  # not the default values, so a load is visible
            p.add_(torch.randn(p.shape) * 0.5)
    if key == "batchnorm1d":
        m.train()
        with torch.no_grad():
            for _ in range(2):
                m(torch.randn(*shape) * 3 + 2)
    m.eval()
    x = torch.randint(0, 10, (3, 4)) if shape is None else torch.randn(*shape)
    with torch.no_grad():
        y = m(x)
    save("module/%s/x" % key, x)
    save("module/%s/y" % key, y)
    with h5py.File("%s_%s.h5" % (stem, key), "w") as f:
        for k, v in m.state_dict().items():
            f.create_dataset(k, data=v.cpu().numpy())
out.close()
