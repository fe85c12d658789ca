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
  cfg/{c}/group1/{option}   when present: params 0 and 1 are group 0, param 2
                            is group 1 with these options changed
  cfg/{c}/onecycle/{arg}    when present: a OneCycleLR (max_lr, total_steps,
                            and the options given) stepped after each step
  cfg/{c}/after/s{k}/p{i}   parameters after step k
  cfg/{c}/nstate            number of state_dict entries at the end
  cfg/{c}/state/state.{i}.{key}   state tensors at the end (step as a 0-d)
  cfg/{c}/state/param_groups.{g}.{lr,momentum,betas}   hyper-parameters at the end
  nsched, sched/{j}/...     learning-rate schedules: see SCHEDULES below
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
    # two parameter groups: group 1 (param 2) with its own lr, weight decay, ...
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), dict(group1=dict(lr=0.02, weight_decay=0.0))),
    ("SGD", dict(lr=0.1, weight_decay=0.05), dict(group1=dict(momentum=0.8, nesterov=True), f32=1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1), dict(group1=dict(lr=0.01, weight_decay=0.0, amsgrad=True))),
    ("Adam", dict(lr=0.05), dict(group1=dict(betas=(0.5, 0.9), eps=1e-4), f32=1)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1), dict(group1=dict(lr=0.2, weight_decay=0.0))),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1), dict(group1=dict(lr=1.0, rho=0.5, weight_decay=0.0))),
    ("RMSprop", dict(lr=0.01, momentum=0.9), dict(group1=dict(lr=0.05, momentum=0.0, centered=True,
                                                              weight_decay=0.1))),
    ("RMSprop", dict(lr=0.01), dict(group1=dict(alpha=0.5, momentum=0.3), f32=1)),
    # a OneCycleLR stepped with the optimizer: cycles SGD's momentum (0 at
    # creation: the momentum buffer appears at the first step), Adam's beta1
    ("SGD", dict(lr=0.1), dict(group1=dict(lr=0.3, weight_decay=0.1), onecycle=dict(max_lr=1.0, total_steps=6))),
    ("Adam", dict(lr=0.1), dict(onecycle=dict(max_lr=0.5, total_steps=5, anneal_strategy=1, three_phase=1))),
    ("RMSprop", dict(lr=0.01, momentum=0.5), dict(onecycle=dict(max_lr=0.1, total_steps=8, base_momentum=0.6))),
]

ANNEAL = ["cos", "linear"]

def write_options(g, opts):
    for k, v in opts.items():
        if k == "betas":
            g["beta1"], g["beta2"] = v
        else:
            g[k] = float(v)


def one_cycle_kwargs(args):
    kw = dict(args)
    if "anneal_strategy" in kw:
        kw["anneal_strategy"] = ANNEAL[kw["anneal_strategy"]]
    for k in ("three_phase", "cycle_momentum"):
        if k in kw:
            kw[k] = bool(kw[k])
    return kw


def write_state(g, opt):
    """PyTorch's state_dict: state by parameter index, then the groups'
    hyper-parameters that schedulers change."""
    sd = opt.state_dict()
    n = 0
    for i, st in sd["state"].items():
        for key, v in st.items():
            if v is None:  # SGD without momentum keeps momentum_buffer = None
                continue
            val = v.detach().double().numpy() if torch.is_tensor(v) else np.float64(v)
            g["state/state.%d.%s" % (i, key)] = val
            n += 1
    for gi, grp in enumerate(sd["param_groups"]):
        for key in ("lr", "momentum", "betas"):
            if key in grp:
                g["state/param_groups.%d.%s" % (gi, key)] = np.array(grp[key], dtype=np.float64)
                n += 1
    g["nstate"] = n


def run(f, c, kind, opts, extra):
    g = f.create_group("cfg/%d" % c)
    g["kind"] = KINDS[kind]
    write_options(g, opts)
    for k, v in extra.items():
        if k in ("group1", "onecycle"):
            write_options(g.create_group(k), v)
        else:
            g[k] = v
    dtype = torch.float32 if extra.get("f32") else torch.float64
    params = [p.clone().to(dtype).requires_grad_(True) for p in init]
    if "group1" in extra:
        groups = [{"params": params[:2]}, dict(params=params[2:], **extra["group1"])]
    else:
        groups = params
    opt = getattr(torch.optim, kind)(groups, foreach=False, **opts)
    sched = None
    if "onecycle" in extra:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, **one_cycle_kwargs(extra["onecycle"]))
    for k in range(NSTEPS):
        opt.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            if extra.get("skip_step") == k and extra.get("skip_param") == i:
                continue
            p.grad = grads[k][i].to(dtype)
        opt.step()
        if sched:
            sched.step()
        for i, p in enumerate(params):
            g["after/s%d/p%d" % (k, i)] = p.detach().double().numpy()
    write_state(g, opt)


# Learning-rate schedules: an SGD (or the optimizer named) over one or two
# parameter groups, the scheduler built from its spec, get_last_lr() and the
# groups' momentum (SGD, RMSprop) or beta1 (Adam) after creation and after
# each step. sched/{j}: opt (0 SGD, 1 Adam, 2 Adadelta), lrs [G], momentum (if
# given), epochs, lrs_out [epochs, G], moms_out [epochs, G], metrics [epochs]
# (ReduceLROnPlateau: the metric of each step, from the second row on),
# spec/... : kind (SCHED_KINDS) and its arguments; SequentialLR's schedulers in
# spec/child/{i}/..., its milestones in spec/milestones.
SCHED_KINDS = {"StepLR": 0, "CosineAnnealingLR": 1, "MultiStepLR": 2, "LinearLR": 3, "OneCycleLR": 4,
               "SequentialLR": 5, "ReduceLROnPlateau": 6, "ExponentialLR": 7, "ConstantLR": 8}
OPTS = {"SGD": 0, "Adam": 1, "Adadelta": 2}
PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.9, 0.92, 0.91, 0.7, 0.71, 0.72, 0.73, 0.69995, 0.74, 0.75, 0.6, 0.61, 0.62,
                   0.63, 0.64, 0.65, 0.66, 0.3, 0.31, 0.32, 0.33, 0.34]
SCHEDULES = [
    ("SGD", [0.1], {}, ("StepLR", dict(step_size=3, gamma=0.5)), 20),
    ("SGD", [0.05], {}, ("StepLR", dict(step_size=1, gamma=0.9)), 20),
    ("SGD", [0.1], {}, ("CosineAnnealingLR", dict(T_max=10)), 25),  # past the restart at epoch 11
    ("SGD", [0.05], {}, ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)), 30),
    ("SGD", [0.1], {}, ("CosineAnnealingLR", dict(T_max=3, eta_min=0.01)), 20),
    ("SGD", [0.1, 0.02], {}, ("StepLR", dict(step_size=4, gamma=0.3)), 15),
    ("SGD", [0.1, 0.02], {}, ("CosineAnnealingLR", dict(T_max=9, eta_min=0.001)), 30),
    ("SGD", [0.1, 0.02], {}, ("MultiStepLR", dict(milestones=[12, 3, 7, 7], gamma=0.3)), 20),
    ("SGD", [0.1], {}, ("MultiStepLR", dict(milestones=[0, 2])), 6),
    ("SGD", [0.1, 0.02], {}, ("LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=6)), 12),
    ("SGD", [0.1, 0.02], {}, ("LinearLR", dict(start_factor=1.0, end_factor=0.25, total_iters=5)), 10),
    ("SGD", [0.3], {}, ("LinearLR", dict(start_factor=1.0 / 3, end_factor=1.0, total_iters=5)), 8),
    ("SGD", [0.1, 0.02], dict(momentum=0.9), ("OneCycleLR", dict(max_lr=1.0, total_steps=25)), 26),
    ("SGD", [0.1, 0.02], {}, ("OneCycleLR", dict(max_lr=[1.0, 0.3], total_steps=40, pct_start=0.25,
                                                 anneal_strategy=1, div_factor=10.0, final_div_factor=100.0,
                                                 base_momentum=0.8, max_momentum=0.9)), 41),
    ("Adam", [0.1, 0.02], {}, ("OneCycleLR", dict(max_lr=0.5, total_steps=30, three_phase=1)), 31),
    ("Adadelta", [1.0, 0.5], {}, ("OneCycleLR", dict(max_lr=2.0, total_steps=12, cycle_momentum=0)), 13),
    ("SGD", [0.1, 0.02], dict(momentum=0.9),
     ("SequentialLR", dict(schedulers=[("LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=5)),
                                       ("CosineAnnealingLR", dict(T_max=15))], milestones=[5])), 25),
    ("SGD", [0.1, 0.02], {},
     ("SequentialLR", dict(schedulers=[("StepLR", dict(step_size=2, gamma=0.5)),
                                       ("MultiStepLR", dict(milestones=[1, 3], gamma=0.1)),
                                       ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01))], milestones=[4, 9])), 22),
    ("SGD", [0.1], {},
     ("SequentialLR", dict(schedulers=[("CosineAnnealingLR", dict(T_max=4, eta_min=0.02)),
                                       ("LinearLR", dict(start_factor=0.5, end_factor=1.0, total_iters=3))],
                           milestones=[6])), 14),
    ("SGD", [0.1, 0.02], dict(momentum=0.9),
     ("SequentialLR", dict(schedulers=[("OneCycleLR", dict(max_lr=1.0, total_steps=10)),
                                       ("StepLR", dict(step_size=2, gamma=0.5))], milestones=[8])), 16),
    ("SGD", [0.1, 0.02], {}, ("ExponentialLR", dict(gamma=0.9)), 15),
    ("SGD", [0.1, 0.02], {}, ("ConstantLR", dict(factor=0.3, total_iters=4)), 8),
    ("SGD", [0.3], {}, ("ConstantLR", dict(factor=1.0 / 3, total_iters=5)), 8),
    ("SGD", [0.1, 0.02], {},
     ("SequentialLR", dict(schedulers=[("ConstantLR", dict(factor=0.1, total_iters=10)),
                                       ("ExponentialLR", dict(gamma=0.8))], milestones=[3])), 10),
    ("SGD", [0.1, 0.02], {}, ("ReduceLROnPlateau", dict(patience=2)), 25),
    ("SGD", [0.1, 0.02], {}, ("ReduceLROnPlateau", dict(mode=1, factor=0.5, patience=1, threshold=0.05,
                                                        threshold_mode=1, cooldown=2, min_lr=[0.02, 0.001])), 25),
    ("SGD", [0.1, 1e-8], {}, ("ReduceLROnPlateau", dict(factor=0.2, patience=0, min_lr=0.005, eps=1e-3)), 25),
]


def build_scheduler(opt, spec):
    name, args = spec
    cls = getattr(torch.optim.lr_scheduler, name)
    if name == "SequentialLR":
        kids = [build_scheduler(opt, c) for c in args["schedulers"]]
        return cls(opt, kids, milestones=args["milestones"])
    if name == "OneCycleLR":
        return cls(opt, **one_cycle_kwargs(args))
    if name == "ReduceLROnPlateau":
        kw = dict(args)
        if "mode" in kw:
            kw["mode"] = ["min", "max"][kw["mode"]]
        if "threshold_mode" in kw:
            kw["threshold_mode"] = ["rel", "abs"][kw["threshold_mode"]]
        return cls(opt, **kw)
    return cls(opt, **args)


def write_spec(g, spec):
    name, args = spec
    g["kind"] = SCHED_KINDS[name]
    for k, v in args.items():
        if k == "schedulers":
            for i, c in enumerate(v):
                write_spec(g.create_group("child/%d" % i), c)
        elif isinstance(v, list):
            g[k] = np.array(v, dtype=np.float64)
        else:
            g[k] = float(v)


def momenta(opt):
    return [grp["betas"][0] if "betas" in grp else grp.get("momentum", np.nan) for grp in opt.param_groups]


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
        f["nsched"] = len(SCHEDULES)
        for j, (oname, lrs, okw, spec, epochs) in enumerate(SCHEDULES):
            ps = [torch.zeros(1, requires_grad=True) for _ in lrs]
            opt = getattr(torch.optim, oname)([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], **okw)
            s = build_scheduler(opt, spec)
            plateau = spec[0] == "ReduceLROnPlateau"
            out_lr = [[grp["lr"] for grp in opt.param_groups]]
            out_mom = [momenta(opt)]
            for e in range(1, epochs):
                opt.step()  # no grads: a no-op that keeps PyTorch's order (optimizer, then scheduler)
                if plateau:
                    s.step(PLATEAU_METRICS[e])
                else:
                    s.step()
                out_lr.append([grp["lr"] for grp in opt.param_groups] if plateau else list(s.get_last_lr()))
                out_mom.append(momenta(opt))
            g = f.create_group("sched/%d" % j)
            g["opt"], g["lrs"], g["epochs"] = OPTS[oname], np.array(lrs, dtype=np.float64), epochs
            if "momentum" in okw:
                g["momentum"] = okw["momentum"]
            write_spec(g.create_group("spec"), spec)
            g["lrs_out"] = np.array(out_lr, dtype=np.float64)
            g["moms_out"] = np.array(out_mom, dtype=np.float64)
            if plateau:
                g["metrics"] = np.array(PLATEAU_METRICS[:epochs], dtype=np.float64)


if __name__ == "__main__":
    main()
