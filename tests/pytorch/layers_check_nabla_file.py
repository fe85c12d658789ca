"""Loads a module's state written by nabla (nb_module_save_hdf5) into the
PyTorch module of tests/pytorch/layers_reference.py with the h5py idiom in
reverse and load_state_dict(strict=True), then checks every tensor equals the
one in PyTorch's own file (which nabla loaded before saving). Exit 0 on
success. argv: triples of module key, nabla file, PyTorch's state file."""
import sys

import h5py
import torch
import torch.nn as nn

MODULES = {
    "groupnorm": lambda: nn.GroupNorm(3, 6),
    "layernorm": lambda: nn.LayerNorm((3, 4)),
    "batchnorm1d": lambda: nn.BatchNorm1d(5),
    "embedding": lambda: nn.Embedding(10, 3, padding_idx=0),
}


def read(path):
    with h5py.File(path, "r") as f:
        return f.attrs.get("format"), {k: torch.from_numpy(f[k][()]) if f[k].shape else torch.tensor(f[k][()])
                                       for k in f.keys()}


args = sys.argv[1:]
assert args and len(args) % 3 == 0, "expected triples: key nabla_file torch_file"
for i in range(0, len(args), 3):
    key, nabla_file, torch_file = args[i:i + 3]
    fmt, sd = read(nabla_file)
    assert fmt in (b"nabla-state-dict", "nabla-state-dict"), fmt
    m = MODULES[key]()
    m.load_state_dict(sd, strict=True)
    _, ref = read(torch_file)
    for k, v in m.state_dict().items():
        assert v.dtype == ref[k].dtype and torch.equal(v, ref[k]), (key, k)
    print("%s: nabla's file loads in PyTorch: OK" % key)
