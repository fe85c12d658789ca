"""What a person sees (issue 14): on a terminal (a pty of 120, 60 and 24
columns) the progress line is redrawn in place and never reaches the last
column (so it never wraps or scrolls; a narrow terminal gets a shorter bar,
a tiny one none), the header fits 120 columns, an epoch's time is shown
once; the plot has 1-2-5 ticks, a title naming model and dataset, and the
per-batch training loss kept across --resume."""
import fcntl
import math
import os
import pty
import re
import struct
import subprocess
import termios

from common import args, train

binary, data, work = args()
tiny = ["--data", data, "--model", "small", "--limit-train", 640, "--limit-test", 100, "--threads", 2]


def on_terminal(columns, *flags):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    p = subprocess.Popen([binary, *map(str, flags)], cwd=work, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    assert p.wait() == 0, f"{columns} columns: exit status {p.returncode}\n{b''.join(chunks).decode()}"
    return b"".join(chunks).decode().replace("\x1b[K", "")


def check(columns, bar_expected):
    out = on_terminal(columns, *tiny, "--epochs", 1, "--metrics", "t.csv", "--plot", "t.svg")
    lines = out.replace("\r\n", "\n").split("\n")
    redraws = [seg for line in lines for seg in line.split("\r")[1:] if seg.startswith("epoch 1/1 ") and "train loss" not in seg]
    assert redraws, f"{columns} columns: no progress line redrawn in place:\n{out}"
    for seg in redraws:
        assert len(seg) <= columns - 1, f"{columns} columns: a progress line of {len(seg)}: {seg!r}"
        assert ("[" in seg) == bar_expected, f"{columns} columns: bar {'missing' if bar_expected else 'present'}: {seg!r}"
    assert not [l for l in lines if l.startswith("epoch 1/1 [")], f"{columns} columns: a progress line scrolled:\n{out}"
    finish = [l.split("\r")[-1] for l in lines if "train loss" in l]
    assert len(finish) == 1 and re.fullmatch(r"epoch 1/1  train loss \d+\.\d{4}  \d+ img/s  (\d+\.\d s|\d+:\d\d)", finish[0]), finish
    return lines, redraws


lines, redraws = check(120, True)
wide = [l for l in lines if len(l.split("\r")[-1]) > 119]
assert not wide, f"lines wider than 120 columns: {wide}"
_, narrow = check(60, True)
assert max(len(s) for s in narrow) < max(len(s) for s in redraws), "the bar did not shrink at 60 columns"
check(24, False)
print("ok: progress at 120, 60 and 24 columns")

# The plot, over a resumed run: both epochs' per-batch losses.
train(binary, data, work, *tiny, "--epochs", 1, "--checkpoint", "ck.h5", name="one")
train(binary, data, work, *tiny, "--epochs", 2, "--resume", "ck.h5", name="two")
svg = open(f"{work}/two.svg").read()
assert "nabla: small on MNIST</text>" in svg, svg[:400]
curve = re.search(r"<polyline fill='none' stroke='#9ecae1'[^>]*points='([^']*)'", svg)
assert curve and len(curve.group(1).split()) == 2 * 10, "the per-batch curve lacks points (10 batches x 2 epochs)"


def ticks(x):
    """The y-axis labels of the panel whose labels end at x."""
    return [float(v) for v in re.findall(rf"<text x='{x}' [^>]*text-anchor='end'>(-?[\d.]+)</text>", svg)]


def nice(values, what):
    assert len(values) >= 3, f"{what}: {values}"
    steps = {round(b - a, 9) for a, b in zip(values, values[1:])}
    assert len(steps) == 1, f"{what}: uneven ticks {values}"
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1, 2, 5), f"{what}: step {step} is not 1, 2 or 5 times a power of ten ({values})"
    assert all(abs(v / step - round(v / step)) < 1e-6 for v in values), f"{what}: ticks off the step: {values}"


nice(ticks("66.0"), "loss axis")
nice(ticks("526.0"), "accuracy axis")
assert not re.search(r">\d+\.\d{5,}</text>", svg), "an unrounded tick label"
print("ok: plot")

fashion = "/usr/share/datasets/fashion-mnist"
if os.path.isdir(fashion):
    train(binary, fashion, work, "--fashion", "--data", fashion, "--model", "resnet", "--width", 4, "--limit-train", 64,
          "--limit-test", 50, "--batch-size", 32, "--epochs", 1, "--threads", 2, name="fashion")
    assert "nabla: resnet on Fashion-MNIST</text>" in open(f"{work}/fashion.svg").read()
    print("ok: Fashion-MNIST title")
print("OK")
