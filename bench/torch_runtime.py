"""PyTorch as its users run it on a CPU, for the benchmarks' PyTorch side.

Two halves:
* child_env(): the environment of a PyTorch benchmark process. The same
  thread count as nabla (OMP_NUM_THREADS, and OPENBLAS_NUM_THREADS: Debian's
  libtorch calls the BLAS through the generic interface, so it does not set
  OpenBLAS's own thread count, which otherwise defaults to every core);
  the BLAS: by default Debian's OpenMP build of OpenBLAS
  (libopenblas0-openmp), put first on LD_LIBRARY_PATH for this process only,
  so that OpenBLAS runs on libtorch's own OpenMP threads, as MKL does in
  PyTorch's pip wheels; the pthread build, which Debian's alternatives pick
  when both are installed, keeps worker threads of its own next to
  libtorch's and took 3.5x longer for the MNIST step at 2 threads (see
  bench/README.md). "system" leaves the choice to the alternatives;
  OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (a machine may set them to
  force an older kernel); and the allocator: "jemalloc" preloads Debian's
  libjemalloc2 with the configuration of PyTorch's CPU launcher
  (torch.backends.xeon.run_cpu: oversize_threshold:1, background_thread,
  metadata_thp) plus the long decay times Intel's PyTorch guides add, so big
  buffers are kept rather than returned to the kernel after every op; "glibc" is the
  default malloc, no preload, no tunables.
* report(threads), called inside that process after torch.set_num_threads:
  what actually runs, read from the process itself: the BLAS, LAPACK,
  allocator and oneDNN libraries mapped (/proc/self/maps), OpenBLAS's core
  and thread count, torch's build configuration and parallel settings, and
  a float32 GEMM's speed through torch.mm (a reference BLAS shows as a few
  GFLOP/s)."""
import glob
import os
import re
import subprocess
import time

ALLOCATORS = ("jemalloc", "glibc")
BLAS_CHOICES = ("openmp", "pthread", "system")
JEMALLOC_CONF = ("oversize_threshold:1,background_thread:true,metadata_thp:auto,"
                 "dirty_decay_ms:9000000000,muzzy_decay_ms:9000000000")
REMOVED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_PRELOAD", "MALLOC_CONF", "GLIBC_TUNABLES")


def jemalloc_path():
    """Path of libjemalloc.so.2 from the dynamic linker's cache (bench/setup.sh installs it), or None."""
    try:
        out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    m = re.search(r"libjemalloc\.so\.2 \(libc6,x86-64\) => (\S+)", out) or \
        re.search(r"libjemalloc\.so\.2 .*=> (\S+)", out)
    return m.group(1) if m else None


def openblas_dir(variant):
    """Debian's directory of one OpenBLAS build (openblas-openmp, openblas-pthread), or None."""
    hits = sorted(glob.glob(f"/usr/lib/*/openblas-{variant}/libblas.so.3"))
    return os.path.dirname(hits[0]) if hits else None


def child_env(threads, allocator, blas="openmp"):
    """Environment for a PyTorch benchmark process with `threads` threads, `allocator` and `blas`."""
    env = {k: v for k, v in os.environ.items() if k not in REMOVED}
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    if blas != "system":
        d = openblas_dir(blas)
        if not d:
            raise RuntimeError(f"Debian's libopenblas0-{blas} is not installed: run bench/setup.sh")
        env["LD_LIBRARY_PATH"] = d + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    if allocator == "jemalloc":
        lib = jemalloc_path()
        if not lib:
            raise RuntimeError("libjemalloc.so.2 not found: run bench/setup.sh")
        env["LD_PRELOAD"] = lib
        env["MALLOC_CONF"] = JEMALLOC_CONF
    elif allocator != "glibc":
        raise ValueError(f"unknown allocator {allocator!r}")
    return env


def mapped_libraries():
    """Paths of the shared objects mapped into this process."""
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()
            if len(p) >= 6 and ".so" in p[5] and p[5] not in seen:
                seen.append(p[5])
    return seen


def classify_blas(libs):
    """Which BLAS the process loaded: the mapped files that provide it and whether it is optimized."""
    blas = [l for l in libs if re.search(r"lib(open)?blas|libmkl|libblis|libatlas|libcblas|liblapack", l)]
    names = " ".join(os.path.basename(os.path.dirname(l)) + "/" + os.path.basename(l) for l in blas)
    if re.search(r"openblas", names):
        variant = re.search(r"openblas-(\w+)/", names)
        kind = "OpenBLAS" + (f" ({variant.group(1)} build)" if variant else "")
    elif re.search(r"mkl", names):
        kind = "MKL"
    elif re.search(r"blis", names):
        kind = "BLIS"
    elif re.search(r"atlas", names):
        kind = "ATLAS"
    elif re.search(r"blas/libblas", names):
        kind = "reference BLAS (libblas3)"
    else:
        kind = "unknown" if blas else "none mapped"
    return {"kind": kind, "optimized": kind.split()[0] in ("OpenBLAS", "MKL", "BLIS", "ATLAS"), "files": blas}


def openblas_info(blas_files):
    """OpenBLAS's own view (core kernel chosen, config, threads), through ctypes, if it is loaded."""
    import ctypes
    for path in blas_files:
        if "openblas" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"corename": lib.openblas_get_corename().decode(), "config": lib.openblas_get_config().decode(),
                    "num_threads": lib.openblas_get_num_threads()}
        except (OSError, AttributeError):
            continue
    return None


def allocator_in_use(libs):
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if any(f"lib{name}" in l for l in libs):
            return name
    return "glibc"


def config_essentials(torch):
    """The lines of torch.__config__.show() / parallel_info() that matter on a CPU."""
    show = torch.__config__.show()
    out = {"torch": torch.__version__}
    for key in ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP", "USE_MKL"):
        m = re.search(key + r"=([^,\s]+)", show)
        if m:
            out[key] = m.group(1)
    for pat, key in ((r"CPU capability usage: (\S+)", "cpu_capability"),
                     (r"(Intel\(R\) MKL-DNN v\S+|oneDNN v\S+)", "onednn")):
        m = re.search(pat, show)
        if m:
            out[key] = m.group(1)
    par = torch.__config__.parallel_info()
    m = re.search(r"ATen parallel backend: (\S+)", par)
    out["parallel_backend"] = m.group(1) if m else None
    out["num_threads"] = torch.get_num_threads()
    out["num_interop_threads"] = torch.get_num_interop_threads()
    return out


def gemm_gflops(torch, n=1024, repeats=3):
    """Best float32 GFLOP/s of torch.mm on n x n x n (the BLAS's speed as libtorch sees it)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return round(2.0 * n ** 3 / best / 1e9, 1)


def report(torch, threads):
    """What this PyTorch process runs with; call after torch.set_num_threads(threads)."""
    libs = mapped_libraries()
    blas = classify_blas(libs)
    return {
        "config": config_essentials(torch),
        "blas": blas,
        "openblas": openblas_info(blas["files"]),
        "onednn_files": [l for l in libs if "dnnl" in l],
        "allocator": allocator_in_use(libs),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_CONF", "LD_PRELOAD",
                                               "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "threads_requested": threads,
        "mm_1024_gflops": gemm_gflops(torch),
    }


def describe(rt):
    """One line for a table header."""
    c, ob = rt["config"], rt.get("openblas") or {}
    blas = rt["blas"]["kind"] + (f", core {ob['corename']}, {ob['num_threads']} thread(s)" if ob else "")
    return (f"PyTorch {c['torch']} ({c.get('BLAS_INFO')} BLAS interface, {c.get('onednn', 'no oneDNN')}, "
            f"CPU capability {c.get('cpu_capability')}, {c.get('parallel_backend')} with {c['num_threads']} thread(s)): "
            f"BLAS loaded {blas}, torch.mm 1024^3 {rt['mm_1024_gflops']} GFLOP/s, allocator {rt['allocator']}")
