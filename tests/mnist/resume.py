"""Resuming from epoch 1's checkpoint gives bitwise the weights of an
uninterrupted 2-epoch run (model, optimizer state, scheduler, RNGs and the
shuffle's seed restored), for the small net and for the residual net's
recipe (parameter groups, a per-batch schedule, augmentation); a run at 1, 2 and 3 threads gives bitwise the same
weights, and so does one whose loader prepares batches without prefetch."""
import os

from common import args, assert_bitwise_equal, read_h5, train

binary, data, work = args()
common = ["--model", "small", "--limit-train", 1500, "--limit-test", 500, "--optimizer", "adadelta"]
train(binary, data, work, *common, "--epochs", 2, "--save", "straight.h5", "--threads", 2, name="straight")
train(binary, data, work, *common, "--epochs", 1, "--checkpoint", "ck.h5", "--threads", 2, name="first")
out = train(binary, data, work, *common, "--epochs", 2, "--resume", "ck.h5", "--save", "resumed.h5", "--threads", 2,
            name="second")
assert "resumed from ck.h5 after epoch 1" in out, out
assert_bitwise_equal(f"{work}/straight.h5", f"{work}/resumed.h5", "resume")
print("resume: bitwise identical")

# The residual net's recipe: two parameter groups (their param_groups entries),
# SGD momentum buffers, a SequentialLR stepped per batch, crop + flip. Epoch
# 1's checkpoint of a 1-epoch run serves a 2-epoch run: at the end of epoch 1
# the warm-up is over and the cosine is at its epoch 0, whatever its length.
rn = ["--model", "resnet", "--width", 4, "--limit-train", 320, "--limit-test", 100, "--batch-size", 64, "--threads", 2]
train(binary, data, work, *rn, "--epochs", 2, "--save", "rn_straight.h5", name="rn_straight")
train(binary, data, work, *rn, "--epochs", 1, "--checkpoint", "rn_ck.h5", name="rn_first")
ck = read_h5(f"{work}/rn_ck.h5")
assert "optimizer.param_groups.1.lr" in ck and "scheduler._schedulers.1.last_epoch" in ck, sorted(ck)
out = train(binary, data, work, *rn, "--epochs", 2, "--resume", "rn_ck.h5", "--save", "rn_resumed.h5", name="rn_second")
assert "resumed from rn_ck.h5 after epoch 1" in out, out
assert_bitwise_equal(f"{work}/rn_straight.h5", f"{work}/rn_resumed.h5", "resnet resume")
print("resnet resume: bitwise identical")

# Determinism across thread counts, with the default net's dropout too.
det = ["--model", "default", "--limit-train", 256, "--limit-test", 100, "--epochs", 1, "--batch-size", 32]
for t in (1, 2, 3):
    train(binary, data, work, *det, "--threads", t, "--save", f"t{t}.h5", name=f"t{t}")
assert_bitwise_equal(f"{work}/t1.h5", f"{work}/t2.h5", "threads 1 vs 2")
assert_bitwise_equal(f"{work}/t1.h5", f"{work}/t3.h5", "threads 1 vs 3")
print("threads 1, 2, 3: bitwise identical")
train(binary, data, work, *det, "--threads", 2, "--no-prefetch", "--save", "t2np.h5", name="t2np")
assert_bitwise_equal(f"{work}/t2.h5", f"{work}/t2np.h5", "prefetch vs none")
print("prefetch and none: bitwise identical")
print("OK")
