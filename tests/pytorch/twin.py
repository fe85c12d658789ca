"""The layout of a table-driven PyTorch twin, shared by the twins whose C test
runs its cases with nbt_twin_run_all (tests/testutil.h): losses_reference.py
and activations_reference.py. The file lists its cases in "cases"; for each
case NAME it holds
  NAME/op     the name of the C test's function that computes the case
  NAME/kinds  a letter per input (below)
  NAME/in<i>  the inputs (float64, or int64 class targets)
  NAME/p      the case's scalar parameters (float64 vector), when it has any
  NAME/y      the output, NAME/go the upstream gradient (seeded, y's shape)
  NAME/g<i>   the gradient of every input of kind 'f' after y.backward(go)
kinds has a letter per input: 'f' float requiring grad, 'c'
float not requiring grad, 'i' int64. Everything is float64: the C test reads
the inputs back in float32 and float64 and compares with these numbers."""
import h5py
import numpy as np
import torch


class Twin:
    def __init__(self, path, seed):
        torch.manual_seed(seed)
        self.out = h5py.File(path, "w")
        self.names = []

    def save(self, name, t):
        self.out.create_dataset(name, data=t.detach().numpy() if torch.is_tensor(t) else t)

    def case(self, op, name, kinds, inputs, fn, p=None):
        """Case name: y = fn(*inputs) in PyTorch, op(inputs, p) in the C test."""
        assert len(kinds) == len(inputs) and name not in self.names, name
        self.names.append(name)
        self.out.create_dataset(name + "/op", data=np.bytes_(op))
        self.out.create_dataset(name + "/kinds", data=np.bytes_(kinds))
        ins = []
        for i, (k, t) in enumerate(zip(kinds, inputs)):
            assert (t.dtype == torch.int64) == (k == "i"), name
            self.save("%s/in%d" % (name, i), t)
            ins.append(t.detach().clone().requires_grad_(k == "f"))
        if p is not None:
            self.save(name + "/p", torch.tensor(p, dtype=torch.float64))
        y = fn(*ins)
        go = torch.randn(y.shape, dtype=torch.float64)
        self.save(name + "/y", y)
        self.save(name + "/go", go)
        if y.requires_grad:
            y.backward(go)
        for i, (k, t) in enumerate(zip(kinds, ins)):
            if k == "f":
                self.save("%s/g%d" % (name, i), t.grad if t.grad is not None else torch.zeros_like(t))

    def close(self):
        self.out.create_dataset("cases", data=np.array(self.names, dtype="S"))
        self.out.close()
