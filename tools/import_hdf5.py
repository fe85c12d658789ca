#!/usr/bin/python3
"""Load nabla's HDF5 weights into a PyTorch model (load_state_dict, strict).

  /usr/bin/python3 tools/import_hdf5.py weights.h5 model.pt [--model default|small]

writes a PyTorch state_dict (torch.save) for tools/mnist_nets.py's net.
Nested files (groups conv1/weight) are accepted too."""
import argparse
import sys

import h5py
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from mnist_nets import NETS  # noqa: E402


def read_state_dict(path):
    """Every dataset in the file as a tensor, keyed by its name ('/' read as '.')."""
    sd = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                sd[name.replace("/", ".")] = torch.as_tensor(obj[()])
        f.visititems(visit)
    return sd


def load_into(model, path):
    model.load_state_dict(read_state_dict(path), strict=True)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("out")
    p.add_argument("--model", default="default", choices=sorted(NETS))
    a = p.parse_args()
    model = load_into(NETS[a.model](), a.weights)
    torch.save(model.state_dict(), a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
