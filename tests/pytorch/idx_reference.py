"""PyTorch twin of tests/test_idx.c: IDX files and what PyTorch makes of them.

- to_tensor / mnist_normalized: the float32 values torchvision's MNIST pipeline,
  ToTensor() then Normalize((0.1307,), (0.3081,)), gives each of the 256 pixel
  bytes. torchvision is not installed here, so its two steps are spelled out
  with the same torch calls it makes (ToTensor: `img.to(dtype=torch.float32).div(255)`
  for a byte image; Normalize: `mean = torch.as_tensor(mean, dtype=tensor.dtype)`,
  same for std, then `tensor.sub_(mean).div_(std)`).
- idx_files/<type>.idx: one IDX file per data type (written here, big-endian,
  as torchvision's read_sn3_pascalvincent_tensor reads them) and, for each,
  the values torch gives with .to(float32 / float64 / int64).
Usage: idx_reference.py OUT.h5 (the IDX files go to OUT.h5's folder, idx_files/).
"""
import os
import struct
import sys

import h5py
import numpy as np
import torch

out = sys.argv[1]
pixels = torch.arange(256, dtype=torch.int64).to(torch.uint8).view(1, 16, 16)  # a (C, H, W) byte image
img = pixels.to(dtype=torch.float32).div(255)
to_tensor = img.clone()
mean = torch.as_tensor((0.1307,), dtype=img.dtype).view(-1, 1, 1)
std = torch.as_tensor((0.3081,), dtype=img.dtype).view(-1, 1, 1)
img = img.sub_(mean).div_(std)

# IDX type code -> (numpy big-endian dtype, torch dtype, values, shape)
cases = {
    "uint8": (0x08, ">u1", torch.uint8, [0, 1, 127, 128, 254, 255], (2, 3)),
    "int8": (0x09, ">i1", torch.int8, [-128, -1, 0, 1, 127, 5], (3, 2)),
    "int16": (0x0B, ">i2", torch.int16, [-32768, -1, 0, 1, 32767, 1234, -4321, 7], (2, 2, 2)),
    "int32": (0x0C, ">i4", torch.int32, [-2147483648, -1, 0, 1, 2147483647, 16777217, -16777219], (7,)),
    "float32": (0x0D, ">f4", torch.float32, [0.1, -2.5, 3.4e38, -1e-45, 0.0, -0.0, float("inf"), 1.0 / 3], (2, 4)),
    "float64": (0x0E, ">f8", torch.float64, [0.1, -2.5, 1e300, 5e-324, -0.0, 1.0 / 3, 2.0**60 + 1, -7.0], (2, 1, 4)),
}
folder = os.path.join(os.path.dirname(os.path.abspath(out)), "idx_files")
os.makedirs(folder, exist_ok=True)
with h5py.File(out, "w") as f:
    f["to_tensor"] = to_tensor.reshape(256).numpy()
    f["mnist_normalized"] = img.reshape(256).numpy()
    for name, (code, npt, tt, values, shape) in cases.items():
        data = np.array(values, dtype=npt).reshape(shape)
        with open(os.path.join(folder, name + ".idx"), "wb") as g:
            g.write(bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + data.tobytes())
        t = torch.tensor(values, dtype=tt).reshape(shape)
        f[f"{name}/float32"] = t.to(torch.float32).numpy()
        f[f"{name}/float64"] = t.to(torch.float64).numpy()
        if not t.is_floating_point():
            f[f"{name}/int64"] = t.to(torch.int64).numpy()
