#!/usr/bin/python3
"""Export a PyTorch checkpoint or state_dict to nabla's HDF5 format: one
dataset per state_dict key at the file root, plus nabla's format attributes.

  /usr/bin/python3 tools/export_hdf5.py model.pt weights.h5

model.pt may hold a state_dict, a dict with a "model" / "state_dict" entry,
or a whole nn.Module (torch.save(model)). Run with Debian's /usr/bin/python3
(python3-torch, python3-h5py)."""
import sys

import h5py
import torch


def state_dict_of(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        return obj
    raise SystemExit(f"export_hdf5: don't know how to find a state_dict in a {type(obj).__name__}")


def export(state_dict, path):
    """Write state_dict to path the way PyTorch users do, plus nabla's attributes."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "nabla-state-dict"
        f.attrs["format_version"] = 1
        for k, v in state_dict.items():
            f.create_dataset(k, data=v.detach().cpu().numpy())


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    obj = torch.load(sys.argv[1], map_location="cpu")
    export(state_dict_of(obj), sys.argv[2])
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
