#!/usr/bin/env python3
"""PyTorch twin of tests/test_autograd_function.c: the same custom
torch.autograd.Function classes as the C test's nb_function tables, applied
to the same inputs, with PyTorch's outputs and gradients. For each case NAME:

  NAME/<input>        the inputs (float64 unless said)
  NAME/<output>       the outputs
  NAME/<input>_grad   .grad after the case's backward (absent if None)
  NAME/needs          int64: ctx.needs_input_grad as forward saw it
  NAME/gout<k>        the gradients backward received, for outputs PyTorch
                      materialises as zeros (absent for the others)

Usage: autograd_function_reference.py OUT.h5
"""
import sys

import h5py
import torch

seen = {}


class Cube(torch.autograd.Function):
    """y = x^3, saving the input."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


class Two(torch.autograd.Function):
    """(x * w, x + w marked non-differentiable, argmax(x) as int64 [1])."""
    @staticmethod
    def forward(ctx, x, w):
        seen["needs"] = ctx.needs_input_grad
        ctx.save_for_backward(x, w)
        b = x + w
        ctx.mark_non_differentiable(b)
        return x * w, b, x.argmax().reshape(1)

    @staticmethod
    def backward(ctx, ga, gb, gi):
        seen["gb"], seen["gi"] = gb.clone(), gi.clone()
        x, w = ctx.saved_tensors
        return (ga * w if ctx.needs_input_grad[0] else None), (ga * x if ctx.needs_input_grad[1] else None)


class ExpSaveOut(torch.autograd.Function):
    """y = exp(x), saving the output."""
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Identity7(torch.autograd.Function):
    """Returns its input as is; backward scales by 7."""
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g * 7


class Bcast(torch.autograd.Function):
    """Backward returns a float64 gradient of a broadcast shape [3, n]."""
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return torch.ones(3, g.shape[0], dtype=torch.float64)


def main():
    torch.manual_seed(0)
    d = torch.float64
    with h5py.File(sys.argv[1], "w") as f:
        # cube inside a graph: loss = sum(Cube(exp(x)) * c)
        x = torch.randn(2, 3, dtype=d)
        c = torch.randn(2, 3, dtype=d)
        f["cube/x"], f["cube/c"] = x.numpy(), c.numpy()
        xr = x.clone().requires_grad_(True)
        y = Cube.apply(xr.exp())
        (y * c).sum().backward()
        f["cube/y"], f["cube/x_grad"] = y.detach().numpy(), xr.grad.numpy()

        # two outputs and an int64 one, w requiring grad or not
        x = torch.randn(4, dtype=d)
        w = torch.randn(4, dtype=d)
        c = torch.randn(4, dtype=d)
        f["two/x"], f["two/w"], f["two/c"] = x.numpy(), w.numpy(), c.numpy()
        for case, w_grad in (("two", True), ("two_nw", False)):
            xr = x.clone().requires_grad_(True)
            wr = w.clone().requires_grad_(w_grad)
            a, b, i = Two.apply(xr, wr)
            f[f"{case}/needs"] = torch.tensor(seen["needs"], dtype=torch.int64).numpy()
            f[f"{case}/requires_grad"] = torch.tensor([a.requires_grad, b.requires_grad, i.requires_grad], dtype=torch.int64).numpy()
            f[f"{case}/a"], f[f"{case}/b"], f[f"{case}/i"] = a.detach().numpy(), b.numpy(), i.numpy()
            (a * c).sum().backward()
            f[f"{case}/x_grad"] = xr.grad.numpy()
            if wr.grad is not None:
                f[f"{case}/w_grad"] = wr.grad.numpy()
            f[f"{case}/gout1"], f[f"{case}/gout2"] = seen["gb"].numpy(), seen["gi"].numpy()

        # saving the output; returning the input; broadcast float64 gradient for float32
        x = torch.randn(5, dtype=d)
        f["misc/x"] = x.numpy()
        xr = x.clone().requires_grad_(True)
        y = ExpSaveOut.apply(xr)
        (y * y).sum().backward()
        f["misc/exp_y"], f["misc/exp_x_grad"] = y.detach().numpy(), xr.grad.numpy()
        xr = x.clone().requires_grad_(True)
        y = Identity7.apply(xr)
        f["misc/identity_is_input"] = int(y is xr)
        y.sum().backward()
        f["misc/identity_x_grad"] = xr.grad.numpy()
        xr = x.float().clone().requires_grad_(True)
        Bcast.apply(xr).sum().backward()
        f["misc/bcast_x_grad"] = xr.grad.double().numpy()
        f["misc/bcast_dtype_is_float32"] = int(xr.grad.dtype == torch.float32)


if __name__ == "__main__":
    main()
