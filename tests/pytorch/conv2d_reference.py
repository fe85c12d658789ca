"""PyTorch twin of tests/test_conv2d.c: runs nn.Conv2d (and F.pad before it
for the asymmetric-padding cases) on seeded random data and writes, for every
configuration cfgNNN, the inputs, PyTorch's output and its three gradients.

Usage: conv2d_reference.py OUT.h5   (run by CTest as the fixture ref_conv2d)

Layout of cfgNNN/params (int64), read by the C test:
  [dtype(0 f32, 1 f64), unbatched, N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw,
   groups, bias, padding_kind(0 explicit, 1 valid, 2 same), padding_mode(0 zeros,
   1 reflect, 2 replicate, 3 circular), prepad(0/1), pl, pr, pt, pb, prepad_mode]
Datasets: x, w, [b], gy, y, gx, gw, [gb] in the config's dtype.
"""
import sys
import warnings

import torch
import torch.nn.functional as F

import reference_util as ru

warnings.filterwarnings("ignore")  # 'same' with even kernels warns once
MODES = ["zeros", "reflect", "replicate", "circular"]
PAD_MODES = ["constant", "reflect", "replicate", "circular"]
cfgs = []


def add(N, C, H, W, O, k, stride=1, padding=0, dilation=1, groups=1, bias=True, mode="zeros",
        unbatched=False, prepad=None, prepad_mode="constant", dtypes=("f32", "f64")):
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)
    for dt in dtypes:
        cfgs.append(dict(N=N, C=C, H=H, W=W, O=O, k=pair(k), stride=pair(stride), padding=padding,
                         dilation=pair(dilation), groups=groups, bias=bias, mode=mode, unbatched=unbatched,
                         prepad=prepad, prepad_mode=prepad_mode, dt=dt))


# the three examples of the nn.Conv2d docs / tutorial, on a 20x16x50x100 input
add(20, 16, 50, 100, 33, 3, stride=2, dtypes=("f32",))
add(20, 16, 50, 100, 33, (3, 5), stride=(2, 1), padding=(4, 2), dtypes=("f32",))
add(20, 16, 50, 100, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1), dtypes=("f32",))
# 1x1
add(2, 4, 5, 6, 3, 1)
add(2, 4, 7, 6, 3, 1, stride=2)
add(2, 4, 5, 6, 3, 1, padding=1)
add(2, 4, 5, 6, 6, 1, groups=2)
# even kernels
add(2, 3, 6, 7, 4, 2)
add(2, 3, 6, 7, 4, (4, 2), padding=1)
# kernel > stride, stride > kernel
add(2, 3, 9, 8, 4, 5, stride=2, padding=2)
add(2, 3, 9, 11, 4, 2, stride=3)
add(2, 3, 9, 11, 4, 2, stride=(3, 4))
# dilation with padding
add(2, 3, 8, 9, 4, 3, dilation=2, padding=2)
add(2, 3, 8, 9, 4, 3, dilation=(2, 3), padding=(1, 0))
# padding modes
add(2, 3, 6, 7, 4, 3, padding=1, mode="reflect")
add(2, 3, 6, 7, 4, 3, padding=(2, 1), mode="replicate")
add(2, 3, 6, 7, 4, 3, padding=(1, 2), mode="circular")
add(2, 3, 7, 8, 4, 3, stride=2, padding=1, mode="replicate")
add(2, 3, 6, 7, 4, 4, padding="same", mode="reflect")
add(2, 3, 6, 7, 4, (2, 3), dilation=(1, 2), padding="same", mode="circular")
add(2, 3, 6, 7, 4, (3, 2), padding="same", mode="replicate")
# 'same' (zeros) with odd and even kernels and dilation, and 'valid'
add(2, 3, 6, 7, 4, 3, padding="same")
add(2, 3, 6, 7, 4, 4, padding="same")
add(2, 3, 7, 9, 4, (2, 5), dilation=(3, 2), padding="same")
add(2, 3, 6, 7, 4, 2, dilation=2, padding="same")
add(2, 3, 6, 7, 4, 3, padding="valid")
add(2, 3, 7, 8, 4, (2, 3), stride=2, padding="valid")
# groups, depthwise with multiplier
add(2, 4, 6, 7, 6, 3, padding=1, groups=2)
add(2, 4, 9, 8, 6, 3, stride=2, dilation=2, padding=1, groups=2)
add(2, 3, 6, 7, 3, 3, padding=1, groups=3)
add(2, 3, 6, 7, 6, 3, padding=1, groups=3)
add(2, 3, 6, 7, 9, 3, padding=1, groups=3, mode="reflect")
add(2, 4, 9, 8, 8, 3, stride=(2, 3), dilation=(2, 1), padding=(1, 2), groups=4, bias=False)
add(2, 3, 6, 7, 6, 4, padding="same", groups=3)
# batch 1, unbatched, odd sizes, kernel filling the padded input
add(1, 3, 6, 7, 4, 3, padding=1)
add(1, 3, 5, 6, 4, 3, padding=1, unbatched=True)
add(1, 3, 5, 6, 4, 3, padding=(1, 2), mode="reflect", unbatched=True)
add(3, 3, 7, 9, 4, (3, 2), stride=(2, 3))
add(2, 3, 3, 4, 5, (3, 4))
# no bias
add(2, 3, 6, 7, 4, 3, padding=1, bias=False)
add(2, 4, 6, 7, 6, 3, padding=1, groups=2, bias=False)
# F.pad (asymmetric, every mode, some cropping) then conv
add(2, 3, 6, 7, 4, 3, prepad=(1, 2, 0, 3), prepad_mode="constant")
add(2, 3, 6, 7, 4, 3, prepad=(2, 1, 1, 0), prepad_mode="reflect")
add(2, 3, 6, 7, 4, 3, prepad=(0, 3, 2, 1), prepad_mode="replicate")
add(2, 3, 6, 7, 4, 3, prepad=(1, 2, 2, 1), prepad_mode="circular")
add(2, 3, 6, 7, 4, 3, prepad=(-1, 2, 1, -1), prepad_mode="constant")
add(2, 3, 6, 7, 4, 3, prepad=(-1, 2, 1, 0), prepad_mode="reflect")
add(2, 3, 6, 7, 4, 3, prepad=(2, -1, 0, 1), prepad_mode="circular")
add(1, 3, 6, 7, 4, 3, prepad=(3, 0, 1, 2), prepad_mode="replicate", unbatched=True)
# everything at once; a batch that does not divide into the 16 gradient chunks
add(3, 4, 9, 10, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False)
add(37, 2, 5, 5, 3, 3, padding=1)
add(4, 1, 28, 28, 8, 3)
# 48+ input channels per group, stride 1: float32's input gradient is a conv
# of dy by the flipped weight (conv2d_implicit.c); with too much padding, or
# a column stride, it is not, and the forward keeps its column buffer
add(2, 48, 6, 7, 5, 3, padding=1)
add(2, 96, 6, 5, 6, 4, padding="same", dilation=(1, 2), groups=2)
add(2, 48, 5, 6, 4, 3, padding=(3, 0))
add(3, 48, 7, 9, 4, (3, 2), stride=(1, 2))
# column stride 2 (float32 copies/adds these rows with AVX-512 permutes):
# rows of 31 outputs (one 16-block, then a 15-element tail), and a 1x1 conv
# whose last tap ends exactly at the end of each row
add(2, 3, 7, 61, 5, 3, stride=2, padding=1)
add(2, 3, 5, 31, 4, 1, stride=2, dtypes=("f32",))
add(2, 2, 4, 67, 3, 3, stride=(1, 2), padding=(0, 2), dilation=(1, 2), dtypes=("f32",))
# depthwise, fast form (padded planes, 16 outputs of a row at a time): rows
# of whole blocks and a tail, column stride 2 and 3; plain form: padding wider
# than the kernel, column stride 5
add(2, 4, 5, 37, 8, 3, padding=1, groups=4)
add(2, 4, 6, 40, 4, 3, stride=2, padding=1, groups=4)
add(1, 3, 7, 50, 6, (2, 3), stride=(1, 3), dilation=(2, 1), padding=(1, 0), groups=3)
add(2, 3, 6, 7, 6, 3, padding=3, groups=3)
add(2, 4, 9, 23, 4, 2, stride=(1, 5), groups=4)
# 3x3, stride 1, 16+ channels: float32 runs Winograd F(2x2, 3x3) forward, and
# its input gradient the same way (conv2d_winograd.c): MNIST's second layer;
# odd output sizes (partial tiles) and channel counts that are not whole
# micro-kernel tiles; asymmetric and large padding (the input gradient then
# falls back); rows of more tiles than a panel; more channels than one K block
add(3, 32, 26, 26, 64, 3)
add(2, 16, 7, 9, 20, 3, padding=1)
add(2, 17, 8, 5, 19, 3, padding=(2, 0), mode="reflect", bias=False)
add(1, 16, 5, 6, 16, 3, padding="same", unbatched=True)
add(2, 16, 5, 5, 16, 3, padding=3)
add(1, 16, 4, 131, 16, 3, padding=(0, 1))
add(2, 300, 5, 6, 16, 3, padding=1, dtypes=("f32",))
add(2, 16, 6, 7, 300, 3, padding=1, dtypes=("f32",))

assert len(cfgs) >= 40


def run(c):
    dtype = torch.float32 if c["dt"] == "f32" else torch.float64
    N, C, H, W, O = c["N"], c["C"], c["H"], c["W"], c["O"]
    kh, kw = c["k"]
    shape = (C, H, W) if c["unbatched"] else (N, C, H, W)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    m = torch.nn.Conv2d(C, O, c["k"], stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                        groups=c["groups"], bias=c["bias"], padding_mode=c["mode"], dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(torch.randn(m.weight.shape, dtype=dtype))
        if c["bias"]:
            m.bias.copy_(torch.randn(m.bias.shape, dtype=dtype))
    xin = F.pad(x, c["prepad"], mode=c["prepad_mode"]) if c["prepad"] else x
    y = m(xin)
    gy = torch.randn(y.shape, dtype=dtype)
    y.backward(gy)
    p = c["padding"]
    kind = 2 if p == "same" else 1 if p == "valid" else 0
    ph, pw = (0, 0) if isinstance(p, str) else (p if isinstance(p, tuple) else (p, p))
    pre = c["prepad"] or (0, 0, 0, 0)
    params = [0 if c["dt"] == "f32" else 1, int(c["unbatched"]), N, C, H, W, O, kh, kw, *c["stride"], ph, pw,
              *c["dilation"], c["groups"], int(c["bias"]), kind, MODES.index(c["mode"]), int(c["prepad"] is not None),
              *pre, PAD_MODES.index(c["prepad_mode"])]
    return ru.conv_datasets(params, x, m.weight, m.bias if c["bias"] else None, gy, y)


def main():
    ru.write_configs(sys.argv[1], cfgs, run)


if __name__ == "__main__":
    main()
