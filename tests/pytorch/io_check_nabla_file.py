"""Loads an HDF5 file written by nabla into the PyTorch twin of the test net
(tests/pytorch/io_reference.py) with the three-line h5py idiom in reverse and
load_state_dict(strict=True); then checks every tensor equals the reference
file's. Exit 0 on success. argv: nabla_file reference_file"""
import sys

import h5py
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from io_reference import Net  # noqa: E402

net = Net()
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["format"] in (b"nabla-state-dict", "nabla-state-dict"), f.attrs["format"]
    assert int(f.attrs["format_version"]) == 1
    sd = {k: torch.from_numpy(f[k][()]) if f[k].shape else torch.tensor(f[k][()]) for k in f.keys()}
net.load_state_dict(sd, strict=True)
with h5py.File(sys.argv[2], "r") as f:
    for k, v in net.state_dict().items():
        ref = torch.tensor(f[k][()])
        assert torch.equal(v, ref), k
print("nabla file loads in PyTorch: OK")
