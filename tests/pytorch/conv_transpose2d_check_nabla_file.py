"""Loads the ConvTranspose2d state nabla wrote (nb_module_save_hdf5) into the
module of tests/pytorch/conv_transpose2d_reference.py (module_roundtrip) with
load_state_dict(strict=True), then checks every tensor equals the one in
PyTorch's own file, which nabla loaded before saving. Exit 0 on success.
argv: nabla's file, PyTorch's state file."""
import sys

import h5py
import torch


def read(path):
    with h5py.File(path, "r") as f:
        return f.attrs.get("format"), {k: torch.from_numpy(f[k][()]) for k in f.keys()}


nabla_file, torch_file = sys.argv[1:3]
fmt, sd = read(nabla_file)
assert fmt in (b"nabla-state-dict", "nabla-state-dict"), fmt
m = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))
m.load_state_dict(sd, strict=True)
_, ref = read(torch_file)
for k, v in m.state_dict().items():
    assert v.dtype == ref[k].dtype and torch.equal(v, ref[k]), k
print("ConvTranspose2d: nabla's file loads in PyTorch: OK")
