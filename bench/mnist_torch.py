"""PyTorch twin of nabla's mnist_train for bench/mnist_bench.sh: the same net
(tools/mnist_nets.py), Adadelta lr 1.0, batch 64, shuffled, test batch 1000,
data normalised as torchvision does ((x/255 - 0.1307) / 0.3081 in float32),
read from the IDX files with numpy. Times the training loop of one epoch (or
of the first LIMIT_TRAIN images) and prints two JSON lines: the PyTorch
runtime (torch_runtime.report: BLAS and allocator loaded, threads), then the
result. Run it through bench/mnist_bench.sh, which sets the environment.

usage: mnist_torch.py DATA_DIR THREADS [LIMIT_TRAIN] [LIMIT_TEST]"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, HERE)
from mnist_nets import Net  # noqa: E402
import torch_runtime  # noqa: E402


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    nd = int.from_bytes(raw[:4], "big") & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(d, prefix, limit):
    x = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte"))
    if limit:
        x, y = x[:limit], y[:limit]
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x.unsqueeze(1).contiguous(), torch.from_numpy(y.astype(np.int64))


def main():
    data, threads = sys.argv[1], int(sys.argv[2])
    limit_train = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    limit_test = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    torch.set_num_threads(threads)
    print(json.dumps({"impl": "pytorch", "runtime": torch_runtime.report(torch, threads)}), flush=True)
    torch.manual_seed(1)
    xtr, ytr = load(data, "train", limit_train)
    xte, yte = load(data, "t10k", limit_test)
    model = Net()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    n = xtr.shape[0]
    perm = torch.randperm(n)
    model.train()
    t0 = time.perf_counter()
    for s in range(0, n, 64):
        idx = perm[s:s + 64]
        x, y = xtr[idx], ytr[idx]
        opt.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, xte.shape[0], 1000):
            correct += (model(xte[s:s + 1000]).argmax(1) == yte[s:s + 1000]).sum().item()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "threads": torch.get_num_threads(), "images": n, "seconds": round(secs, 3),
                      "test_accuracy": round(100.0 * correct / xte.shape[0], 2), "peak_rss_mib": round(rss)}),
          flush=True)


if __name__ == "__main__":
    main()
