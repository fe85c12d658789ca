"""Resuming from epoch 1's checkpoint gives bitwise the weights of an
uninterrupted 2-epoch run (model, optimizer state, scheduler, RNGs and the
shuffle's seed restored); a run at 1, 2 and 3 threads gives bitwise the same
weights, and so does one whose loader prepares batches without prefetch."""
import os

from common import args, assert_bitwise_equal, train

binary, data, work = args()
common = ["--model", "small", "--limit-train", 1500, "--limit-test", 500, "--optimizer", "adadelta"]
train(binary, data, work, *common, "--epochs", 2, "--save", "straight.h5", "--threads", 2, name="straight")
train(binary, data, work, *common, "--epochs", 1, "--checkpoint", "ck.h5", "--threads", 2, name="first")
out = train(binary, data, work, *common, "--epochs", 2, "--resume", "ck.h5", "--save", "resumed.h5", "--threads", 2,
            name="second")
assert "resumed from ck.h5 after epoch 1" in out, out
assert_bitwise_equal(f"{work}/straight.h5", f"{work}/resumed.h5", "resume")
print("resume: bitwise identical")

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
