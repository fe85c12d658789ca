"""PyTorch twin of tests/test_zero_size.c: empty batches (N = 0) and other
zero-size dims through every op, loss and module of nabla, forward and
backward, in float32 and float64 (torch 1.13). argv[1] is the output HDF5 path.

For each case NAME (the C test has a table with the same names, in the same
order, and a function computing the same thing with nabla) and each dtype
DT in (f32, f64), the group NAME/DT holds
  in<i>     the inputs; their kind is a letter of the case's `kinds`:
            f  float, requires grad          r  float, no grad (running stats)
            i  int64 (class targets)
  y         the output, go  the upstream gradient (same shape),
  g<i>      the gradient of each `f` input after y.backward(go),
  after<i>  each `r` input after the forward (running statistics).
Datasets may have zero-size dims. Modules (float32 only in nabla) are under
module/: see the end of the file. The C test reads the inputs back, so
nothing here needs nabla's rng."""
import sys
import warnings

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore", "Using a target size")  # l1_loss_broadcast_empty: broadcasting is the case
torch.manual_seed(20240611)
out = h5py.File(sys.argv[1], "w")


def save(name, t):
    out.create_dataset(name, data=t.detach().numpy() if torch.is_tensor(t) else t)


def pool(k, s=None, p=0):
    return dict(kernel_size=k, stride=s, padding=p)


RED = ("mean", "sum", "none")


def conv2d_no_channels(x, w, b):
    """torch 1.13's F.conv2d returns [N, 0, Ho, Wo] for an input without channels
    (its 'Empty' backend), against its documented (N, C_out, Ho, Wo). nabla
    follows the documentation: the sum over no input channels is 0, so the
    output is the bias at every position; computed here from that identity."""
    assert F.conv2d(x, w, b).shape[1] == 0  # the quirk is still there
    n, ho, wo = x.shape[0], x.shape[2] - w.shape[2] + 1, x.shape[3] - w.shape[3] + 1
    return b.view(1, -1, 1, 1).expand(n, -1, ho, wo) + 0 * w.sum() + 0 * x.sum()


# (name, kinds, input shapes, function). Targets ('i') are drawn in [0, C) with C = 4.
CASES = [
    # batch_norm: the two bugs PyTorch's own tests found, and the same pattern
    ("bn_train_empty_batch", "frr", [(0, 5, 2, 2), (5,), (5,)],
     lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True, momentum=0.3, eps=1e-3)),
    ("bn_train_affine_empty", "fffrr", [(0, 5, 2, 2), (5,), (5,), (5,), (5,)],
     lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)),
    ("bn_eval_empty_batch", "fffrr", [(0, 5, 2, 2), (5,), (5,), (5,), (5,)],
     lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False)),
    ("bn_train_empty_spatial", "f", [(2, 5, 0)], lambda x: F.batch_norm(x, None, None, training=True)),
    ("bn_train_empty_2d", "frr", [(0, 5), (5,), (5,)],
     lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True)),
    ("bn_train_no_channels", "f", [(2, 0, 3)], lambda x: F.batch_norm(x, None, None, training=True)),
    # matmul
    ("matmul_00_500", "ff", [(0, 0), (5, 0, 0)], torch.matmul),
    ("matmul_30_04", "ff", [(3, 0), (0, 4)], torch.matmul),
    ("matmul_203_34", "ff", [(2, 0, 3), (3, 4)], torch.matmul),
    ("matmul_0_0", "ff", [(0,), (0,)], torch.matmul),
    ("matmul_502_2", "ff", [(5, 0, 2), (2,)], torch.matmul),
    ("matmul_0_203", "ff", [(0,), (2, 0, 3)], torch.matmul),
    ("matmul_batch0", "ff", [(0, 2, 3), (0, 3, 4)], torch.matmul),
    # conv2d (zeros padding, a padding mode, groups, stride, no input channels)
    ("conv2d_empty_batch", "fff", [(0, 3, 5, 5), (4, 3, 3, 3), (4,)], lambda x, w, b: F.conv2d(x, w, b)),
    ("conv2d_empty_batch_pad_stride", "ff", [(0, 4, 6, 5), (6, 2, 3, 3)],
     lambda x, w: F.conv2d(x, w, None, stride=2, padding=1, groups=2)),
    ("conv2d_empty_batch_reflect", "fff", [(0, 3, 5, 5), (4, 3, 3, 3), (4,)],
     lambda x, w, b: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, b)),
    ("conv2d_no_channels", "fff", [(2, 0, 5, 5), (4, 0, 3, 3), (4,)], conv2d_no_channels),
    # conv_transpose2d (stride and output_padding; groups with bias-only rows)
    ("conv_transpose2d_empty_batch", "fff", [(0, 3, 4, 5), (3, 4, 3, 3), (4,)],
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d_empty_batch_groups", "ff", [(0, 4, 3, 3), (4, 1, 3, 3)],
     lambda x, w: F.conv_transpose2d(x, w, None, groups=2, dilation=2, output_padding=1)),
    # pools: the 2x2 fast path, the general path, average
    ("max_pool2d_empty_batch", "f", [(0, 3, 4, 4)], lambda x: F.max_pool2d(x, 2)),
    ("max_pool2d_empty_batch_k3p1", "f", [(0, 3, 4, 4)], lambda x: F.max_pool2d(x, 3, 1, 1)),
    ("avg_pool2d_empty_batch", "f", [(0, 3, 4, 4)], lambda x: F.avg_pool2d(x, 2)),
    # pad
    ("pad_empty_batch_constant", "f", [(0, 3, 4, 4)], lambda x: F.pad(x, (1, 1, 1, 1), value=0.5)),
    ("pad_empty_batch_reflect", "f", [(0, 3, 4, 4)], lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect")),
    ("pad_empty_batch_replicate", "f", [(0, 3, 4, 4)], lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate")),
    ("pad_empty_batch_circular", "f", [(0, 3, 4, 4)], lambda x: F.pad(x, (1, 1, 1, 1), mode="circular")),
    ("pad_empty_height_constant", "f", [(2, 3, 0, 4)], lambda x: F.pad(x, (1, 2, 1, 1), value=-1.0)),
    # linear
    ("linear_empty_batch", "fff", [(0, 4), (3, 4), (3,)], F.linear),
    ("linear_empty_batch_3d", "fff", [(2, 0, 4), (3, 4), (3,)], F.linear),
    ("linear_no_in_features", "fff", [(2, 0), (3, 0), (3,)], F.linear),
    ("linear_no_out_features", "fff", [(2, 4), (0, 4), (0,)], F.linear),
    # dropout, activations, log_softmax
    ("dropout_empty_batch", "f", [(0, 4)], lambda x: F.dropout(x, 0.5, True)),
    ("leaky_relu_empty_batch", "f", [(0, 4)], lambda x: F.leaky_relu(x, 0.1)),
    ("relu_empty", "f", [(0, 3, 2)], torch.relu),
    ("sigmoid_empty", "f", [(0, 3)], torch.sigmoid),
    ("tanh_empty", "f", [(0, 3)], torch.tanh),
    ("exp_empty", "f", [(0, 3)], torch.exp),
    ("log_softmax_empty_batch", "f", [(0, 4)], lambda x: F.log_softmax(x, 1)),
    ("log_softmax_no_classes", "f", [(2, 0)], lambda x: F.log_softmax(x, 1)),
    # elementwise and reductions
    ("add_broadcast_empty", "ff", [(0, 3), (3,)], torch.add),
    ("mul_broadcast_empty", "ff", [(0, 3), (3,)], torch.mul),
    ("div_broadcast_empty", "ff", [(0, 3), (3,)], torch.div),
    ("pow_scalar_empty", "f", [(0, 3)], lambda x: x ** 3),
    ("sum_empty", "f", [(0, 4)], torch.sum),
    ("mean_empty", "f", [(0, 4)], torch.mean),
    ("sum_dim0_empty", "f", [(0, 4)], lambda x: x.sum(0)),
    ("mean_dim0_empty", "f", [(0, 4)], lambda x: x.mean(0)),
    ("mean_dim1_empty", "f", [(0, 4)], lambda x: x.mean(1)),
    ("max_dim1_empty", "f", [(0, 4)], lambda x: x.max(1)[0]),
    ("cat_empty_first", "ff", [(0, 4), (2, 4)], lambda a, b: torch.cat([a, b], 0)),
    ("flatten_empty", "f", [(0, 3, 2)], lambda x: x.flatten(1)),
    ("transpose_contiguous_empty", "f", [(0, 3)], lambda x: x.t().contiguous()),
    # the tensor ops of issue 13 (where's int64 condition is PyTorch's bool as `!= 0`)
    ("abs_empty", "f", [(0, 3)], torch.abs),
    ("clamp_empty", "f", [(0, 3)], lambda x: torch.clamp(x, -0.5, 0.5)),
    ("clamp_tensor_empty", "fff", [(0, 3), (3,), (0, 1)], torch.clamp),
    ("add_alpha_broadcast_empty", "ff", [(0, 3), (3,)], lambda a, b: torch.add(a, b, alpha=2.0)),
    ("maximum_broadcast_empty", "ff", [(0, 3), (3,)], torch.maximum),
    ("where_broadcast_empty", "iff", [(0, 3), (0, 3), (3,)], lambda c, a, b: torch.where(c != 0, a, b)),
    ("gather_empty_index", "fi", [(2, 3), (2, 0)], lambda x, i: torch.gather(x, 1, i)),
    ("gather_empty_batch", "fi", [(0, 3), (0, 2)], lambda x, i: torch.gather(x, 1, i)),
    ("stack_empty_batch", "ff", [(0, 3), (0, 3)], lambda a, b: torch.stack([a, b], 1)),
    ("sum_dims_empty", "f", [(0, 3, 2)], lambda x: x.sum((0, 2))),
    ("mean_dims_empty", "f", [(0, 3, 2)], lambda x: x.mean((0, 2))),
    ("amax_empty_batch", "f", [(0, 3, 2)], lambda x: torch.amax(x, 1)),
    ("min_dim1_empty_batch", "f", [(0, 4)], lambda x: x.min(1)[0]),
]
def empty_grad_quirk(op):
    """torch 1.13's forward of op gives an empty output but its backward
    refuses the empty grad_output ("Expected grad_output to have non-zero size
    for non-batch dimensions"); an output of no elements depends on no input,
    so the gradient is zero: computed from that identity (as conv2d_no_channels)."""
    def f(x):
        y = op(x.detach())
        assert y.numel() == 0
        return y + 0 * x.sum()
    return f


def group_norm_empty_spatial(x, w, b):
    """torch 1.13 gives weight a NaN gradient here (0 times the NaN statistics
    of groups without elements); no output depends on weight, so its gradient
    is zero, as batch_norm's with an empty spatial size: computed from that
    identity."""
    y = F.group_norm(x, 3, w, b)
    y.sum().backward()
    assert torch.isnan(w.grad).all()  # the quirk is still there
    x.grad = w.grad = b.grad = None
    return F.group_norm(x.detach(), 3, w.detach(), b.detach()) + 0 * (x.sum() + w.sum() + b.sum())


# the layers of issue 13
CASES += [
    ("adaptive_avg_pool2d_empty_batch", "f", [(0, 3, 5, 7)], lambda x: F.adaptive_avg_pool2d(x, (2, 3))),
    ("adaptive_avg_pool2d_no_channels", "f", [(2, 0, 5, 7)],
     empty_grad_quirk(lambda x: F.adaptive_avg_pool2d(x, (2, 3)))),
    ("adaptive_avg_pool2d_output_0", "f", [(2, 3, 5, 7)], empty_grad_quirk(lambda x: F.adaptive_avg_pool2d(x, (0, 3)))),
    ("adaptive_max_pool2d_empty_batch", "f", [(0, 3, 5, 7)], lambda x: F.adaptive_max_pool2d(x, (2, 3))),
    ("adaptive_max_pool2d_unbatched_no_channels", "f", [(0, 5, 7)], lambda x: F.adaptive_max_pool2d(x, (2, 3))),
    ("max_pool2d_indices_empty_batch", "f", [(0, 3, 5, 5)],
     lambda x: F.max_pool2d(x, 3, 1, 1, return_indices=True)[0]),
    ("max_unpool2d_empty_batch", "fi", [(0, 3, 2, 3), (0, 3, 2, 3)], lambda x, i: F.max_unpool2d(x, i, 2)),
    ("avg_pool2d_divisor_empty_batch", "f", [(0, 3, 4, 4)], lambda x: F.avg_pool2d(x, 2, divisor_override=3)),
    ("dropout2d_empty_batch", "f", [(0, 3, 2, 2)], lambda x: F.dropout2d(x, 0.5, True)),
    ("group_norm_empty_batch", "fff", [(0, 6, 2), (6,), (6,)], lambda x, w, b: F.group_norm(x, 3, w, b)),
    ("group_norm_empty_spatial", "fff", [(2, 6, 0), (6,), (6,)], group_norm_empty_spatial),
    ("group_norm_no_channels", "f", [(2, 0, 3)], lambda x: F.group_norm(x, 1)),
    ("layer_norm_empty_batch", "fff", [(0, 4), (4,), (4,)], lambda x, w, b: F.layer_norm(x, (4,), w, b)),
    ("layer_norm_empty_rows", "fff", [(3, 0), (0,), (0,)], lambda x, w, b: F.layer_norm(x, (0,), w, b)),
    ("interpolate_nearest_empty_batch", "f", [(0, 3, 5, 7)], lambda x: F.interpolate(x, size=(7, 10))),
    ("interpolate_bilinear_empty_batch", "f", [(0, 3, 5, 7)],
     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)),
    ("embedding_empty_input", "if", [(0, 3), (5, 4)], lambda i, w: F.embedding(i, w, padding_idx=1)),
    ("embedding_no_dim", "if", [(2, 3), (5, 0)], F.embedding),
]
# losses, with every reduction
for red in RED:
    CASES += [
        ("mse_loss_empty_" + red, "ff", [(0, 4), (0, 4)], lambda x, t, r=red: F.mse_loss(x, t, reduction=r)),
        ("cross_entropy_empty_" + red, "fi", [(0, 4), (0,)], lambda x, t, r=red: F.cross_entropy(x, t, reduction=r)),
        ("cross_entropy_empty_4d_" + red, "fi", [(0, 4, 2, 2), (0, 2, 2)],
         lambda x, t, r=red: F.cross_entropy(x, t, reduction=r)),
        ("nll_loss_empty_" + red, "fi", [(0, 4), (0,)], lambda x, t, r=red: F.nll_loss(x, t, reduction=r)),
    ]

# the activations, softmax, and the losses with options (the C table's rows after nll_loss)
CASES += [
    ("gelu_empty", "f", [(0, 3)], F.gelu),
    ("gelu_tanh_empty", "f", [(0, 3)], lambda x: F.gelu(x, approximate="tanh")),
    ("silu_empty", "f", [(0, 3)], F.silu),
    ("elu_empty", "f", [(0, 3)], lambda x: F.elu(x, 0.5)),
    ("softplus_empty", "f", [(0, 3)], lambda x: F.softplus(x, 2.0, 10.0)),
    ("hardswish_empty", "f", [(0, 3)], F.hardswish),
    ("softmax_empty_batch", "f", [(0, 4)], lambda x: F.softmax(x, 1)),
    ("softmax_no_classes", "f", [(2, 0)], lambda x: F.softmax(x, 1)),
]
for red in RED:
    CASES += [
        # F.l1_loss warns that the sizes differ, then broadcasts [0, 3] with [3]
        ("l1_loss_broadcast_empty_" + red, "ff", [(0, 3), (3,)], lambda x, t, r=red: F.l1_loss(x, t, reduction=r)),
        ("smooth_l1_loss_empty_" + red, "ff", [(0, 3), (0, 3)],
         lambda x, t, r=red: F.smooth_l1_loss(x, t, reduction=r, beta=0.5)),
        ("huber_loss_empty_" + red, "ff", [(0, 3), (0, 3)], lambda x, t, r=red: F.huber_loss(x, t, reduction=r, delta=2.0)),
        ("bce_empty_" + red, "ff", [(0, 3), (0, 3)],
         lambda x, t, r=red: F.binary_cross_entropy(torch.sigmoid(x), t, reduction=r)),
        ("bce_logits_empty_" + red, "ff", [(0, 3), (0, 3)],
         lambda x, t, r=red: F.binary_cross_entropy_with_logits(x, t, reduction=r)),
        ("cross_entropy_probs_empty_" + red, "ff", [(0, 4, 2), (0, 4, 2)],
         lambda x, t, r=red: F.cross_entropy(x, t, reduction=r)),
        ("cross_entropy_weight_ls_empty_" + red, "fir", [(0, 4), (0,), (4,)],
         lambda x, t, w, r=red: F.cross_entropy(x, t, weight=w, ignore_index=1, reduction=r, label_smoothing=0.2)),
    ]

for name, kinds, shapes, fn in CASES:
    assert len(kinds) == len(shapes), name
    for dt, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        g = "%s/%s/" % (name, dt)
        ins = []
        for i, (k, s) in enumerate(zip(kinds, shapes)):
            if k == "i":
                t = torch.randint(0, 4, s, dtype=torch.int64)
            elif k == "r" and kinds[:i].count("r") == 1:
                t = torch.rand(s, dtype=dtype) + 0.5  # the second running statistic, a variance: positive
            else:
                t = torch.randn(s, dtype=dtype)
            save(g + "in%d" % i, t)
            ins.append(t.clone().requires_grad_(k == "f"))
        y = fn(*ins)
        go = torch.randn(y.shape, dtype=dtype)
        save(g + "y", y)
        save(g + "go", go)
        if y.requires_grad:
            y.backward(go)
        for i, (k, t) in enumerate(zip(kinds, ins)):
            if k == "f":
                save(g + "g%d" % i, t.grad if t.grad is not None else torch.zeros_like(t))
            elif k == "r":
                save(g + "after%d" % i, t)
save("ncases", len(CASES))

# ---- modules (float32): an empty batch through a small net in training mode ----
# BatchNorm2d(5, eps=1e-3, momentum=0.3, affine=False): PyTorch's own failing case.
bn = nn.BatchNorm2d(5, eps=1e-3, momentum=0.3, affine=False)
bn.train()
x = torch.randn(0, 5, 2, 2, requires_grad=True)
y = bn(x)
y.backward(torch.randn(y.shape))
save("module/bn/y", y)
save("module/bn/gx", x.grad)
for k, v in bn.state_dict().items():
    save("module/bn/state/" + k, v)

# Every layer type in one Sequential; weights from here, loss = sum of the output.
net = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
    nn.Dropout(0.5), nn.Flatten(), nn.Linear(6 * 2 * 2, 5), nn.Tanh(), nn.Linear(5, 3), nn.Sigmoid(),
    nn.LogSoftmax(dim=1))
net.train()
for k, v in net.state_dict().items():
    save("module/net/state/" + k, v)
x = torch.randn(0, 1, 8, 8, requires_grad=True)
y = net(x)
loss = F.cross_entropy(y, torch.zeros(0, dtype=torch.int64), reduction="sum")
loss.backward()
save("module/net/y", y)
save("module/net/loss", loss)
save("module/net/gx", x.grad)
for k, p in net.named_parameters():
    save("module/net/grad/" + k, p.grad)
for k, v in net.state_dict().items():
    save("module/net/after/" + k, v)
out.close()
