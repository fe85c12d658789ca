"""The machine and build a benchmark ran on, recorded in every result file
(bench/results/*.json) so that two runs can be compared honestly
(bench/compare.py): CPU model and flags, core count, caches, the measured FMA
peak (bench/fma_peak.c), load average, date, git commit and dirty flag, the
nabla build, and nabla's CPU kernel path when known.

Run alone it prints the description as JSON:
    /usr/bin/python3 bench/machine.py [BUILD_DIR]"""
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# CPU flags that decide which kernels can run (nabla's and PyTorch's); the
# full list is too long to be read in a result file.
FLAGS_OF_INTEREST = ["sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512dq", "avx512cd", "avx512bw",
                     "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "hypervisor"]

# Environment variables that change how either side runs; recorded as found
# in the benchmark's own environment (the PyTorch child gets its own, see
# torch_runtime.py).
ENV_OF_INTEREST = ["OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OMP_PROC_BIND", "OMP_PLACES", "GOMP_SPINCOUNT",
                   "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "LD_PRELOAD", "MALLOC_CONF", "GLIBC_TUNABLES", "ATEN_CPU_CAPABILITY"]


def cpuinfo():
    """Model name, family/model/stepping and the flags of the first CPU in /proc/cpuinfo."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                k, _, v = line.partition(":")
                info[k.strip()] = v.strip()
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {
        "model": info.get("model name", platform.processor() or "unknown"),
        "vendor": info.get("vendor_id"),
        "family_model_stepping": "/".join(info.get(k, "?") for k in ("cpu family", "model", "stepping")),
        "flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "logical_cpus": os.cpu_count(),
        "caches": caches(),
    }


def caches():
    """Cache sizes of cpu0 from sysfs, e.g. {"L1d": "48K", "L2": "2048K", "L3": "..."}."""
    out, base = {}, "/sys/devices/system/cpu/cpu0/cache"
    try:
        for d in sorted(os.listdir(base)):
            if not d.startswith("index"):
                continue
            rd = lambda name: open(os.path.join(base, d, name)).read().strip()
            kind = rd("type")
            out["L" + rd("level") + {"Data": "d", "Instruction": "i"}.get(kind, "")] = rd("size")
    except OSError:
        pass
    return out


def loadavg():
    """The 1, 5 and 15-minute load averages and the instantaneous count of runnable tasks."""
    with open("/proc/loadavg") as f:
        p = f.read().split()
    return {"1min": float(p[0]), "5min": float(p[1]), "15min": float(p[2]), "running": int(p[3].split("/")[0])}


class LoadSampler:
    """Samples /proc/loadavg's count of runnable tasks every `period` seconds
    while a benchmark runs. The count includes the benchmark's own threads
    (up to its thread count) and this sampler (1) at the moment it reads, so
    a quiet machine shows running <= threads + 1; `excess` is the mean count
    above that, i.e. other work competing for the cores."""

    def __init__(self, period=0.5):
        self.period, self.samples, self.expected = period, [], 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.period):
            self.samples.append((loadavg()["running"], self.expected))

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        if not self.samples:
            return {"samples": 0}
        excess = [max(0, r - e) for r, e in self.samples]
        return {"samples": len(self.samples), "max_running": max(r for r, _ in self.samples),
                "mean_excess": round(sum(excess) / len(excess), 3), "max_excess": max(excess)}


def git_state(tree=ROOT):
    """Commit, branch and whether tracked files differ from it (untracked files do not count)."""
    def git(*args):
        r = subprocess.run(["git", "-C", tree, *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "short": commit[:10] if commit else None,
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "subject": git("log", "-1", "--format=%s"),
            "dirty": bool(status) if status is not None else None}


def build_state(build):
    """nabla's build options from BUILD/CMakeCache.txt (a Debug or sanitizer build is not a benchmark)."""
    want = ("CMAKE_BUILD_TYPE", "NB_NATIVE", "NB_SANITIZE", "CMAKE_C_COMPILER", "CMAKE_C_FLAGS_RELEASE",
            "CMAKE_HOME_DIRECTORY")
    out = {"dir": os.path.abspath(build)}
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                name = k.split(":")[0]
                if name in want:
                    out[name] = v
    except OSError:
        out["error"] = "no CMakeCache.txt"
    cc = out.get("CMAKE_C_COMPILER")
    if cc:
        r = subprocess.run([cc, "--version"], capture_output=True, text=True)
        out["compiler"] = r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else cc
    return out


def nabla_kernels(build):
    """The kernel set nabla runs here (nb_cpu_kernels(): avx512, avx2 or
    portable; NB_CPU in the environment may ask for another), as the bench
    binary of that build reports it."""
    exe = os.path.join(build, "bench", "conv2d_bench")
    try:
        r = subprocess.run([exe, "--cpu-kernels"], capture_output=True, text=True)
    except OSError as e:
        return {"value": None, "source": f"{exe}: {e}"}
    if r.returncode != 0 or not r.stdout.strip():
        return {"value": None, "source": f"{exe} --cpu-kernels failed (a build older than nb_cpu_kernels?)"}
    return {"value": r.stdout.strip(), "source": f"{exe} --cpu-kernels"}


def fma_peak(build, threads, seconds=0.2, repeats=5):
    """Runs bench/fma_peak at the given thread counts; its JSON, or an error entry.
    The probe of these scripts' own build (ROOT/build) comes first: a --build
    of an older checkout may predate the probe."""
    exes = [os.path.join(ROOT, "build", "bench", "fma_peak"), os.path.join(build, "bench", "fma_peak")]
    exe = next((e for e in exes if os.access(e, os.X_OK)), None)
    if not exe:
        return {"error": f"fma_peak not built ({' or '.join(exes)})"}
    r = subprocess.run([exe, "-s", str(seconds), "-r", str(repeats), *map(str, threads)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip() or f"fma_peak exited with {r.returncode}"}
    return dict(json.loads(r.stdout), probe=exe)


def peak_at(peak, threads):
    """The best measured FMA peak (GFLOP/s, any vector width) at `threads`, or None."""
    v = (peak or {}).get("best", {}).get(str(threads))
    return float(v) if v else None


def describe(build, threads, fma_seconds=0.2):
    """Everything about the machine that a result file records, measured now.
    "git" is the source tree the nabla build came from (so a build of another
    checkout, --build ../before/build, records that checkout's commit);
    "bench_git" is the checkout these scripts ran from."""
    b = build_state(build)
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "cpu": cpuinfo(),
        "fma_peak": fma_peak(build, threads, fma_seconds),
        "git": git_state(b.get("CMAKE_HOME_DIRECTORY", ROOT)),
        "bench_git": git_state(),
        "build": b,
        "nabla_cpu_kernels": nabla_kernels(build),
        "environment": {k: os.environ[k] for k in ENV_OF_INTEREST if k in os.environ},
    }


def runnable_now(seconds=2.0, period=0.1):
    """Other runnable tasks right now: /proc/loadavg's runnable count sampled
    for `seconds`, less this process (which is running when it reads).
    Unlike the load average it does not remember a benchmark that just ended."""
    s = LoadSampler(period)
    s.start()
    time.sleep(seconds)
    return s.stop()


# A run is flagged as taken on a busy machine when other tasks were
# runnable, on average, more than this often (sampled just before it and
# while it ran). The 1-minute load average before the run is recorded too
# but only noted: it also remembers this benchmark's previous run.
BUSY_MEAN_EXCESS = 0.25
NOTE_LOAD_BEFORE = 0.5


def busy_reasons(load):
    """Why a run's load record (before / during / after) says the machine was busy; empty if quiet."""
    why = []
    for when, label in (("idle_before", "just before"), ("during", "during")):
        v = load.get(when, {}).get("mean_excess")
        if v is not None and v > BUSY_MEAN_EXCESS:
            why.append(f"{v:.2f} other runnable tasks on average {label} the run (> {BUSY_MEAN_EXCESS})")
    return why


def summary_lines(m, load):
    """The header every table prints: what ran where, and how busy the machine was."""
    load_before, load_after, sampler = load["before"], load["after"], load["during"]
    cpu, peak, git = m["cpu"], m["fma_peak"], m["git"]
    widths = ", ".join(f"{isa} " + " / ".join(f"{v:.0f}" for v in by_t.values())
                       for isa, by_t in peak.get("gflops", {}).items())
    threads = " / ".join(peak.get("best", {}).keys())
    lines = [
        f"machine: {cpu['model']} ({cpu['logical_cpus']} logical CPUs; {' '.join(cpu['flags'])})",
        f"FMA peak float32 GFLOP/s at {threads} thread(s): {widths or peak.get('error', peak.get('note'))}",
        f"nabla: commit {git['short']}{' (dirty)' if git['dirty'] else ''} {git['subject']!r}, "
        f"build {m['build'].get('CMAKE_BUILD_TYPE')}, CPU kernels: {m['nabla_cpu_kernels']['value'] or 'unknown'}",
        f"load average before {load_before['1min']:.2f} {load_before['5min']:.2f} {load_before['15min']:.2f}, "
        f"after {load_after['1min']:.2f} {load_after['5min']:.2f} {load_after['15min']:.2f}; other runnable tasks "
        f"just before the run: mean {load.get('idle_before', {}).get('mean_excess', '?')}, during it: mean "
        f"{sampler.get('mean_excess', '?')}, max {sampler.get('max_excess', '?')}",
        f"date {m['date_utc']}",
    ]
    bg = m.get("bench_git") or {}
    if bg.get("commit") and bg.get("commit") != git.get("commit"):
        lines.insert(3, f"bench scripts: commit {bg['short']}{' (dirty)' if bg['dirty'] else ''} (nabla built from "
                        f"{m['build'].get('CMAKE_HOME_DIRECTORY')})")
    why = busy_reasons(load)
    if why:
        lines.append("WARNING: machine busy (" + "; ".join(why) + "): timings are not comparable")
    elif load_before["1min"] > NOTE_LOAD_BEFORE:
        lines.append(f"note: load average {load_before['1min']:.2f} before the run, but nothing else was runnable "
                     "(a previous run ending?)")
    if m["build"].get("CMAKE_BUILD_TYPE") != "Release" or m["build"].get("NB_SANITIZE", "OFF") not in ("OFF", ""):
        lines.append("WARNING: nabla is not a plain Release build; these figures are not a benchmark")
    return lines


if __name__ == "__main__":
    print(json.dumps(describe(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"), [1, 2]),
                     indent=1))
