"""PyTorch twin of tests/test_tensor_ops.c: abs, add/sub with alpha,
maximum/minimum, clamp (scalar and tensor bounds), where, gather, stack,
argmax/argmin, min along a dim, and sum/mean/amax/amin over several dims,
forward and backward in float32 and float64 (torch 1.13). argv[1] is the
output HDF5 path.

For each case NAME (the C test has a table with the same names, in the same
order, computing the same thing with nabla) and each dtype DT in (f32, f64),
the group NAME/DT holds
  in<i>   the inputs; their kind is a letter of the case's `kinds`:
          f  float, requires grad    c  float, no grad    i  int64
  y       the output (float, or int64 for argmax / argmin / int64 inputs)
  go      the upstream gradient (when y requires grad), g<i> the gradient of
          each `f` input after y.backward(go).
Inputs are random (seeded) unless a case gives them: ties, NaN, infinities
and clamp boundaries are written out. nabla's where takes an int64 condition
(nonzero = true): the functions here turn it into PyTorch's bool with `!= 0`."""
import sys

import h5py
import torch

torch.manual_seed(13)
out = h5py.File(sys.argv[1], "w")
nan, inf = float("nan"), float("inf")


def save(name, t):
    out.create_dataset(name, data=t.detach().numpy())


def T(*rows):
    return torch.tensor(rows if len(rows) > 1 else rows[0], dtype=torch.float64)


def I(*rows):
    return torch.tensor(rows if len(rows) > 1 else rows[0], dtype=torch.int64)


SPECIAL = T([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, nan, inf, -inf])
TIES = T([[1.0, 3.0, 3.0, nan, nan], [2.0, 2.0, 1.0, 0.0, 2.0], [-1.0, 4.0, -1.0, 4.0, 0.5]])
AMAX_TIES = T([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [nan, 1.0, nan], [0.0, -1.0, 5.0]])
# clamp with tensor bounds: x against lo (per row) and hi (per column), with
# x on a bound, lo > hi (row 1, columns 1 and 3) and equal bounds
CX = T([[-2.0, 0.0, 1.0, 3.0, -1.0], [-2.0, 0.7, 1.0, 3.0, 0.5]])
CLO = T([[-1.0], [0.5]])
CHI = T([1.0, 0.0, 1.0, 2.0, 0.5])
CNAN_X = T([[nan, 0.0, 1.0], [0.2, 0.3, 0.4]])
CNAN_LO = T([[-1.0, nan, -1.0]])
CNAN_HI = T([[1.0], [nan]])


def where(c, a, b):
    return torch.where(c != 0, a, b)


def dims_cases(prefix, fn):
    """fn(x, dims, keepdim) over the dims lists the C table repeats."""
    return [
        (prefix + "_02", "f", [(2, 3, 4, 5)], lambda x: fn(x, (0, 2), False)),
        (prefix + "_02_keepdim", "f", [(2, 3, 4, 5)], lambda x: fn(x, (0, 2), True)),
        (prefix + "_m1_1", "f", [(2, 3, 4, 5)], lambda x: fn(x, (-1, 1), False)),
        (prefix + "_3_keepdim", "f", [(2, 3, 4, 5)], lambda x: fn(x, (3,), True)),
        (prefix + "_123", "f", [(2, 3, 4, 5)], lambda x: fn(x, (1, 2, 3), False)),
        (prefix + "_all_list", "f", [(2, 3, 4, 5)], lambda x: fn(x, (0, 1, 2, 3), False)),
        (prefix + "_empty_list", "f", [(2, 3, 4, 5)], lambda x: fn(x, (), False)),
        (prefix + "_empty_list_keepdim", "f", [(2, 3, 4, 5)], lambda x: fn(x, (), True)),
        (prefix + "_size1_dims", "f", [(3, 1, 4, 1)], lambda x: fn(x, (1, 2), False)),
        (prefix + "_0d", "f", [()], lambda x: fn(x, (0,), True)),
        (prefix + "_transposed", "f", [(4, 3, 5)], lambda x: fn(x.transpose(0, 2), (0, 1), False)),
    ]


# (name, kinds, inputs: a shape for random values or a tensor, function)
CASES = [
    ("abs_special", "f", [SPECIAL], torch.abs),
    ("abs_rand", "f", [(3, 4)], torch.abs),
    ("add_alpha_bcast", "ff", [(2, 3), (3,)], lambda a, b: torch.add(a, b, alpha=0.37)),
    ("sub_alpha_bcast", "ff", [(3, 1), (1, 4)], lambda a, b: torch.sub(a, b, alpha=-2.5)),
    ("add_alpha_transposed", "ff", [(3, 2), (2, 3)], lambda a, b: torch.add(a.t(), b, alpha=3.0)),
    ("maximum_ties_nan", "ff", [T([1.0, 2.0, nan, 3.0, 5.0, nan, -0.0]), T([1.0, 3.0, 1.0, nan, 4.0, nan, 0.0])],
     torch.maximum),
    ("minimum_ties_nan", "ff", [T([1.0, 2.0, nan, 3.0, 5.0, nan, -0.0]), T([1.0, 3.0, 1.0, nan, 4.0, nan, 0.0])],
     torch.minimum),
    ("maximum_bcast", "ff", [(2, 1, 3), (4, 1)], torch.maximum),
    ("minimum_bcast", "ff", [(4, 1), (2, 1, 3)], torch.minimum),
    ("clamp_both", "f", [SPECIAL], lambda x: torch.clamp(x, -1.0, 1.0)),
    ("clamp_min_only", "f", [SPECIAL], lambda x: torch.clamp(x, min=0.0)),
    ("clamp_max_only", "f", [SPECIAL], lambda x: torch.clamp(x, max=0.5)),
    ("clamp_min_gt_max", "f", [SPECIAL], lambda x: torch.clamp(x, 1.0, -1.0)),
    ("clamp_nan_min", "f", [SPECIAL], lambda x: torch.clamp(x, min=nan)),
    ("clamp_rand", "f", [(3, 4)], lambda x: torch.clamp(x, -0.3, 0.4)),
    ("clamp_tensor_both", "fff", [CX, CLO, CHI], torch.clamp),
    ("clamp_tensor_min", "ff", [CX, CLO], lambda x, lo: torch.clamp(x, lo)),
    ("clamp_tensor_max", "ff", [CX, CHI], lambda x, hi: torch.clamp(x, None, hi)),
    ("clamp_tensor_nan", "fff", [CNAN_X, CNAN_LO, CNAN_HI], torch.clamp),
    ("where_bcast", "iff", [I([[[0, 1, -3]], [[5, 0, 0]]]), (4, 1), (3,)], where),
    ("where_same_shape", "iff", [I([[1, 0, 0, 2], [0, 0, 7, 1], [1, 1, 0, 0]]), (3, 4), (3, 4)], where),
    ("where_transposed", "iff", [I([[1, 0, 1], [0, 1, 1]]), (3, 2), (2, 3)], lambda c, a, b: where(c, a.t(), b)),
    ("where_int64", "iii", [I([1, 0, 1, 0]), I([1, 2, 3, 4]), I([-1, -2, -3, -4])], where),
    ("gather_dim0_repeats", "fi", [(3, 4), I([[0, 1, 2, 0], [0, 0, 2, 2], [1, 1, 1, 1]])],
     lambda x, i: torch.gather(x, 0, i)),
    ("gather_dim1_smaller", "fi", [(3, 5), I([[4, 0, 4], [1, 2, 3]])], lambda x, i: torch.gather(x, 1, i)),
    ("gather_dim_neg", "fi", [(2, 3, 4), I([[[3, 0, 0, 1, 2, 3], [1, 1, 1, 1, 1, 1]], [[0, 0, 0, 0, 0, 0], [2, 3, 2, 3, 2, 3]]])],
     lambda x, i: torch.gather(x, -1, i)),
    ("gather_transposed", "fi", [(4, 3), I([[0, 3, 3, 1], [2, 2, 0, 0]])], lambda x, i: torch.gather(x.t(), 1, i)),
    ("gather_0d", "fi", [(), I(0)], lambda x, i: torch.gather(x, 0, i)),
    ("gather_int64", "ii", [I([[5, 6, 7], [8, 9, 10]]), I([[2, 2], [0, 1]])], lambda x, i: torch.gather(x, 1, i)),
    ("stack_dim0", "fff", [(2, 3), (2, 3), (2, 3)], lambda a, b, c: torch.stack([a, b, c], 0)),
    ("stack_dim1", "fff", [(2, 3), (2, 3), (2, 3)], lambda a, b, c: torch.stack([a, b, c], 1)),
    ("stack_dim_last", "ff", [(2, 3), (2, 3)], lambda a, b: torch.stack([a, b], -1)),
    ("stack_0d", "ff", [(), ()], lambda a, b: torch.stack([a, b])),
    ("stack_transposed", "ff", [(3, 2), (2, 3)], lambda a, b: torch.stack([a.t(), b], 1)),
    ("stack_int64", "ii", [I([1, 2]), I([3, 4])], lambda a, b: torch.stack([a, b], 1)),
    ("stack_20", "f" * 20, [(2,)] * 20, lambda *ts: torch.stack(ts, 1)),
    ("argmax_all", "c", [TIES], torch.argmax),
    ("argmin_all", "c", [TIES], torch.argmin),
    ("argmax_dim1", "c", [TIES], lambda t: torch.argmax(t, 1)),
    ("argmin_dim1", "c", [TIES], lambda t: torch.argmin(t, 1)),
    ("argmax_dim0_keepdim", "c", [TIES], lambda t: torch.argmax(t, 0, keepdim=True)),
    ("argmin_dim_neg", "c", [TIES], lambda t: torch.argmin(t, -2)),
    ("argmax_0d", "c", [()], lambda t: torch.argmax(t, 0)),
    ("argmax_rand_3d", "c", [(3, 4, 5)], lambda t: torch.argmax(t, 1)),
    ("min_dim1", "f", [TIES], lambda t: torch.min(t, 1)[0]),
    ("min_dim1_indices", "c", [TIES], lambda t: torch.min(t, 1)[1]),
    ("min_dim0_keepdim", "f", [(3, 4, 5)], lambda t: torch.min(t, 0, keepdim=True)[0]),
    ("amax_ties_dim1", "f", [AMAX_TIES], lambda z: torch.amax(z, 1)),
    ("amin_ties_dim1", "f", [AMAX_TIES], lambda z: torch.amin(z, 1)),
    ("amax_ties_all", "f", [AMAX_TIES[[0, 1, 3]]], lambda z: torch.amax(z)),
    ("amax_nan_all", "f", [AMAX_TIES], lambda z: torch.amax(z)),
    ("amin_ties_dim0_keepdim", "f", [AMAX_TIES], lambda z: torch.amin(z, 0, keepdim=True)),
]
CASES += dims_cases("sum_dims", lambda x, d, k: x.sum(d, keepdim=k))
CASES += dims_cases("mean_dims", lambda x, d, k: x.mean(d, keepdim=k))
CASES += dims_cases("amax", lambda x, d, k: torch.amax(x, d, keepdim=k))
CASES += dims_cases("amin", lambda x, d, k: torch.amin(x, d, keepdim=k))

for name, kinds, ins_spec, fn in CASES:
    assert len(kinds) == len(ins_spec), name
    base = []  # float64 inputs (random ones drawn once, shared by both dtypes)
    for k, s in zip(kinds, ins_spec):
        base.append(s if torch.is_tensor(s) else torch.randn(s, dtype=torch.float64))
    for dt, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        g = "%s/%s/" % (name, dt)
        ins = []
        for i, (k, t) in enumerate(zip(kinds, base)):
            t = t.clone() if k == "i" else t.detach().to(dtype).clone()
            save(g + "in%d" % i, t)
            ins.append(t.requires_grad_(k == "f"))
        y = fn(*ins)
        save(g + "y", y)
        if y.requires_grad:
            go = torch.randn(y.shape, dtype=dtype)
            save(g + "go", go)
            y.backward(go)
            for i, (k, t) in enumerate(zip(kinds, ins)):
                if k == "f":
                    save(g + "g%d" % i, t.grad if t.grad is not None else torch.zeros_like(t))
out.create_dataset("ncases", data=len(CASES))
out.close()
