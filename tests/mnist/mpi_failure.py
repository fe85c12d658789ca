"""A rank that dies mid-training ends the whole job with a non-zero status
and a message naming it, instead of leaving the others blocked in an
all-reduce. Rank 1 of 2 is killed (SIGKILL) or exits with status 1 at step
3 (MNIST_DIST_DIE_AT_STEP); the run would otherwise take hundreds of steps,
and rank 0 would write never.h5 at its end. How long it takes is printed,
not judged (it depends on the machine's load); the timeout is a hang guard.
argv: mnist_train, data dir, work dir, mpirun."""
import os
import subprocess
import sys
import time

from common import args

binary, data, work = args()
mpirun = [sys.argv[4], "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"]
flags = ["--data", data, "--model", "small", "--limit-train", 20000, "--limit-test", 100, "--epochs", 1,
         "--batch-size", 16, "--threads", 1, "--save", "never.h5"]

for how, expect in (("kill", "signal 9"), ("exit", "non-zero status")):
    env = dict(os.environ, MNIST_DIST_DIE_AT_STEP="3", MNIST_DIST_DIE_HOW=how)
    t0 = time.time()
    try:
        r = subprocess.run([*mpirun, "-np", "2", binary, *map(str, flags)], cwd=work, env=env, capture_output=True,
                           text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"FAILED ({how}): the job hung after rank 1 died")
    secs = time.time() - t0
    out = r.stdout + r.stderr
    print(f"{how}: exit status {r.returncode} after {secs:.1f} s")
    assert r.returncode != 0, f"{how}: the job exited 0\n{out}"
    assert "rank 1 dying at step 3" in out, out
    assert expect in out, f"{how}: no '{expect}' in the output:\n{out}"
    assert not os.path.exists(f"{work}/never.h5"), "rank 0 finished training despite the dead peer"
print("OK")
