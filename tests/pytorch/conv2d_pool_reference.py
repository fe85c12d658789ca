"""PyTorch twin of tests/test_conv2d_pool.c: F.relu(F.max_pool2d(F.conv2d(x,
w, b, padding=pad), pool)) (either step left out where the config says so) on
seeded random data; for every configuration cfgNNN, the inputs, PyTorch's
output and its three gradients.

Usage: conv2d_pool_reference.py OUT.h5   (run by CTest as the fixture ref_conv2d_pool)

Layout of cfgNNN/params (int64), read by the C test:
  [dtype(0 f32, 1 f64), unbatched, N, C, H, W, O, padding, bias,
   pool(0 none, 1 F.max_pool2d(., 2), 2 F.max_pool2d(., 3, stride=2)), relu,
   fused (1: nabla is expected to run it as one op, conv2d_pool_relu or conv2d_relu)]
Datasets: x, w, [b], gy, y, gx, gw, [gb] in the config's dtype.
"""
import sys

import torch
import torch.nn.functional as F

import reference_util as ru

cfgs = []


def add(N, C, H, W, O, padding=0, bias=True, pool=1, relu=True, unbatched=False, dt="f32", fused=False):
    cfgs.append(dict(N=N, C=C, H=H, W=W, O=O, padding=padding, bias=bias, pool=pool, relu=relu,
                     unbatched=unbatched, dt=dt, fused=fused))


# one op: float32 3x3 convs that run F(4x4, 3x3), the plain 2x2 pool; or relu alone
add(3, 32, 14, 14, 64, fused=True)                                # MNIST's conv2 on a smaller image
add(2, 16, 13, 11, 24, padding=1, fused=True)                     # odd output rows and columns
add(2, 16, 12, 12, 16, padding=2, bias=False, relu=False, fused=True)
add(1, 16, 10, 9, 16, unbatched=True, fused=True)                 # 3-d input
add(2, 64, 58, 58, 64, fused=True)                                # several bands of tile rows per item
add(2, 16, 4, 4, 16, fused=True)                                  # a 2x2 output: one window
# three ops
add(2, 3, 10, 10, 5, padding=1)                                   # too few channels for F(4x4, 3x3)
add(2, 16, 14, 14, 16, pool=2)                                    # another pool
add(2, 16, 14, 14, 16, pool=0, fused=True)                        # relu alone, after F(4x4, 3x3)
add(3, 1, 28, 28, 32, pool=0, fused=True)                         # relu in rowwise's stores (MNIST's conv1)
add(2, 3, 9, 10, 5, padding=2, bias=False, pool=0, fused=True)
add(2, 16, 14, 14, 16, pool=0, relu=False)                        # the conv alone
add(2, 4, 9, 9, 5, padding=1, dt="f64")
add(2, 16, 11, 12, 16, padding=1, dt="f64")


def run(c):
    dtype = torch.float32 if c["dt"] == "f32" else torch.float64
    N, C, H, W, O = c["N"], c["C"], c["H"], c["W"], c["O"]
    x = torch.randn((C, H, W) if c["unbatched"] else (N, C, H, W), dtype=dtype, requires_grad=True)
    w = torch.randn((O, C, 3, 3), dtype=dtype, requires_grad=True)
    b = torch.randn((O,), dtype=dtype, requires_grad=True) if c["bias"] else None
    y = F.conv2d(x, w, b, padding=c["padding"])
    if c["pool"] == 1:
        y = F.max_pool2d(y, 2)
    elif c["pool"] == 2:
        y = F.max_pool2d(y, 3, stride=2)
    if c["relu"]:
        y = F.relu(y)
    gy = torch.randn(y.shape, dtype=dtype)
    y.backward(gy)
    params = [0 if c["dt"] == "f32" else 1, int(c["unbatched"]), N, C, H, W, O, c["padding"], int(c["bias"]),
              c["pool"], int(c["relu"]), int(c["fused"])]
    return ru.conv_datasets(params, x, w, b, gy, y)


def main():
    ru.write_configs(sys.argv[1], cfgs, run)


if __name__ == "__main__":
    main()
