#!/usr/bin/env python3
"""PyTorch twin of tests/test_autograd_hooks.c: tensor gradient hooks
(Tensor.register_hook) and torch.autograd.grad, run by PyTorch on the same
inputs as the C test. For each scenario NAME the file holds

  NAME/calls           int64 [n]: the hooks called, in order (ids as in the C test)
  NAME/call<i>         float64: the gradient hook call i saw
  NAME/<tensor>_grad   float64: .grad after the scenario (absent if None)
  NAME/g<k>            float64: torch.autograd.grad's k-th result (absent if None)

Every scenario's inputs are written too (NAME/<tensor>), float64.

Usage: autograd_hooks_reference.py OUT.h5
"""
import sys

import h5py
import torch

torch.manual_seed(0)
calls = []


def hook(hid, scale=None):
    """A hook that logs (id, grad) and, with scale, replaces grad by grad * scale."""
    def h(g):
        calls.append((hid, g.detach().clone()))
        return g * scale if scale is not None else None
    return h


def leaf(f, name, t):
    f[name] = t.numpy()
    return t.clone().requires_grad_(True)


def finish(f, scenario, grads=None, **tensors):
    f[f"{scenario}/calls"] = torch.tensor([c[0] for c in calls], dtype=torch.int64).numpy()
    for i, (_, g) in enumerate(calls):
        f[f"{scenario}/call{i}"] = g.numpy()
    calls.clear()
    for name, t in tensors.items():
        if t.grad is not None:
            f[f"{scenario}/{name}_grad"] = t.grad.numpy()
    for k, g in enumerate(grads or []):
        if g is not None:
            f[f"{scenario}/g{k}"] = g.numpy()


def main():
    d = torch.float64
    with h5py.File(sys.argv[1], "w") as f:
        # leaf: three hooks (the second doubles), the leaf used twice; then the
        # second removed and another backward (grads accumulate)
        a = leaf(f, "leaf/a", torch.randn(3, dtype=d))
        a.register_hook(hook(1))
        h2 = a.register_hook(hook(2, 2.0))
        a.register_hook(hook(3))
        (a * 2 + a * a).sum().backward()
        h2.remove()
        (a * 3).sum().backward()
        finish(f, "leaf", a=a)

        # a chain b -> c -> d with a hook on each: order of the calls
        b = leaf(f, "chain/b", torch.randn(4, dtype=d))
        c = b.tanh()
        dd = c * 3
        for t, hid in ((b, 1), (c, 2), (dd, 3)):
            t.register_hook(hook(hid))
        (dd * dd).sum().backward()
        finish(f, "chain", b=b)

        # a non-leaf used twice, its hook replacing its gradient (x10); a hook on the root (x3)
        x = leaf(f, "nonleaf/x", torch.randn(2, 3, dtype=d))
        y = x * x
        y.register_hook(hook(1, 10.0))
        r = (y * 2 + y.exp()).sum()
        r.register_hook(hook(2, 3.0))
        r.backward()
        finish(f, "nonleaf", x=x)

        # autograd.grad: a leaf's hooks do not run and .grad stays None; a
        # non-leaf input's gradient is taken before its hook; the hook runs
        # when the gradient passes through on its way to x
        x = leaf(f, "grad/x", torch.randn(3, dtype=d))
        w = leaf(f, "grad/w", torch.randn(3, dtype=d))
        x.register_hook(hook(1, 2.0))
        z = x * w
        z.register_hook(hook(2, 10.0))
        out = (z * z).sum() + (x * 3).sum()
        g = torch.autograd.grad(out, x, retain_graph=True)
        finish(f, "grad_x", grads=g, x=x, w=w)
        g = torch.autograd.grad(out, z, retain_graph=True)
        finish(f, "grad_z", grads=g, x=x, w=w)
        g = torch.autograd.grad(out, (z, w, x), retain_graph=True)
        finish(f, "grad_zwx", grads=g, x=x, w=w)
        # outputs with grad_outputs; an unused input (allow_unused)
        m = leaf(f, "multi/m", torch.randn(2, 3, dtype=d))
        v = leaf(f, "multi/v", torch.randn(3, dtype=d))
        u = leaf(f, "multi/u", torch.randn(3, dtype=d))
        o1 = m @ v
        o2 = (m * m).sum(0)
        go1 = torch.randn(2, dtype=d)
        go2 = torch.randn(3, dtype=d)
        f["multi/go1"] = go1.numpy()
        f["multi/go2"] = go2.numpy()
        g = torch.autograd.grad((o1, o2), (m, v, u), (go1, go2), allow_unused=True)
        finish(f, "multi", grads=g, m=m, v=v, u=u)


if __name__ == "__main__":
    main()
