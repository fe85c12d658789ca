"""PyTorch twin of tests/test_idx.c: MNIST normalisation of every byte value.

Writes the float32 values torchvision's MNIST pipeline, ToTensor() then
Normalize((0.1307,), (0.3081,)), gives each of the 256 pixel bytes. torchvision
is not installed here, so its two steps are spelled out with the same torch
calls it makes (ToTensor: `img.to(dtype=torch.float32).div(255)` for a byte
image; Normalize: `mean = torch.as_tensor(mean, dtype=tensor.dtype)`, same for
std, then `tensor.sub_(mean).div_(std)`).
Usage: idx_reference.py OUT.h5
"""
import sys

import h5py
import torch

out = sys.argv[1]
pixels = torch.arange(256, dtype=torch.int64).to(torch.uint8).view(1, 16, 16)  # a (C, H, W) byte image
img = pixels.to(dtype=torch.float32).div(255)
mean = torch.as_tensor((0.1307,), dtype=img.dtype).view(-1, 1, 1)
std = torch.as_tensor((0.3081,), dtype=img.dtype).view(-1, 1, 1)
img = img.sub_(mean).div_(std)
with h5py.File(out, "w") as f:
    f["mnist_normalized"] = img.reshape(256).numpy()

# DistributedSampler(shuffle=False, drop_last=False): the indices each rank
# takes of an epoch's order, padded by wrapping around. With shuffle=True it
# takes the same positions of a permutation (PyTorch draws it with its own
# generator, so the C test applies these positions to nabla's permutation).
from torch.utils.data.distributed import DistributedSampler  # noqa: E402

with h5py.File(out, "a") as f:
    for n, world in ((10, 3), (10, 2), (3, 4), (2, 5)):
        for rank in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)
            f[f"dist_sampler_n{n}_w{world}_r{rank}"] = torch.tensor(list(iter(s)), dtype=torch.int64).numpy()
