"""PyTorch twin of tests/test_conv_transpose2d.c: runs nn.ConvTranspose2d on
seeded random data and writes, for every configuration cfgNNN, the inputs,
PyTorch's output and its three gradients; and the state_dict of a module for
the HDF5 round trip.

Usage: conv_transpose2d_reference.py OUT.h5   (run by CTest as the fixture
ref_conv_transpose2d; the round trip's state_dict goes to OUT_module.h5)

Layout of cfgNNN/params (int64), read by the C test:
  [dtype(0 f32, 1 f64), unbatched, N, Cin, H, W, Cout, kh, kw, sh, sw, ph, pw,
   oph, opw, dh, dw, groups, bias, grid, os_len, os0, os1, os2, os3]
output_padding is the module's; os_len > 0 calls forward(x, output_size=os[:os_len]),
which replaces it. grid: a small float64 case of the geometry grid (the C test
also runs it in float32 with every algorithm). Datasets: x, w, [b], gy, y, gx,
gw, [gb] in the config's dtype.
"""
import sys

import h5py
import numpy as np
import torch

cfgs = []


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def add(N, Cin, H, W, Cout, k, stride=1, padding=0, output_padding=0, dilation=1, groups=1, bias=True,
        unbatched=False, output_size=None, dtypes=("f32", "f64"), grid=False):
    for dt in dtypes:
        cfgs.append(dict(N=N, Cin=Cin, H=H, W=W, Cout=Cout, k=pair(k), stride=pair(stride), padding=pair(padding),
                         output_padding=pair(output_padding), dilation=pair(dilation), groups=groups, bias=bias,
                         unbatched=unbatched, output_size=output_size, dt=dt, grid=grid))


# the nn.ConvTranspose2d docs' examples (on a smaller batch and image): square
# and non-square kernels and strides, and output_size recovering a strided
# conv's input size (the docs' downsample/upsample pair)
add(4, 16, 12, 20, 33, 3, stride=2, dtypes=("f32",))
add(4, 16, 12, 20, 33, (3, 5), stride=(2, 1), padding=(4, 2), dtypes=("f32",))
add(1, 16, 6, 6, 16, 3, stride=2, padding=1, output_size=[1, 16, 12, 12])
# the usual decoder layers: k4 s2 p1 (DCGAN), k3 s2 p1 op1, k2 s2 (exact x2)
add(2, 8, 5, 6, 4, 4, stride=2, padding=1)
add(2, 6, 5, 4, 5, 3, stride=2, padding=1, output_padding=1)
add(2, 3, 4, 5, 4, 2, stride=2)
add(2, 32, 7, 7, 16, 4, stride=2, padding=1, dtypes=("f32",))
# asymmetric strides, paddings and output paddings
add(2, 3, 5, 4, 4, 3, stride=(2, 3), padding=(0, 1), output_padding=(1, 2))
add(2, 3, 4, 6, 2, (2, 4), stride=(3, 1), padding=(1, 2), dilation=(1, 2))
# output_padding below the dilation but not the stride: the last rows are
# past every kernel window (bias only); none reached at all (k 1)
add(2, 3, 5, 6, 4, 3, dilation=2, output_padding=1)
add(2, 3, 4, 5, 4, 3, stride=2, dilation=3, output_padding=2)
add(2, 3, 5, 4, 2, (3, 2), dilation=(3, 2), padding=(1, 0), output_padding=(2, 1))
add(2, 2, 3, 4, 3, 1, dilation=10, padding=5, output_padding=9)
# groups; depthwise-like (groups = in = out), groups = out (the adjoint conv is
# depthwise with a multiplier), groups = in with an output multiplier
add(2, 4, 5, 6, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
add(2, 4, 6, 7, 4, 3, padding=1, groups=4)
add(2, 4, 6, 7, 4, 3, stride=2, padding=1, output_padding=1, groups=4)
add(2, 8, 5, 6, 4, 3, padding=1, groups=4)
add(2, 3, 5, 6, 6, 3, stride=2, groups=3)
add(1, 4, 5, 37, 4, 3, padding=1, groups=4, bias=False)
# 1x1: stride 1 (pointwise), strided (a sparse output), with output padding
add(2, 5, 6, 7, 3, 1)
add(2, 4, 3, 4, 3, 1, stride=2, output_padding=1)
add(2, 4, 3, 4, 3, 1, stride=(1, 3), padding=(0, 1), output_padding=(0, 2), groups=1)
# padding at and beyond the dilated kernel
add(2, 3, 5, 5, 4, 3, stride=3, padding=2)
add(2, 3, 5, 5, 4, 3, stride=4, padding=4, output_padding=3)
# 3x3 stride 1 with 16+ channels (Winograd), 48+ output channels per group
# (implicit GEMM), one pixel in
add(2, 16, 7, 9, 20, 3, padding=1)
add(1, 16, 5, 6, 16, 3, unbatched=True)
add(2, 8, 6, 7, 48, 3, padding=1)
add(3, 2, 1, 1, 3, 3, stride=2)
# no bias, unbatched (output_size with and without the channel dim), a batch
# that does not divide into the weight gradient's chunks
add(2, 3, 5, 6, 4, 3, padding=1, bias=False)
add(1, 3, 5, 6, 4, 3, stride=2, padding=1, unbatched=True)
add(1, 3, 5, 6, 4, 3, stride=2, padding=1, unbatched=True, output_size=[4, 10, 12])
add(37, 2, 4, 4, 3, 3, stride=2, padding=1)
# output_size at the top of its range (output_padding = stride - 1), and
# replacing a module's output_padding (stride 1, dilation 3: 2 -> 0)
add(2, 3, 4, 5, 2, 3, stride=3, padding=1, output_size=[12, 15])
add(2, 3, 4, 5, 2, 3, dilation=3, output_padding=2, output_size=[10, 11])
# everything at once
add(3, 4, 5, 7, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(2, 1), groups=2, bias=False)

# The geometry grid (float64; the C test also runs it in float32 with every
# algorithm forced): kernel, stride, padding, dilation and output_padding per
# dim, the columns' set rotated against the rows' so that both vary, groups
# 1, 2 and depthwise-like.
grid = []
for k in (1, 2, 3):
    for s in (1, 2, 3):
        for d in (1, 2, 3):
            for op in range(max(s, d)):
                for p in (0, 1, 3):
                    grid.append((k, s, p, op, d))
for i, (k, s, p, op, d) in enumerate(grid):
    kw, sw, pw, opw, dw = grid[(7 * i + 3) % len(grid)]
    H, W = 3 + i % 2, 2 + i % 3
    if (H - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1 or (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1 < 1:
        continue
    Cin, Cout, g = [(2, 3, 1), (2, 4, 2), (2, 2, 2), (4, 2, 2)][i % 4]
    add(2, Cin, H, W, Cout, (k, kw), stride=(s, sw), padding=(p, pw), output_padding=(op, opw), dilation=(d, dw),
        groups=g, bias=i % 5 != 0, dtypes=("f64",), grid=True)

assert len(cfgs) >= 100


def run(c):
    dtype = torch.float32 if c["dt"] == "f32" else torch.float64
    N, Cin, H, W, Cout = c["N"], c["Cin"], c["H"], c["W"], c["Cout"]
    shape = (Cin, H, W) if c["unbatched"] else (N, Cin, H, W)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    m = torch.nn.ConvTranspose2d(Cin, Cout, c["k"], stride=c["stride"], padding=c["padding"],
                                 output_padding=c["output_padding"], groups=c["groups"], bias=c["bias"],
                                 dilation=c["dilation"], dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(torch.randn(m.weight.shape, dtype=dtype))
        if c["bias"]:
            m.bias.copy_(torch.randn(m.bias.shape, dtype=dtype))
    os = c["output_size"]
    y = m(x, output_size=os) if os else m(x)
    gy = torch.randn(y.shape, dtype=dtype)
    y.backward(gy)
    os4 = (list(os) if os else []) + [0] * (4 - len(os or []))
    params = [0 if c["dt"] == "f32" else 1, int(c["unbatched"]), N, Cin, H, W, Cout, *c["k"], *c["stride"],
              *c["padding"], *c["output_padding"], *c["dilation"], c["groups"], int(c["bias"]), int(c["grid"]),
              len(os or []), *os4]
    out = dict(params=np.array(params, dtype=np.int64), x=x.detach(), w=m.weight.detach(), gy=gy, y=y.detach(),
               gx=x.grad, gw=m.weight.grad)
    if c["bias"]:
        out.update(b=m.bias.detach(), gb=m.bias.grad)
    return out


def module_roundtrip(f, stem):
    """A ConvTranspose2d with non-default values: its state_dict as PyTorch
    users dump it (one dataset per key) in STEM_module.h5, and an input, its
    output and the output for an output_size in module/."""
    m = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=(1, 0), output_padding=(1, 0), groups=2,
                                 dilation=(1, 2))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape) * 0.5)
    x = torch.randn(2, 4, 5, 6)
    with torch.no_grad():
        y = m(x)
        y_os = m(x, output_size=[10, 13])
    for k, v in dict(x=x, y=y, y_os=y_os).items():
        f.create_dataset("module/" + k, data=v.numpy())
    with h5py.File(stem + "_module.h5", "w") as g:
        for k, v in m.state_dict().items():
            g.create_dataset(k, data=v.cpu().numpy())


def main():
    torch.manual_seed(0)
    with h5py.File(sys.argv[1], "w") as f:
        f.create_dataset("count", data=np.array([len(cfgs)], dtype=np.int64))
        for i, c in enumerate(cfgs):
            for k, v in run(c).items():
                f.create_dataset(f"cfg{i:03d}/{k}", data=v if isinstance(v, np.ndarray) else v.numpy())
        module_roundtrip(f, sys.argv[1][:-3] if sys.argv[1].endswith(".h5") else sys.argv[1])


if __name__ == "__main__":
    main()
