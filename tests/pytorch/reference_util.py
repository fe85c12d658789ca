"""Helpers of the PyTorch twins that write a case per HDF5 group (inputs, the
upstream gradient `go`, the output `y`, the gradients `g_<input>`):
functional_reference.py and layers_reference.py. Call open_output(path)
first; the others write to that file."""
import h5py
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
