"""PyTorch twin of tests/test_ops_matmul.c: for each shape pair, the inputs a
and b, an output gradient g, torch.matmul(a, b) and the gradients of a and b
(for output gradient g), in float32 and float64, into the HDF5 file argv[1]."""
import sys

import h5py
import torch

CASES = [
    ((4,), (4,)),              # dot
    ((3, 4), (4, 5)),          # matrix product
    ((4,), (4, 5)),            # 1-d a promoted to (1, 4)
    ((3, 4), (4,)),            # 1-d b promoted to (4, 1)
    ((2, 3, 4), (4, 5)),       # batched a, plain b
    ((2, 3, 4), (4,)),         # batched a, 1-d b
    ((4,), (2, 4, 5)),         # 1-d a, batched b
    ((5, 3, 4), (5, 4, 2)),    # same batch
    ((2, 1, 3, 4), (3, 4, 5)), # broadcast batch dims
    ((3, 4), (2, 4, 5)),       # plain a, batched b
    ((0, 4), (4, 3)),          # empty M
    ((3, 0), (0, 2)),          # empty K: zeros
]

torch.manual_seed(1)
with h5py.File(sys.argv[1], "w") as f:
    f["ncases"] = len(CASES)
    for c, (sa, sb) in enumerate(CASES):
        a = torch.randn(*sa, dtype=torch.float64)
        b = torch.randn(*sb, dtype=torch.float64)
        g = torch.randn(torch.matmul(a, b).shape, dtype=torch.float64)
        f[f"case{c}/a"] = a.numpy()
        f[f"case{c}/b"] = b.numpy()
        f[f"case{c}/g"] = g.numpy()
        for name, dt in (("f32", torch.float32), ("f64", torch.float64)):
            ar = a.to(dt).requires_grad_(True)
            br = b.to(dt).requires_grad_(True)
            out = torch.matmul(ar, br)
            out.backward(g.to(dt))
            f[f"case{c}/out_{name}"] = out.detach().double().numpy()
            f[f"case{c}/ga_{name}"] = ar.grad.double().numpy()
            f[f"case{c}/gb_{name}"] = br.grad.double().numpy()
