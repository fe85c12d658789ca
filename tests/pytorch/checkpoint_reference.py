"""PyTorch twin of tests/test_checkpoint.c: a training checkpoint written by
PyTorch in nabla's checkpoint layout (nabla/checkpoint.h), and where training
goes from it, to argv[1].

A float64 nn.Linear(4, 3) trained with Adam (lr 0.1, weight_decay 0.01) and
StepLR(step_size 2, gamma 0.5) on MSE for NBEFORE steps; then the file gets
  model.weight, model.bias                       model.state_dict()
  optimizer.state.{i}.{step,exp_avg,exp_avg_sq}  optimizer.state_dict()['state']
  optimizer.param_groups.0.{lr,betas}            its param_groups' hyper-parameters
  scheduler.{last_epoch,_step_count,base_lrs,_last_lr}   scheduler.state_dict()
  x [8, 4], y [8, 3]                             the batch every step uses
and training goes on for NAFTER steps:
  after.weight, after.bias, after.lr             the parameters and lr then
"""
import sys

import h5py
import numpy as np
import torch

NBEFORE, NAFTER = 3, 4
torch.manual_seed(0)
net = torch.nn.Linear(4, 3).double()
x = torch.randn(8, 4, dtype=torch.float64)
y = torch.randn(8, 3, dtype=torch.float64)
opt = torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.01)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)


def step():
    opt.zero_grad()
    torch.nn.functional.mse_loss(net(x), y).backward()
    opt.step()
    sched.step()


for _ in range(NBEFORE):
    step()

with h5py.File(sys.argv[1], "w") as f:
    for k, v in net.state_dict().items():
        f.create_dataset(f"model.{k}", data=v.numpy())
    osd = opt.state_dict()
    for i, st in osd["state"].items():
        for key, v in st.items():
            f.create_dataset(f"optimizer.state.{i}.{key}", data=np.asarray(v))  # step: a 0-d float32 tensor
    for g, group in enumerate(osd["param_groups"]):
        f.create_dataset(f"optimizer.param_groups.{g}.lr", data=np.float64(group["lr"]))
        f.create_dataset(f"optimizer.param_groups.{g}.betas", data=np.array(group["betas"], dtype=np.float64))
    ssd = sched.state_dict()
    for key in ("last_epoch", "_step_count"):
        f.create_dataset(f"scheduler.{key}", data=np.float64(ssd[key]))
    for key in ("base_lrs", "_last_lr"):
        f.create_dataset(f"scheduler.{key}", data=np.array(ssd[key], dtype=np.float64))
    f.create_dataset("x", data=x.numpy())
    f.create_dataset("y", data=y.numpy())
    for _ in range(NAFTER):
        step()
    f.create_dataset("after.weight", data=net.weight.detach().numpy())
    f.create_dataset("after.bias", data=net.bias.detach().numpy())
    f.create_dataset("after.lr", data=np.float64(opt.param_groups[0]["lr"]))
    f.create_dataset("nafter", data=np.int64(NAFTER))
