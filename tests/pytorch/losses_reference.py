"""PyTorch twin of tests/test_losses.c (torch 1.13, float64): the class
losses with weight, ignore_index, label smoothing and probability targets,
the regression losses (broadcasting included), binary cross-entropy from
probabilities and from logits, empty inputs. argv[1] is the output HDF5
path; the layout is twin.py's. Each case names the C test's op that computes
it; p holds, per family:
  class losses:  [reduction, ignore_index, label_smoothing, has_weight]
  regression:    [reduction, beta or delta]
  binary:        [reduction, has_weight, has_pos_weight]
with reduction 0 mean, 1 sum, 2 none (nabla's nb_reduction)."""
import os
import sys
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin import Twin  # noqa: E402

# F.l1_loss and its kin warn when input and target sizes differ, then broadcast: that is a case here
warnings.filterwarnings("ignore", "Using a target size")
torch.set_default_dtype(torch.float64)
tw = Twin(sys.argv[1], 20240613)
RED = ["mean", "sum", "none"]


def randint(hi, shape, holes=(), hole=-100):
    t = torch.randint(0, hi, shape)
    flat = t.view(-1)
    for h in holes:
        flat[h] = hole
    return t


# ---- class losses: (name, input shape, target, weight?, ignore_index, label_smoothing) ----
CLASS = [
    ("w", (6, 5), randint(5, (6,)), True, -100, 0.0),
    ("ign2_w", (7, 4), torch.tensor([2, 0, 2, 3, 1, 2, 3]), True, 2, 0.0),
    ("ign_big", (5, 3), torch.tensor([7, 0, 2, 7, 1]), False, 7, 0.0),
    ("ign_default", (5, 3), randint(3, (5,), holes=(1, 3)), True, -100, 0.0),
    ("ls", (6, 5), randint(5, (6,)), False, -100, 0.2),
    ("ls_w_ign", (6, 5), randint(5, (6,), holes=(0, 4)), True, -100, 0.1),
    ("ls_one", (4, 3), randint(3, (4,)), True, -100, 1.0),
    ("4d_w_ls_ign1", (2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3)), True, 1, 0.15),
    ("3d_w", (3, 4, 5), torch.randint(0, 4, (3, 5)), True, -100, 0.0),
    ("1d_w_ls", (5,), torch.tensor(3), True, -100, 0.25),
    ("all_ignored_w", (3, 4), torch.tensor([-100, -100, -100]), True, -100, 0.0),
    ("all_ignored_ls", (3, 4), torch.tensor([-100, -100, -100]), False, -100, 0.3),
    ("zero_weight_target", (3, 4), torch.tensor([0, 1, 0]), True, -100, 0.0),
]
for name, shape, t, has_w, ign, ls in CLASS:
    C = shape[1] if len(shape) > 1 else shape[0]
    w = torch.rand(C) + 0.2
    if name == "zero_weight_target":
        w[0] = w[1] = 0.0  # every target's weight 0: the weighted mean is 0/0
    for r, red in enumerate(RED):
        x = torch.randn(*shape) * 2
        ins, kinds = [x, t], "fi"
        if has_w:
            ins, kinds = ins + [w], kinds + "c"
        p = [r, ign, ls, float(has_w)]
        tw.case("cross_entropy", "cross_entropy/%s_%s" % (name, red), kinds, ins,
                lambda x, t, w=None, red=red, ign=ign, ls=ls: F.cross_entropy(
                    x, t, weight=w, ignore_index=ign, reduction=red, label_smoothing=ls), p)
        if ls == 0.0:
            lp = torch.log_softmax(torch.randn(*shape), dim=1 if len(shape) > 1 else 0)
            tw.case("nll_loss", "nll_loss/%s_%s" % (name, red), kinds, [lp] + ins[1:],
                    lambda x, t, w=None, red=red, ign=ign: F.nll_loss(x, t, weight=w, ignore_index=ign, reduction=red),
                    p)

# probability targets: (name, shape, weight?, label_smoothing); target and weight require grad
PROBS = [("2d", (4, 5), False, 0.0), ("2d_w_ls", (4, 5), True, 0.3), ("4d_w", (2, 3, 2, 2), True, 0.0),
         ("3d_ls", (2, 4, 3), False, 0.1), ("1d_w", (5,), True, 0.0), ("unnormalised", (3, 4), False, 0.0)]
for name, shape, has_w, ls in PROBS:
    cdim = 1 if len(shape) > 1 else 0
    for r, red in enumerate(RED):
        x = torch.randn(*shape) * 2
        q = torch.softmax(torch.randn(*shape), cdim) if name != "unnormalised" else torch.rand(*shape) * 3 - 1
        ins, kinds = [x, q], "ff"
        if has_w:
            ins, kinds = ins + [torch.rand(shape[cdim]) + 0.2], kinds + "f"
        tw.case("cross_entropy", "cross_entropy/probs_%s_%s" % (name, red), kinds, ins,
                lambda x, t, w=None, red=red, ls=ls: F.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=ls),
                [r, -100, ls, float(has_w)])

# ---- regression losses: (name, function, param, input shape, target shape) ----
REG = [
    ("l1", "l1", 0.0, (3, 4, 5), (3, 4, 5)),
    ("smooth_l1", "smooth_l1", 1.0, (3, 4, 5), (3, 4, 5)),
    ("smooth_l1_b05", "smooth_l1", 0.5, (3, 4, 5), (3, 4, 5)),
    ("smooth_l1_b0", "smooth_l1", 0.0, (3, 4, 5), (3, 4, 5)),
    ("huber", "huber", 1.0, (3, 4, 5), (3, 4, 5)),
    ("huber_d07", "huber", 0.7, (3, 4, 5), (3, 4, 5)),
    ("mse", "mse", 0.0, (3, 4, 5), (3, 4, 5)),
    # broadcasting (PyTorch warns, then broadcasts)
    ("l1_bcast_target", "l1", 0.0, (2, 3), (3,)),
    ("huber_bcast_input", "huber", 0.5, (3,), (2, 3)),
    ("smooth_l1_bcast_both", "smooth_l1", 0.8, (4, 1), (1, 5)),
    ("mse_bcast", "mse", 0.0, (2, 1, 3), (4, 1)),
]
FN = {"l1": lambda x, t, r, a: F.l1_loss(x, t, reduction=r),
      "mse": lambda x, t, r, a: F.mse_loss(x, t, reduction=r),
      "smooth_l1": lambda x, t, r, a: F.smooth_l1_loss(x, t, reduction=r, beta=a),
      "huber": lambda x, t, r, a: F.huber_loss(x, t, reduction=r, delta=a)}
for name, fn, a, xs, ts in REG:
    for r, red in enumerate(RED):
        x, t = torch.randn(*xs) * 1.5, torch.randn(*ts)
        tw.case(fn + "_loss", "%s/%s" % (name, red), "ff", [x, t], lambda x, t, fn=fn, red=red, a=a: FN[fn](x, t, red, a), [r, a])
# the kinks: d exactly 0, +-beta, +-delta (values exact in float32)
x = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0, 0.7, -0.7])
for fn, a in [("l1", 0.0), ("smooth_l1", 0.5), ("smooth_l1", 1.0), ("huber", 1.0), ("huber", 0.5)]:
    tw.case(fn + "_loss", "%s_kinks_%g/sum" % (fn, a), "ff", [x, torch.zeros(9)],
            lambda x, t, fn=fn, a=a: FN[fn](x, t, "sum", a), [1, a])

# ---- binary cross-entropy: (name, input shape, weight shape or None, pos_weight shape or None) ----
BIN = [("plain", (3, 4), None, None), ("w_bcast", (3, 4), (4,), None), ("w_full", (2, 3, 2), (2, 3, 2), None),
       ("pw", (3, 4), None, (4,)), ("w_pw", (3, 4), (3, 1), (4,))]
for name, shape, ws, pws in BIN:
    for r, red in enumerate(RED):
        w = torch.rand(*ws) + 0.1 if ws else None
        pw = torch.rand(*pws) * 3 if pws else None
        t = torch.rand(*shape)
        extra = [v for v in (w, pw) if v is not None]
        kinds = "ff" + "c" * len(extra)
        p = [r, float(w is not None), float(pw is not None)]
        if pw is None:
            xp = torch.sigmoid(torch.randn(*shape) * 2)
            tw.case("binary_cross_entropy", "bce/%s_%s" % (name, red), kinds, [xp, t] + extra,
                    lambda x, t, w=None, red=red: F.binary_cross_entropy(x, t, weight=w, reduction=red), p)
        xl = torch.randn(*shape) * 3
        tw.case("binary_cross_entropy_with_logits", "bce_logits/%s_%s" % (name, red), kinds, [xl, t] + extra,
                lambda x, t, *e, red=red, hw=w is not None, hp=pw is not None: F.binary_cross_entropy_with_logits(
                    x, t, weight=e[0] if hw else None, pos_weight=e[-1] if hp else None, reduction=red), p)
# probabilities at 0 and 1 (the log clamp and the gradient's 1e-12) and near them
xp = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-30, 1 - 2 ** -20, 0.5])
tp = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.25, 0.5])
tw.case("binary_cross_entropy", "bce/edges_none", "fc", [xp, tp], lambda x, t: F.binary_cross_entropy(x, t, reduction="none"), [2, 0, 0])
tw.case("binary_cross_entropy", "bce/edges_sum", "fc", [xp, tp], lambda x, t: F.binary_cross_entropy(x, t, reduction="sum"), [1, 0, 0])
# large logits: the stable form stays finite and exact
xl = torch.tensor([-1000.0, 1000.0, 50.0, -50.0, 0.0, 30.0])
tl = torch.tensor([1.0, 0.0, 0.3, 0.7, 0.5, 1.0])
tw.case("binary_cross_entropy_with_logits", "bce_logits/large_none", "ff", [xl, tl],
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"), [2, 0, 0])
tw.case("binary_cross_entropy_with_logits", "bce_logits/large_pw_none", "ffc", [xl, tl, torch.tensor([2.0, 3.0, 0.5, 1.5, 4.0, 2.5])],
        lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none"), [2, 0, 1])

# ---- empty inputs: mean NaN, sum 0, none empty, as PyTorch ----
for r, red in enumerate(RED):
    tw.case("cross_entropy", "empty/cross_entropy_w_ls_%s" % red, "fic", [torch.randn(0, 4), torch.zeros(0, dtype=torch.int64),
                                                          torch.rand(4)],
            lambda x, t, w, red=red: F.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=0.1),
            [r, -100, 0.1, 1])
    tw.case("cross_entropy", "empty/cross_entropy_probs_%s" % red, "ff", [torch.randn(0, 4, 2), torch.rand(0, 4, 2)],
            lambda x, t, red=red: F.cross_entropy(x, t, reduction=red), [r, -100, 0, 0])
    tw.case("cross_entropy", "empty/cross_entropy_probs_no_classes_%s" % red, "ff", [torch.randn(3, 0), torch.rand(3, 0)],
            lambda x, t, red=red: F.cross_entropy(x, t, reduction=red), [r, -100, 0, 0])
    tw.case("nll_loss", "empty/nll_loss_w_%s" % red, "fic", [torch.randn(0, 3, 2), torch.zeros(0, 2, dtype=torch.int64),
                                                 torch.rand(3)],
            lambda x, t, w, red=red: F.nll_loss(x, t, weight=w, reduction=red), [r, -100, 0, 1])
    for fn, a in [("l1", 0.0), ("smooth_l1", 0.5), ("huber", 2.0)]:
        tw.case(fn + "_loss", "empty/%s_%s" % (fn, red), "ff", [torch.randn(0, 3), torch.randn(3)],
                lambda x, t, fn=fn, a=a, red=red: FN[fn](x, t, red, a), [r, a])
    tw.case("binary_cross_entropy", "empty/bce_%s" % red, "ffc", [torch.rand(2, 0), torch.rand(2, 0), torch.rand(0)],
            lambda x, t, w, red=red: F.binary_cross_entropy(x, t, weight=w, reduction=red), [r, 1, 0])
    tw.case("binary_cross_entropy_with_logits", "empty/bce_logits_%s" % red, "ffcc", [torch.randn(0, 3), torch.rand(0, 3), torch.rand(3), torch.rand(3)],
            lambda x, t, w, pw, red=red: F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                                             reduction=red), [r, 1, 1])
tw.close()
