#!/usr/bin/env python3
"""PyTorch twin of tests/test_module_dtype.c: a float32 model converted with
module.double(), run in float64. The model is nn_reference.py's small net
(every layer type: conv with reflect padding, BatchNorm2d, LeakyReLU, max and
average pooling, grouped conv, Linear, Sigmoid, Dropout, ReLU, LogSoftmax).

  state/KEY            the float32 state_dict before conversion (the C test loads it)
  x, target            a float64 input [3, 3, 8, 8] and int64 targets
  y_train              net(x) in training mode (the Dropout child in eval mode)
  running_mean/var, num_batches_tracked   BatchNorm's buffers after that forward
  y_eval               net(x) in eval mode
  loss, grad/KEY       nll_loss(net(x), target) in training mode (BatchNorm's
                       buffers updated a second time) and its parameter gradients
  adam/KEY             the parameters after 3 Adam steps (lr 0.01) on that loss,
                       from a fresh copy of the converted model, the optimizer
                       created after the conversion

Usage: module_dtype_reference.py OUT.h5
"""
import copy
import os
import sys

import h5py
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nn_reference import small_net  # noqa: E402


def main():
    torch.manual_seed(1)
    net = small_net()
    with h5py.File(sys.argv[1], "w") as f:
        for k, v in net.state_dict().items():
            f[f"state/{k}"] = v.numpy()
        net.double()
        fresh = copy.deepcopy(net)
        x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
        target = torch.tensor([2, 0, 4])
        f["x"], f["target"] = x.numpy(), target.numpy()
        net.train()
        net[10].eval()
        with torch.no_grad():
            f["y_train"] = net(x).numpy()
        f["running_mean"] = net[1].running_mean.numpy()
        f["running_var"] = net[1].running_var.numpy()
        f["num_batches_tracked"] = net[1].num_batches_tracked.numpy()
        net.eval()
        with torch.no_grad():
            f["y_eval"] = net(x).numpy()
        net.train()
        net[10].eval()
        loss = F.nll_loss(net(x), target)
        loss.backward()
        f["loss"] = loss.detach().numpy()
        for k, p in net.named_parameters():
            f[f"grad/{k}"] = p.grad.numpy()

        fresh.train()
        fresh[10].eval()
        opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            F.nll_loss(fresh(x), target).backward()
            opt.step()
        for k, p in fresh.named_parameters():
            f[f"adam/{k}"] = p.detach().numpy()


if __name__ == "__main__":
    main()
