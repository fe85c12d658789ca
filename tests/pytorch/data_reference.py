"""PyTorch twin of tests/test_data.c: what torch.utils.data and torchvision's
tensor transforms give, for nabla's loader and transforms to match.

torchvision is not installed here, so its tensor code paths are spelled out
with the torch calls they make (torchvision 0.14, the release paired with
torch 1.13): F.normalize, F.pad (constant, edge = replicate, reflect,
symmetric by index), RandomCrop's two paddings, and F.affine on a tensor
(_get_inverse_affine_matrix, _gen_affine_grid, grid_sample with
align_corners=False and zeros padding, the fill mask of _apply_grid_transform).

Also the documented order of nabla's shuffle (nabla/data.h), recomputed here
from its description: xoshiro256** seeded by splitmix64, Fisher-Yates from the
last position down with j drawn by rejection (nb_rng_below).
Usage: data_reference.py OUT.h5
"""
import math
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

out = sys.argv[1]
f = h5py.File(out, "w")

# ---- DistributedSampler(shuffle=False): the positions each rank takes of an
# epoch's order (padded by wrapping, or cut with drop_last); the C test
# applies them to nabla's permutation (PyTorch's own permutation comes from
# its generator, which nabla does not reproduce).
for n, world in ((10, 3), (10, 2), (3, 4), (2, 5), (7, 7), (11, 4)):
    for drop in (False, True):
        for rank in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop)
            f[f"dist/n{n}_w{world}_d{int(drop)}_r{rank}"] = np.array(list(iter(s)), dtype=np.int64).reshape(-1)

# ---- len(DataLoader) for batch sizes and drop_last
lens = []
for n in (1, 5, 10, 64, 65):
    for b in (1, 3, 10, 64, 100):
        for drop in (False, True):
            lens.append((n, b, int(drop), len(DataLoader(range(n), batch_size=b, drop_last=drop))))
f["loader_len"] = np.array(lens, dtype=np.int64)

# ---- nabla's shuffle as documented
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


class Xoshiro:
    def __init__(self, seed):
        x, self.s = seed & M64, []
        for _ in range(4):
            x, z = splitmix64(x)
            self.s.append(z)

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M64 - (M64 % n)  # UINT64_MAX - UINT64_MAX % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def order(n, seed, epoch):
    rng, p = Xoshiro(seed + epoch), list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


for n, seed, epoch in ((10, 42, 0), (10, 42, 1), (10, 42, 2), (1000, 7, 3), (60000, 1 ^ 0x5EED0002, 0)):
    f[f"order/n{n}_s{seed}_e{epoch}"] = np.array(order(n, seed, epoch), dtype=np.int64)

# ---- Normalize: F.normalize(tensor, mean, std): as_tensor in the image's dtype, sub_, div_
g = torch.Generator().manual_seed(0)
mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
for dt, name in ((torch.float32, "float32"), (torch.float64, "float64")):
    img = torch.rand(3, 5, 7, generator=g, dtype=torch.float64).to(dt)
    m = torch.as_tensor(mean, dtype=dt).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=dt).view(-1, 1, 1)
    f[f"normalize/{name}/in"] = img.numpy()
    f[f"normalize/{name}/out"] = img.clone().sub_(m).div_(s).numpy()


# ---- F.pad on a tensor image (torchvision): padding [left, top, right, bottom]
def tv_pad(img, pad, fill, mode):
    l, t, r, b = pad
    if mode == "constant":
        return F.pad(img, [l, r, t, b], value=fill)
    if mode == "symmetric":  # torchvision's _pad_symmetric: by index
        xi = list(range(l - 1, -1, -1)) + list(range(img.shape[-1])) + [-(i + 1) for i in range(r)]
        yi = list(range(t - 1, -1, -1)) + list(range(img.shape[-2])) + [-(i + 1) for i in range(b)]
        return img[:, torch.tensor(yi)[:, None], torch.tensor(xi)[None, :]]
    torch_mode = {"edge": "replicate", "reflect": "reflect"}[mode]
    return F.pad(img.unsqueeze(0), [l, r, t, b], mode=torch_mode).squeeze(0)


crop_img = torch.rand(2, 5, 6, generator=g)
f["crop/in"] = crop_img.numpy()
for mode in ("constant", "edge", "reflect", "symmetric"):
    f[f"crop/padded_{mode}"] = tv_pad(crop_img, (1, 2, 3, 2), 0.5, mode).numpy()
# RandomCrop((10, 9), padding=1, pad_if_needed=True, padding_mode="reflect") on a (1, 4, 5) image:
# pad by 1, then torchvision pads left/right by the missing width and top/bottom by the missing height
small = torch.rand(1, 4, 5, generator=g)
p1 = tv_pad(small, (1, 1, 1, 1), 0, "reflect")  # 6 x 7
p2 = tv_pad(p1, (9 - 7, 0, 9 - 7, 0), 0, "reflect")  # width 7 -> 11
p3 = tv_pad(p2, (0, 10 - 6, 0, 10 - 6), 0, "reflect")  # height 6 -> 14
f["crop/small"] = small.numpy()
f["crop/pad_if_needed_reflect"] = p3.numpy()


# ---- F.affine on a tensor image (torchvision 0.14)
def inverse_affine_matrix(center, angle, translate, scale, shear):
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    matrix = [x / scale for x in matrix]
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty)
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def gen_affine_grid(theta, w, h, ow, oh):
    d = 0.5
    base_grid = torch.empty(1, oh, ow, 3, dtype=theta.dtype)
    x_grid = torch.linspace(-ow * 0.5 + d, ow * 0.5 + d - 1, steps=ow)
    base_grid[..., 0].copy_(x_grid)
    y_grid = torch.linspace(-oh * 0.5 + d, oh * 0.5 + d - 1, steps=oh).unsqueeze_(-1)
    base_grid[..., 1].copy_(y_grid)
    base_grid[..., 2].fill_(1)
    rescaled_theta = theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], dtype=theta.dtype)
    output_grid = base_grid.view(1, oh * ow, 3).bmm(rescaled_theta)
    return output_grid.view(1, oh, ow, 2)


def tv_affine(img, angle, translate, scale, shear, mode, fill):
    """torchvision.transforms.functional.affine(img, ...) for a (C, H, W) float tensor, center None."""
    matrix = inverse_affine_matrix([0.0, 0.0], angle, [float(t) for t in translate], scale, shear)
    theta = torch.tensor(matrix, dtype=img.dtype).reshape(1, 2, 3)
    h, w = img.shape[-2:]
    grid = gen_affine_grid(theta, w=w, h=h, ow=w, oh=h)
    x = img.unsqueeze(0)
    x = torch.cat((x, torch.ones((1, 1, h, w), dtype=x.dtype)), dim=1)  # the fill mask channel
    x = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    mask, x = x[:, -1:], x[:, :-1]
    mask = mask.expand_as(x)
    fill_img = torch.tensor([float(fill)] * x.shape[1], dtype=x.dtype).view(1, -1, 1, 1).expand_as(x)
    if mode == "nearest":
        mask = mask < 0.5
        x[mask] = fill_img[mask]
    else:
        x = x * mask + (1.0 - mask) * fill_img
    # the sampled source coordinates, to keep nearest away from rounding ties
    src = (grid[0].double() + 1) * torch.tensor([w, h], dtype=torch.float64) / 2 - 0.5
    return x.squeeze(0), src


affine_img = torch.rand(3, 13, 17, generator=g)
f["affine/in"] = affine_img.numpy()
f["affine/in64"] = affine_img.double().numpy()
cases = [  # angle, tx, ty, scale, shear_x, shear_y, mode, fill
    (0.0, 0, 0, 1.0, 0.0, 0.0, "nearest", 0.0),
    (0.0, 0, 0, 1.0, 0.0, 0.0, "bilinear", 0.0),
    (0.0, 3, -2, 1.0, 0.0, 0.0, "nearest", 0.0),
    (0.0, -4, 5, 1.0, 0.0, 0.0, "bilinear", 0.25),
    (17.3, 0, 0, 1.0, 0.0, 0.0, "nearest", 0.0),
    (-33.1, 2, 1, 1.0, 0.0, 0.0, "bilinear", 0.0),
    (12.0, -1, 3, 1.2, 0.0, 0.0, "bilinear", 0.5),
    (-7.9, 1, -1, 0.85, 11.0, -6.5, "nearest", 0.75),
    (25.0, 0, 2, 1.1, -9.0, 4.0, "bilinear", 0.0),
    (90.0, 0, 0, 1.0, 0.0, 0.0, "nearest", 0.0),
]
f["affine/params"] = np.array([c[:6] + (1.0 if c[6] == "bilinear" else 0.0, c[7]) for c in cases], dtype=np.float64)
for i, (angle, tx, ty, scale, shx, shy, mode, fill) in enumerate(cases):
    y, src = tv_affine(affine_img, angle, (tx, ty), scale, (shx, shy), mode, fill)
    if mode == "nearest":  # ties would make nearest depend on the last bit of the grid
        frac = (src - src.floor() - 0.5).abs()
        assert frac.min() > 1e-3, f"affine case {i}: a sample lies within {frac.min():.2g} of a rounding tie"
    f[f"affine/out{i}"] = y.numpy()
    y64, _ = tv_affine(affine_img.double(), angle, (tx, ty), scale, (shx, shy), mode, fill)
    f[f"affine/out64_{i}"] = y64.numpy()
f.close()
