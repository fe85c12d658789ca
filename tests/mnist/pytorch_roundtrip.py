"""Weights cross between PyTorch and nabla through HDF5, proven on the whole
MNIST test set:
  1. PyTorch trains the example net for 300 steps, tools/export_hdf5.py
     exports it, nabla loads it (--load --eval-only) and predicts all 10,000
     test images: every prediction equal to PyTorch's, logits within 1e-4.
  2. nabla trains the net briefly and saves it; tools/import_hdf5.py loads it
     into PyTorch, whose predictions equal nabla's, logits within 1e-4."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from common import args, read_h5, read_idx, train

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from export_hdf5 import export  # noqa: E402
from import_hdf5 import load_into  # noqa: E402
from mnist_nets import Net  # noqa: E402

binary, data, work = args()
torch.manual_seed(0)
torch.set_num_threads(2)


def images(split):
    x = read_idx(f"{data}/{split}-images-idx3-ubyte").astype(np.float32)
    x = torch.from_numpy(x).unsqueeze(1).div(255)  # ToTensor
    return (x - 0.1307) / 0.3081                   # Normalize((0.1307,), (0.3081,))


def labels(split):
    return torch.from_numpy(read_idx(f"{data}/{split}-labels-idx1-ubyte").astype(np.int64))


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)])


def compare(ours, theirs, what):
    o, t = torch.from_numpy(ours["logits"]), theirs
    po = torch.from_numpy(ours["predictions"])
    diff = (o - t).abs().max().item()
    same = (po == t.argmax(1)).sum().item()
    print(f"{what}: {same}/{len(t)} predictions equal, max |logit diff| {diff:.2e}")
    assert same == len(t), f"{what}: {len(t) - same} predictions differ"
    assert diff <= 1e-4, f"{what}: logits differ by {diff}"


xtr, ytr, xte = images("train"), labels("train"), images("t10k")

# 1. PyTorch -> nabla
net = Net()
opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
net.train()
perm = torch.randperm(len(xtr))
for step in range(300):
    idx = perm[step * 64:(step + 1) * 64]
    opt.zero_grad()
    loss = F.nll_loss(net(xtr[idx]), ytr[idx])
    loss.backward()
    opt.step()
export(net.state_dict(), f"{work}/torch.h5")
train(binary, data, work, "--load", "torch.h5", "--eval-only", "--dump-logits", "nabla_on_torch.h5", name="eval")
compare(read_h5(f"{work}/nabla_on_torch.h5"), logits(net, xte), "PyTorch-trained net in nabla")

# 2. nabla -> PyTorch
train(binary, data, work, "--epochs", 1, "--limit-train", 3000, "--save", "nabla.h5", "--dump-logits",
      "nabla_logits.h5", name="nabla")
net2 = load_into(Net(), f"{work}/nabla.h5")
compare(read_h5(f"{work}/nabla_logits.h5"), logits(net2, xte), "nabla-trained net in PyTorch")
print("OK")
