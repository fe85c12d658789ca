#!/usr/bin/env python3
"""PyTorch twin of tests/test_nn.c: the state_dict keys, their order, shapes
and dtypes of the nets the C test builds, and PyTorch's forward outputs for
given weights.

Usage: nn_reference.py OUT.h5

For each net NAME the file holds
  NAME/keys        state_dict() keys in PyTorch's order (variable-length strings)
  NAME/param_keys  named_parameters() names in order (strings)
  NAME/shapes      int64 [len(keys), 10]: per key ndim, 1 if int64 else 0, then
                   the dims padded with 0 to 8
Nets whose outputs are compared (mnist, small) also hold
  NAME/state/KEY   every state tensor (float32, int64 for num_batches_tracked)
  NAME/x, NAME/y_eval, ... inputs and outputs (float32), described below;
  small/grad/KEY   d nll_loss / d parameter KEY.
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# The network of PyTorch's examples/mnist/main.py, as tools/ defines it for users.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from mnist_nets import Net as MnistNet  # noqa: E402


def mnist_sequential():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10), nn.LogSoftmax(dim=1))


class BnNet(nn.Module):
    """Own parameter and buffer registered between children, a nested
    Sequential, and BatchNorm2d in its three flavours: the order rule is
    own parameters, own buffers, then children recursively."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.scale = nn.Parameter(torch.ones(1))
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8, affine=False), nn.ReLU(),
            nn.BatchNorm2d(8, track_running_stats=False))
        self.register_buffer("step", torch.zeros(2))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.block(self.bn1(self.conv1(x))).mean((2, 3))) * self.scale


class TiedNet(nn.Module):
    """A weight tied between two layers (dec.weight is enc.weight): state_dict
    names it twice, parameters() and named_parameters() once."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 4, bias=False)
        self.dec = nn.Linear(4, 4)
        self.dec.weight = self.enc.weight


def small_net():
    """Every layer type, small enough to store: compared numerically."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),  # 0
        nn.BatchNorm2d(4),                                      # 1
        nn.LeakyReLU(0.1),                                      # 2
        nn.MaxPool2d(2),                                        # 3
        nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2),      # 4
        nn.Tanh(),                                              # 5
        nn.AvgPool2d(2),                                        # 6
        nn.Flatten(),                                           # 7
        nn.Linear(24, 16),                                      # 8
        nn.Sigmoid(),                                           # 9
        nn.Dropout(0.5),                                        # 10
        nn.Linear(16, 5),                                       # 11
        nn.ReLU(),                                              # 12
        nn.LogSoftmax(dim=1))                                   # 13


def write_keys(f, name, net, with_state):
    sd = net.state_dict()
    keys = list(sd.keys())
    strs = h5py.string_dtype()
    f.create_dataset(f"{name}/keys", data=np.array(keys, dtype=object), dtype=strs)
    f.create_dataset(f"{name}/param_keys", data=np.array([k for k, _ in net.named_parameters()], dtype=object),
                     dtype=strs)
    shapes = np.zeros((len(keys), 10), dtype=np.int64)
    for i, k in enumerate(keys):
        v = sd[k]
        shapes[i, 0] = v.dim()
        shapes[i, 1] = 1 if v.dtype == torch.int64 else 0
        shapes[i, 2:2 + v.dim()] = list(v.shape)
    f.create_dataset(f"{name}/shapes", data=shapes)
    if with_state:
        for k, v in sd.items():
            f.create_dataset(f"{name}/state/{k}", data=v.numpy())


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    with h5py.File(out, "w") as f:
        # MNIST net: forward in eval mode on [2, 1, 28, 28].
        net = MnistNet()
        write_keys(f, "mnist", net, True)
        x = torch.randn(2, 1, 28, 28)
        net.eval()
        with torch.no_grad():
            f["mnist/x"] = x.numpy()
            f["mnist/y_eval"] = net(x).numpy()

        write_keys(f, "mnist_seq", mnist_sequential(), False)
        write_keys(f, "bn", BnNet(), False)
        tied = TiedNet()
        write_keys(f, "tied", tied, False)
        f["tied/num_parameters"] = len(list(tied.parameters()))
        f["tied/num_parameter_elements"] = sum(p.numel() for p in tied.parameters())

        # small: one training-mode forward with the dropout child (10) in eval
        # mode, then the running statistics, then an eval-mode forward.
        net = small_net()
        write_keys(f, "small", net, True)
        x = torch.randn(3, 3, 8, 8)
        f["small/x"] = x.numpy()
        net.train()
        net[10].eval()
        with torch.no_grad():
            f["small/y_train"] = net(x).numpy()
            f["small/running_mean"] = net[1].running_mean.numpy()
            f["small/running_var"] = net[1].running_var.numpy()
            f["small/num_batches_tracked"] = net[1].num_batches_tracked.numpy()
            net.eval()
            f["small/y_eval"] = net(x).numpy()
        # then, still in eval mode, the gradients of an NLL loss for every parameter
        target = torch.tensor([1, 4, 0])
        f["small/target"] = target.numpy()
        loss = F.nll_loss(net(x), target)
        loss.backward()
        f["small/loss"] = loss.detach().numpy()
        for k, p in net.named_parameters():
            f[f"small/grad/{k}"] = p.grad.numpy()


if __name__ == "__main__":
    main()
