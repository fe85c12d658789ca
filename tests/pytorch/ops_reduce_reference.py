"""PyTorch twin of tests/test_ops_reduce.c: writes the inputs and torch's
results for sum, mean, sum/mean/max along dims, log_softmax and cat to the
HDF5 file given as argv[1]. Inputs are stored so the C test reads the same
numbers; each result is computed by torch in float32 and in float64."""
import sys

import h5py
import torch

torch.manual_seed(0)
x = torch.randn(3, 4, 5, dtype=torch.float64)
big = torch.randn(2, 7, dtype=torch.float64) * 1000  # log_softmax must stay finite
ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]], dtype=torch.float64)
gls = torch.randn(3, 4, 5, dtype=torch.float64)  # an output gradient for log_softmax

with h5py.File(sys.argv[1], "w") as f:
    f["x"] = x.numpy()
    f["big"] = big.numpy()
    f["ties"] = ties.numpy()
    f["gls"] = gls.numpy()
    for name, dt in (("f32", torch.float32), ("f64", torch.float64)):
        xd = x.to(dt)
        f[f"sum_{name}"] = xd.sum().double().numpy()
        f[f"mean_{name}"] = xd.mean().double().numpy()
        for d in (0, 1, 2, -1):
            for kd in (False, True):
                f[f"sum_dim{d}_k{int(kd)}_{name}"] = xd.sum(d, keepdim=kd).double().numpy()
                f[f"mean_dim{d}_k{int(kd)}_{name}"] = xd.mean(d, keepdim=kd).double().numpy()
                v, i = xd.max(d, keepdim=kd)
                f[f"max_dim{d}_k{int(kd)}_{name}"] = v.double().numpy()
                f[f"argmax_dim{d}_k{int(kd)}_{name}"] = i.numpy()
            f[f"log_softmax{d}_{name}"] = torch.log_softmax(xd, d).double().numpy()
            xr = xd.clone().requires_grad_(True)
            torch.log_softmax(xr, d).backward(gls.to(dt))
            f[f"log_softmax{d}_grad_{name}"] = xr.grad.double().numpy()
        f[f"log_softmax_big_{name}"] = torch.log_softmax(big.to(dt), 1).double().numpy()
        v, i = ties.to(dt).max(1)
        f[f"ties_max_{name}"] = v.double().numpy()
        f[f"ties_argmax_{name}"] = i.numpy()
        v, i = ties.to(dt).max(0)
        f[f"ties_max0_{name}"] = v.double().numpy()
        f[f"ties_argmax0_{name}"] = i.numpy()
