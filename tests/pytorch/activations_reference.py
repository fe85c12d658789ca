"""PyTorch twin of tests/test_activations.c (torch 1.13, float64): F.gelu
(approximate 'none' and 'tanh'), F.silu, F.elu, F.softplus, F.hardswish and
F.softmax, on random inputs, on special values (the kinks, +-inf, NaN, large
and tiny magnitudes) and on empty inputs; and a Sequential of their modules.
argv[1] is the output HDF5 path; the layout is twin.py's. p holds, per op:
  gelu [approximate: 0 none, 1 tanh], elu [alpha], softplus [beta, threshold],
  softmax and log_softmax [dim]; the others none.

The Sequential: its state_dict is written to <argv[1] without .h5>_net_state.h5
(one dataset per key, as a user exports it), and net/x, net/y, net/go,
net/gx and net/grad/KEY (d sum(y * go) / d input and parameters) to argv[1],
computed in float64 from the float32 weights nabla loads."""
import os
import sys

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin import Twin  # noqa: E402

torch.set_default_dtype(torch.float64)
tw = Twin(sys.argv[1], 20240614)

SPECIAL = torch.tensor([0.0, -3.0, 3.0, -4.0, 4.0, 2.5, -2.5, 1.0, -1.0, 1e-30, -1e-30, 7.5, -7.5, 30.0, -30.0,
                        100.0, -100.0, float("inf"), -float("inf"), float("nan")])
ACTS = [
    ("gelu", "none", [0], lambda x: F.gelu(x)),
    ("gelu", "tanh", [1], lambda x: F.gelu(x, approximate="tanh")),
    ("silu", "", None, F.silu),
    ("elu", "1", [1.0], lambda x: F.elu(x)),
    ("elu", "0.5", [0.5], lambda x: F.elu(x, 0.5)),
    ("elu", "neg", [-0.5], lambda x: F.elu(x, -0.5)),
    ("elu", "0", [0.0], lambda x: F.elu(x, 0.0)),
    ("softplus", "1_20", [1.0, 20.0], lambda x: F.softplus(x)),
    ("softplus", "2_5", [2.0, 5.0], lambda x: F.softplus(x, 2.0, 5.0)),
    ("softplus", "0.5_1", [0.5, 1.0], lambda x: F.softplus(x, 0.5, 1.0)),
    ("softplus", "neg", [-1.5, 20.0], lambda x: F.softplus(x, -1.5, 20.0)),
    ("softplus", "3_0", [3.0, 0.0], lambda x: F.softplus(x, 3.0, 0.0)),
    ("hardswish", "", None, F.hardswish),
]
for op, variant, p, fn in ACTS:
    name = op + ("_" + variant if variant else "")
    tw.case(op, name + "/random", "f", [torch.randn(4, 5) * 3], fn, p)
    tw.case(op, name + "/special", "f", [SPECIAL.clone()], fn, p)
    tw.case(op, name + "/empty", "f", [torch.randn(0, 3)], fn, p)
# softmax and log_softmax over each dim, 1-d, 0-d, empty, and rows of infinities
x3 = torch.randn(3, 4, 5) * 2
for dim in (0, 1, 2, -1):
    tw.case("softmax", "softmax/dim%d" % dim, "f", [x3.clone()], lambda x, d=dim: F.softmax(x, d), [dim])
    tw.case("log_softmax", "log_softmax/dim%d" % dim, "f", [x3.clone()], lambda x, d=dim: F.log_softmax(x, d), [dim])
tw.case("softmax", "softmax/1d", "f", [torch.randn(7)], lambda x: F.softmax(x, 0), [0])
tw.case("softmax", "softmax/0d", "f", [torch.tensor(1.5)], lambda x: F.softmax(x, 0), [0])
tw.case("softmax", "softmax/empty", "f", [torch.randn(0, 4)], lambda x: F.softmax(x, 1), [1])
tw.case("softmax", "softmax/no_classes", "f", [torch.randn(2, 0)], lambda x: F.softmax(x, 1), [1])
tw.case("softmax", "softmax/large", "f", [torch.tensor([[1000.0, 999.0, -1000.0], [-50.0, -60.0, -70.0]])],
        lambda x: F.softmax(x, 1), [1])
inf = float("inf")
tw.case("softmax", "softmax/infinities", "f", [torch.tensor([[1.0, inf, 0.0], [-inf, -inf, -inf], [-inf, 0.0, 1.0]])],
        lambda x: F.softmax(x, 1), [1])
tw.close()

# ---- the Sequential of modules, float32 weights ----
torch.manual_seed(7)
net = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 8), nn.SiLU(), nn.ELU(0.7), nn.Softplus(2.0, 5.0),
                    nn.Linear(8, 8), nn.Hardswish(), nn.GELU(approximate="tanh"), nn.LeakyReLU(0.2),
                    nn.Linear(8, 4), nn.Softmax(dim=1))
net = net.float().double()  # float32 weights, float64 arithmetic
stem = sys.argv[1][:-3] if sys.argv[1].endswith(".h5") else sys.argv[1]
with h5py.File(stem + "_net_state.h5", "w") as f:
    for k, v in net.state_dict().items():
        f.create_dataset(k, data=v.float().numpy())
x = torch.randn(5, 6).float().double().requires_grad_()
y = net(x)
go = torch.randn(y.shape).float().double()
y.backward(go)
with h5py.File(sys.argv[1], "a") as f:
    for k, v in [("x", x), ("y", y), ("go", go), ("gx", x.grad)]:
        f.create_dataset("net/" + k, data=v.detach().numpy())
    for k, prm in net.named_parameters():
        f.create_dataset("net/grad/" + k, data=prm.grad.numpy())
