"""Writes PyTorch state_dicts to HDF5 the way PyTorch users do, for
tests/test_io.c. argv[1] is the output path; sibling files get suffixes.
  <out>              flat: one root dataset per state_dict key (the common h5py idiom)
  <out>.nested.h5    nested groups (conv1/weight)
  <out>.f64.h5       float64 datasets
  <out>.f16.h5       float16 datasets
  <out>.wrong.h5     fc1.weight with another shape, a missing key, an extra key
  <out>.rank.h5      conv1.weight flattened to rank 1
  <out>.gzip.h5      chunked, shuffled and gzip-compressed datasets (h5py's compression="gzip")
"""
import sys

import h5py
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(16, 3)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    net = Net()
    net.train()
    net.bn1(torch.randn(2, 4, 5, 5))  # non-trivial running statistics
    net.bn1(torch.randn(2, 4, 5, 5))
    sd = net.state_dict()
    with h5py.File(out, "w") as f:
        for k, v in sd.items():
            f.create_dataset(k, data=v.cpu().numpy())
    with h5py.File(out + ".nested.h5", "w") as f:
        for k, v in sd.items():
            f.create_dataset(k.replace(".", "/"), data=v.cpu().numpy())
    with h5py.File(out + ".f64.h5", "w") as f:
        for k, v in sd.items():
            f.create_dataset(k, data=v.double().numpy() if v.is_floating_point() else v.numpy())
    with h5py.File(out + ".f16.h5", "w") as f:
        for k, v in sd.items():
            f.create_dataset(k, data=v.half().numpy() if v.is_floating_point() else v.numpy())
    with h5py.File(out + ".wrong.h5", "w") as f:
        for k, v in sd.items():
            if k == "fc1.bias":
                continue
            if k == "fc1.weight":
                v = torch.zeros(3, 8)
            f.create_dataset(k, data=v.numpy())
        f.create_dataset("fc2.weight", data=torch.zeros(2, 2).numpy())
    with h5py.File(out + ".gzip.h5", "w") as f:
        for k, v in sd.items():
            if v.dim() == 0:
                f.create_dataset(k, data=v.numpy())  # scalars cannot be chunked
            else:
                f.create_dataset(k, data=v.numpy(), compression="gzip", shuffle=True, fletcher32=True)
    with h5py.File(out + ".rank.h5", "w") as f:
        for k, v in sd.items():
            f.create_dataset(k, data=(v.flatten() if k == "conv1.weight" else v).numpy())


if __name__ == "__main__":
    main()
