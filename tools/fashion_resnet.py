"""The PyTorch twin of nabla's residual net on Fashion-MNIST
(`mnist_train --model resnet --fashion`): the same net, parameter names
(state_dict keys), data, augmentation and recipe, to compare accuracy and
time per epoch (bench/README.md).

Net: a conv-BN-ReLU stem, three stages of one basic residual block each
(16, 32, 64 channels; the second and third downsample with stride 2 and a
1x1 conv + BN on the shortcut), adaptive average pooling, a linear head.
Recipe: SGD (lr 0.1, momentum 0.9), weight decay 5e-4 on conv and linear
weights only (BN parameters and biases in a group without decay), batch 128,
one epoch of linear warm-up from lr 0.01, then cosine annealing to 0, stepped
every batch; random crop (28, zero padding 2) and horizontal flip.

Usage: /usr/bin/python3 tools/fashion_resnet.py [--epochs N] [--threads T]
       [--seed S] [--data DIR] [--width W] [--save FILE.pt]
       [--limit-train N] [--limit-test N]
Run with Debian's python3 (it has torch). Prints one line per epoch:
epoch, train loss, test loss, test accuracy, seconds.
"""
import argparse
import gzip
import os
import struct
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# SequentialLR itself calls step(0) at a milestone, which PyTorch 1.13 warns
# about as if the caller had: nothing to act on.
warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step\\(\\)`")

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's training-set pixel mean and std


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class FashionResNet(nn.Module):
    def __init__(self, width=16, classes=10):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(1, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = BasicBlock(w, w, 1)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, split):
    pre = "train" if split == "train" else "t10k"
    def find(name):
        for suffix in ("", ".gz"):
            p = os.path.join(data_dir, name + suffix)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(os.path.join(data_dir, name))
    x = read_idx(find(f"{pre}-images-idx3-ubyte"))
    y = read_idx(find(f"{pre}-labels-idx1-ubyte"))
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def augment(xb, gen, pad=2):
    """RandomCrop(28, padding=pad) then RandomHorizontalFlip, per image, on uint8."""
    n, h, w = xb.shape
    padded = F.pad(xb, (pad, pad, pad, pad))
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(xb)
    for i in range(n):
        a, b = int(offs[i, 0]), int(offs[i, 1])
        img = padded[i, a:a + h, b:b + w]
        out[i] = img.flip(-1) if flips[i] else img
    return out


def normalize(xb):
    return ((xb.float() / 255.0) - MEAN).div_(STD).unsqueeze(1)


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model, lr, momentum=0.9, weight_decay=5e-4):
    return torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=momentum)


def make_scheduler(opt, steps, epochs):
    """Linear warm-up from 0.1x over the first epoch (steps batches), then
    cosine to 0 over the other epochs (at least one step: T_max = 0 would
    divide by zero at the milestone of a one-epoch run), stepped per batch."""
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=steps)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps * (epochs - 1)))
    return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[steps])


def evaluate(model, x, y):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            out = model(normalize(x[i:i + 1000]))
            loss += F.cross_entropy(out, y[i:i + 1000], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + 1000]).sum().item()
    return loss / len(x), 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--save", default=None)
    ap.add_argument("--limit-train", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--limit-test", type=int, default=0, help="test on the first N images only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    if a.limit_train > 0:
        xtr, ytr = xtr[:a.limit_train], ytr[:a.limit_train]
    if a.limit_test > 0:
        xte, yte = xte[:a.limit_test], yte[:a.limit_test]
    model = FashionResNet(a.width)
    opt = make_optimizer(model, a.lr)
    steps = (len(xtr) + a.batch_size - 1) // a.batch_size
    sched = make_scheduler(opt, steps, a.epochs)
    print("epoch,train_loss,test_loss,test_accuracy,seconds", flush=True)
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for s in range(steps):
            idx = perm[s * a.batch_size:(s + 1) * a.batch_size]
            xb = normalize(augment(xtr[idx], gen))
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        secs = time.perf_counter() - t0
        tl, acc = evaluate(model, xte, yte)
        print(f"{epoch},{total / len(xtr):.4f},{tl:.4f},{acc:.2f},{secs:.1f}", flush=True)
    if a.save:
        torch.save(model.state_dict(), a.save)


if __name__ == "__main__":
    main()
