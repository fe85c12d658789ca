"""Helpers of the PyTorch twins that write a case per HDF5 group (inputs, the
upstream gradient `go`, the output `y`, the gradients `g_<input>`):
functional_reference.py and layers_reference.py. Call open_output(path)
first; the others write to that file. write_configs and conv_datasets are
the convolution twins' (conv2d_reference.py, conv2d_pool_reference.py):
numbered configs cfgNNN with x, w, [b], gy, y, gx, gw, [gb]."""
import h5py
import numpy as np
import torch

_out = None


def open_output(path):
    """Open (truncate) the HDF5 file the other helpers write to, and return it."""
    global _out
    _out = h5py.File(path, "w")
    return _out


def save(name, t):
    _out.create_dataset(name, data=t.detach().numpy() if torch.is_tensor(t) else t)


def grads(group, y, inputs):
    """Backward with a seeded upstream gradient; save y, go and the gradient of
    every input that requires grad (zeros when none reached it)."""
    go = torch.randn(y.shape)
    save(group + "/y", y)
    save(group + "/go", go)
    y.backward(go)
    for k, v in inputs.items():
        if v is not None and v.requires_grad:
            save(group + "/g_" + k, v.grad if v.grad is not None else torch.zeros_like(v))


def leaf(*shape, scale=1.0):
    """A leaf of N(0, scale^2) values (default dtype) requiring grad."""
    return (torch.randn(*shape) * scale).requires_grad_()


def conv_datasets(params, x, w, b, gy, y):
    """A conv config's datasets after y.backward(gy): its int64 params, the
    inputs x, w (and b unless None), gy, PyTorch's y and gradients."""
    out = dict(params=np.array(params, dtype=np.int64), x=x.detach(), w=w.detach(), gy=gy, y=y.detach(),
               gx=x.grad, gw=w.grad)
    if b is not None:
        out.update(b=b.detach(), gb=b.grad)
    return out


def write_configs(path, cfgs, run):
    """Seed 0, then `count` and, for config i in order, run(cfgs[i])'s
    datasets as cfgNNN/<name> (tensors or numpy arrays)."""
    torch.manual_seed(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("count", data=np.array([len(cfgs)], dtype=np.int64))
        for i, c in enumerate(cfgs):
            for k, v in run(c).items():
                f.create_dataset(f"cfg{i:03d}/{k}", data=v if isinstance(v, np.ndarray) else v.numpy())
