"""What the benchmark drivers (conv2d_run.py, mnist_run.py) share: one run's
record (machine description, load before / during / after), starting the
nabla and PyTorch processes with the same thread count, and the result file
bench/results/<bench>-<UTC date>-<commit>[-dirty].json."""
import json
import os
import subprocess
import sys

import machine
import torch_runtime

PYTHON = "/usr/bin/python3"  # Debian's, with torch (python3 on PATH may lack it)
SCHEMA = 1


class Run:
    """One benchmark run: describes the machine first (the FMA probe runs
    before anything else loads the cores), then samples the load while the
    benchmark processes run."""

    def __init__(self, bench, build, threads, torch_blas="openmp"):
        self.bench, self.build, self.threads, self.torch_blas = bench, build, threads, torch_blas
        self.load_before = machine.loadavg()
        self.idle_before = machine.runnable_now()
        self.machine = machine.describe(build, threads)
        self.sampler = machine.LoadSampler().start()
        self.pytorch_runtime = {}

    def nabla(self, argv, threads, cwd=None):
        """Runs a nabla benchmark process with `threads` threads; its stdout."""
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.sampler.expected = threads + 1
        return self._run(argv, env, cwd)

    def pytorch(self, argv, threads, allocator, cwd=None):
        """Runs a PyTorch benchmark script (under Debian's python3) with
        `threads` threads and `allocator`; returns its JSON lines after the
        runtime line, which it checks: the allocator asked for is the one
        loaded, and the BLAS is an optimized one."""
        env = torch_runtime.child_env(threads, allocator, self.torch_blas)
        self.sampler.expected = threads + 1
        out = self._run([PYTHON, *argv], env, cwd)
        lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        if not lines or "runtime" not in lines[0]:
            sys.exit(f"{argv[0]}: no runtime line in its output")
        rt = lines[0]["runtime"]
        if rt["allocator"] != allocator:
            sys.exit(f"{argv[0]}: asked for {allocator}, the process runs {rt['allocator']}")
        if self.torch_blas != "system" and f"openblas-{self.torch_blas}/" not in " ".join(rt["blas"]["files"]):
            sys.exit(f"{argv[0]}: asked for OpenBLAS's {self.torch_blas} build, the process loaded {rt['blas']['files']}")
        if not rt["blas"]["optimized"]:
            sys.exit(f"{argv[0]}: libtorch loaded {rt['blas']['kind']} {rt['blas']['files']}: not what a PyTorch "
                     "user has. Run bench/setup.sh (OpenBLAS) and check "
                     "`update-alternatives --display libblas.so.3-x86_64-linux-gnu`.")
        self.pytorch_runtime.setdefault(allocator, {})[str(threads)] = rt
        return lines[1:]

    def _run(self, argv, env, cwd):
        r = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(map(str, argv))}: exited with {r.returncode}")
        return r.stdout

    def finish(self, settings, results):
        """The run's record (not yet written)."""
        during = self.sampler.stop()
        settings = dict(settings, torch_blas=self.torch_blas)
        return {"benchmark": self.bench, "schema": SCHEMA, "machine": self.machine, "settings": settings,
                "load": {"before": self.load_before, "idle_before": self.idle_before, "during": during,
                         "after": machine.loadavg()},
                "pytorch_runtime": self.pytorch_runtime, "results": results}


def header_lines(record):
    """The lines above every table: machine, load, build, and each PyTorch process's runtime."""
    lines = machine.summary_lines(record["machine"], record["load"])
    for alloc, by_t in record["pytorch_runtime"].items():
        for t, rt in by_t.items():
            lines.append(f"PyTorch + {alloc}, {t} thread(s): {torch_runtime.describe(rt)}")
    return lines


def result_path(bench, record, out=None):
    """bench/results/<bench>-<date>-<commit>[-dirty].json unless `out` is given."""
    if out:
        return out
    m = record["machine"]
    stamp = m["date_utc"].replace("-", "").replace(":", "")
    git = m["git"]
    name = f"{bench}-{stamp}-{git['short'] or 'nogit'}{'-dirty' if git['dirty'] else ''}.json"
    return os.path.join(machine.ROOT, "bench", "results", name)


def write(record, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec=".2f", none="-"):
    return none if v is None else format(v, spec)
