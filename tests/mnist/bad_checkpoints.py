"""--resume with crafted or damaged checkpoints (issue 14): each fails with
exit status 1 and a message naming --resume and what is wrong, writes no
metrics or plot, and (under the ASan build) leaks nothing; the checksum
catches a flipped bit and deleted entries; the trainer's own checks catch
what a correct checksum lets through (edits whose checksum the test
rewrites, with an implementation of its own of the documented sum). A
finished run says so and exits 0 without training. A save removes the
temporaries of killed writers, and only those."""
import os
import shutil
import subprocess

import numpy as np

from common import args, edit_checkpoint, no_sanitizer_report, run, train

binary, data, work = args()
base = ["--data", data, "--model", "small", "--limit-train", 256, "--limit-test", 100, "--threads", 2]
train(binary, data, work, *base, "--epochs", 1, "--checkpoint", "good.h5", name="first")


def resume(path, *extra):
    for f in ("m.csv", "p.svg"):
        if os.path.exists(f"{work}/{f}"):
            os.remove(f"{work}/{f}")
    return run(binary, work, *base, "--epochs", 2, "--resume", path, "--metrics", "m.csv", "--plot", "p.svg", *extra)


def crafted(name, edit, fix_checksum=True):
    path = f"{work}/{name}.h5"
    shutil.copy(f"{work}/good.h5", path)
    edit_checkpoint(path, edit, fix_checksum)
    return f"{name}.h5"


def must_fail(path, expected, *extra):
    rc, out, err = resume(path, *extra)
    what = f"{path} ({expected})"
    no_sanitizer_report(err, what)
    assert rc == 1, f"{what}: exit status {rc}\n{out}\n{err}"
    assert "--resume" in err and expected in err, f"{what}: message:\n{err}"
    assert not err.rstrip().endswith(":"), f"{what}: the message ends at a colon:\n{err}"
    for f in ("m.csv", "p.svg"):
        assert not os.path.exists(f"{work}/{f}"), f"{what}: {f} was written"
    assert "epoch 2/2" not in out, f"{what}: it trained:\n{out}"
    print(f"ok: {what}")


def put(f, name, value):
    if name in f:
        del f[name]
    f[name] = value


# The Python checksum agrees with the C one: an edit that changes nothing resumes.
rc, out, err = resume(crafted("same", lambda f: None))
assert rc == 0 and "resumed from same.h5 after epoch 1" in out, f"{rc}\n{out}\n{err}"
no_sanitizer_report(err, "same")

# The trainer's own entries (with a correct checksum).
metrics = lambda rows: np.array([[i + 1, 0.5, 0.5, 50.0, 1.0] for i in range(rows)])
must_fail(crafted("rows1000", lambda f: put(f, "metrics", metrics(1000))), "metrics: expected shape [1, 5], file has [1000, 5]")
must_fail(crafted("epoch1000", lambda f: (put(f, "epoch", np.int64(1000)), put(f, "metrics", metrics(1000)))),
          "--epochs 2: checkpoint 'epoch1000.h5' has 1000 epochs done already")
must_fail(crafted("epoch1e12", lambda f: put(f, "epoch", np.int64(10**12))), "epoch 1000000000000 is not in [1, 1000]")
must_fail(crafted("epochneg", lambda f: put(f, "epoch", np.int64(-5))), "epoch -5 is not in [1, 1000]")
must_fail(crafted("epochshape", lambda f: put(f, "epoch", np.array([1, 1], dtype=np.int64))), "epoch: expected shape []")
must_fail(crafted("rowepoch", lambda f: put(f, "metrics", np.array([[7, 0.5, 0.5, 50.0, 1.0]]))), "metrics row 0 has epoch 7")
must_fail(crafted("accuracy", lambda f: put(f, "metrics", np.array([[1, 0.5, 0.5, 150.0, 1.0]]))), "test accuracy 150%")
must_fail(crafted("curve", lambda f: put(f, "loss_curve", np.zeros((1, 3)))), "loss_curve: expected shape [1, 4], file has [1, 3]")
must_fail(crafted("curveneg", lambda f: put(f, "loss_curve", -np.ones((1, 4)))), "loss_curve element 0 is negative")
must_fail(crafted("noseed", lambda f: f.__delitem__("data.shuffle_seed")), "data.shuffle_seed")
must_fail(crafted("noepoch", lambda f: f.__delitem__("epoch")), "epoch")
# The run's flags.
must_fail("good.h5", "written with --batch-size 64, this run has --batch-size 32", "--batch-size", 32)
must_fail("good.h5", "written with --optimizer adadelta, this run has --optimizer sgd", "--optimizer", "sgd")
must_fail("good.h5", "written with --seed 1, this run has --seed 2", "--seed", 2)
must_fail("good.h5", "this run has --limit-train (training images) 200", "--limit-train", 200)
rc, out, err = run(binary, work, *base[:2], "--model", "default", *base[4:], "--epochs", 2, "--resume", "good.h5")
assert rc == 1 and "written with --model small, this run has --model default" in err, err

# The library's: a missing model key is named; a state entry gone, a whole
# parameter's state gone, a flipped bit, no checksum.
must_fail(crafted("nokey", lambda f: f.__delitem__("model.fc2.bias")), "missing key model.fc2.bias")
must_fail(crafted("partial", lambda f: f.__delitem__("optimizer.state.0.square_avg")), "lacks optimizer.state.0.square_avg")


def drop_state(f, i):
    for k in [k for k in f.keys() if k.startswith(f"optimizer.state.{i}.")]:
        del f[k]


must_fail(crafted("nostate", lambda f: drop_state(f, 3), fix_checksum=False), "checksum mismatch")
must_fail(crafted("allstate", lambda f: [drop_state(f, i) for i in range(8)], fix_checksum=False), "checksum mismatch")


def flip(f):
    w = f["model.conv1.weight"][()]
    w.view(np.uint32)[0, 0, 0, 0] ^= 1 << 4
    f["model.conv1.weight"][...] = w


must_fail(crafted("bitflip", flip, fix_checksum=False), "checksum mismatch")
must_fail(crafted("added", lambda f: put(f, "notes", np.float64(1)), fix_checksum=False), "checksum mismatch")
must_fail(crafted("nosum", lambda f: f.__delitem__("checkpoint.checksum"), fix_checksum=False), "no checkpoint.checksum")
must_fail("nonexistent.h5", "nonexistent.h5")

# A finished run: says so, exits 0, trains nothing, writes no metrics or plot (but --save, if asked).
rc, out, err = run(binary, work, *base, "--epochs", 1, "--resume", "good.h5", "--metrics", "f.csv", "--plot", "f.svg",
                   "--save", "f.h5")
no_sanitizer_report(err, "finished")
assert rc == 0, f"finished run: exit status {rc}\n{out}\n{err}"
assert "all 1 epochs are done already" in out and "nothing to train" in out, out
assert "epoch 1/1" not in out and "final test accuracy" not in out and "metrics:" not in out, out
assert not os.path.exists(f"{work}/f.csv") and not os.path.exists(f"{work}/f.svg")
assert "saved weights to f.h5" in out and os.path.exists(f"{work}/f.h5"), out
print("ok: finished run")

# Temporaries: a dead writer's goes, a live one's and other names stay.
dead = subprocess.Popen(["true"])
dead.wait()
names = {f"ck.h5.tmp.{dead.pid}": False, f"ck.h5.tmp.{os.getpid()}": True, f"other.h5.tmp.{dead.pid}": True,
         f"ck.h5.tmp.{dead.pid}.x": True}
for n in names:
    open(f"{work}/{n}", "wb").write(b"partial")
train(binary, data, work, *base, "--epochs", 1, "--checkpoint", "ck.h5", name="tmp")
for n, stays in names.items():
    assert os.path.exists(f"{work}/{n}") == stays, f"{n}: {'removed' if stays else 'left behind'}"
assert not [n for n in os.listdir(work) if n.startswith("ck.h5.tmp.") and n not in names], os.listdir(work)
print("ok: stale temporaries")
print("OK")
