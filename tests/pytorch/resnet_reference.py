"""PyTorch twin of tests/test_resnet.c: the Fashion-MNIST residual net of
tools/fashion_resnet.py (its own FashionResNet, optimizer and schedule, so
the test proves mnist_train --model resnet is that net and recipe).

Writes two files: <out> and, beside it, resnet_state.h5, the initial
state_dict (float64, one dataset per key, the layout nb_module_load_hdf5
reads strictly: its keys must be nabla's). In <out>, in float64:
  x1, y1, x2, y2        two training batches (8 images, 1x28x28)
  step1/logits, loss    training-mode forward of x1 from the initial weights
  step1/grad/<key>      every parameter's gradient of that loss
  step1/param/<key>     every state entry after one SGD step (recipe's groups,
                        lr 0.01 = the warm-up's first), BN buffers included
  step2/...             the same for x2 after step 1 (momentum buffers used)
  eval/logits           evaluation-mode logits of x1 after step 2
  lrs/<steps>_<epochs>  the schedule's lrs, [1 + steps * epochs, 2 groups],
                        from creation on, with steps batches per epoch
"""
import os
import sys

import h5py
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from fashion_resnet import FashionResNet, make_optimizer, make_scheduler  # noqa: E402

out_path = sys.argv[1]
torch.manual_seed(0)
model = FashionResNet(16).double()
with h5py.File(os.path.join(os.path.dirname(out_path), "resnet_state.h5"), "w") as f:
    for k, v in model.state_dict().items():
        f.create_dataset(k, data=v.numpy())

out = h5py.File(out_path, "w")
opt = make_optimizer(model, 0.1)
sched = make_scheduler(opt, 4, 3)
params = dict(model.named_parameters())
for step in (1, 2):
    x = torch.randn(8, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    out[f"x{step}"], out[f"y{step}"] = x.numpy(), y.numpy()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    out[f"step{step}/logits"], out[f"step{step}/loss"] = logits.detach().numpy(), loss.item()
    for k, p in params.items():
        out[f"step{step}/grad/{k}"] = p.grad.numpy()
    opt.step()
    sched.step()
    for k, v in model.state_dict().items():
        out[f"step{step}/param/{k}"] = v.numpy()
model.eval()
with torch.no_grad():
    out["eval/logits"] = model(torch.from_numpy(out["x1"][()])).numpy()

# The schedule alone, over 3 epochs of steps batches (and one epoch: the
# cosine's T_max of at least one step), on a model's two groups, stepped as
# often as the trainer steps it.
for steps, epochs in ((3, 3), (5, 1)):
    o = make_optimizer(FashionResNet(2), 0.1)
    s = make_scheduler(o, steps, epochs)
    lrs = [[g["lr"] for g in o.param_groups]]
    for _ in range(steps * epochs):
        o.step()
        s.step()
        lrs.append([g["lr"] for g in o.param_groups])
    out[f"lrs/{steps}_{epochs}"] = torch.tensor(lrs, dtype=torch.float64).numpy()
out.close()
