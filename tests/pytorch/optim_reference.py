"""PyTorch twin of tests/test_optim.c: writes optimizer trajectories and
learning-rate schedules computed by torch.optim (torch 1.13.1) to argv[1].

Layout (all float64 unless noted):
  init/p{i}                 initial parameters (three shapes)
  grads/s{k}/p{i}           gradient of parameter i at step k (k = 0..NSTEPS-1)
  ncfg, nsteps, nparams     counts
  cfg/{c}/kind              0 SGD, 1 Adam, 2 AdamW, 3 Adadelta, 4 RMSprop
  cfg/{c}/{option}          only the options given (the rest are defaults);
                            booleans as 0/1
  cfg/{c}/f32               1 when run with float32 parameters and grads
  cfg/{c}/skip_param, skip_step   that parameter has grad None at that step
  cfg/{c}/after/s{k}/p{i}   parameters after step k
  cfg/{c}/nstate            number of state tensors at the end
  cfg/{c}/state/state.{i}.{key}   state tensors at the end (step as a 0-d)
  nsched, sched/{j}/kind (0 StepLR, 1 CosineAnnealingLR), lr, period,
  gamma or eta_min, sched/{j}/lrs (get_last_lr() at epochs 0..len-1)
"""
import sys

import h5py
import numpy as np
import torch

torch.manual_seed(0)
SHAPES = [(3, 4), (5,), (2, 3, 2)]
NSTEPS = 5
SCALES = [1.0, 0.3, 2.0, 0.1, 0.5]  # varying magnitudes so AMSGrad's max matters

init = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
grads = [[torch.randn(s, dtype=torch.float64) * SCALES[k] for s in SHAPES] for k in range(NSTEPS)]

KINDS = {"SGD": 0, "Adam": 1, "AdamW": 2, "Adadelta": 3, "RMSprop": 4}
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), dict(f32=1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), amsgrad=True)),
    ("Adam", dict(lr=0.05, eps=1e-3, maximize=True)),
    ("Adam", dict(lr=0.1), dict(skip_param=1, skip_step=2)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.01), dict(f32=1)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adadelta", dict(), dict(f32=1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5), dict(skip_param=0, skip_step=1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9), dict(f32=1)),
]

SCHEDULERS = [
    (0, 0.1, 3, 0.5, 20),     # StepLR(step_size=3, gamma=0.5)
    (0, 0.05, 1, 0.9, 20),    # StepLR(step_size=1, gamma=0.9)
    (1, 0.1, 10, 0.0, 25),    # CosineAnnealingLR(T_max=10), past the restart at epoch 11
    (1, 0.05, 7, 0.001, 30),  # CosineAnnealingLR(T_max=7, eta_min=0.001)
    (1, 0.1, 3, 0.01, 20),    # CosineAnnealingLR(T_max=3, eta_min=0.01)
]


def run(f, c, kind, opts, extra):
    g = f.create_group("cfg/%d" % c)
    g["kind"] = KINDS[kind]
    for k, v in opts.items():
        if k == "betas":
            g["beta1"], g["beta2"] = v
        else:
            g[k] = float(v)
    for k, v in extra.items():
        g[k] = v
    dtype = torch.float32 if extra.get("f32") else torch.float64
    params = [p.clone().to(dtype).requires_grad_(True) for p in init]
    opt = getattr(torch.optim, kind)(params, foreach=False, **opts)
    for k in range(NSTEPS):
        opt.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            if extra.get("skip_step") == k and extra.get("skip_param") == i:
                continue
            p.grad = grads[k][i].to(dtype)
        opt.step()
        for i, p in enumerate(params):
            g["after/s%d/p%d" % (k, i)] = p.detach().double().numpy()
    n = 0
    for i, p in enumerate(params):
        for key, v in opt.state[p].items():
            if v is None:  # SGD without momentum keeps momentum_buffer = None
                continue
            val = v.detach().double().numpy() if torch.is_tensor(v) else np.float64(v)
            g["state/state.%d.%s" % (i, key)] = val
            n += 1
    g["nstate"] = n


def main():
    with h5py.File(sys.argv[1], "w") as f:
        f["nsteps"], f["nparams"], f["ncfg"] = NSTEPS, len(SHAPES), len(CONFIGS)
        for i, p in enumerate(init):
            f["init/p%d" % i] = p.numpy()
        for k in range(NSTEPS):
            for i in range(len(SHAPES)):
                f["grads/s%d/p%d" % (k, i)] = grads[k][i].numpy()
        for c, cfg in enumerate(CONFIGS):
            run(f, c, cfg[0], cfg[1], cfg[2] if len(cfg) > 2 else {})
        f["nsched"] = len(SCHEDULERS)
        for j, (kind, lr, period, arg, epochs) in enumerate(SCHEDULERS):
            p = torch.zeros(1, requires_grad=True)
            opt = torch.optim.SGD([p], lr=lr)
            if kind == 0:
                s = torch.optim.lr_scheduler.StepLR(opt, step_size=period, gamma=arg)
            else:
                s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=period, eta_min=arg)
            lrs = [s.get_last_lr()[0]]
            for _ in range(epochs - 1):
                opt.step()  # no grads: a no-op that keeps PyTorch's order (optimizer, then scheduler)
                s.step()
                lrs.append(s.get_last_lr()[0])
            g = f.create_group("sched/%d" % j)
            g["kind"], g["lr"], g["period"] = kind, lr, period
            g["gamma" if kind == 0 else "eta_min"] = arg
            g["lrs"] = np.array(lrs, dtype=np.float64)


if __name__ == "__main__":
    main()
