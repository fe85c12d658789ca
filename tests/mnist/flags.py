"""Bad flags and failing files (issue 14): every bad value is one line naming
its flag, the value and what is expected, then a one-line hint to --help
(no usage dump), exit status 2; --eval-only needs --load; a file that
cannot be read or written is named with its flag, exit status 1, and
(under the ASan build) nothing leaks on any of these exits."""
from common import args, no_sanitizer_report, run

binary, data, work = args()
tiny = ["--data", data, "--model", "small", "--limit-train", 64, "--limit-test", 50, "--epochs", 1, "--threads", 1]

bad_values = [
    ("--epochs", "abc", "an integer in [1, 1000]"), ("--epochs", "0", "an integer in [1, 1000]"),
    ("--epochs", "1001", "an integer in [1, 1000]"), ("--lr", "x", "a number >= 0"), ("--lr", "nan", "a number >= 0"),
    ("--threads", "0", "an integer in [1, 1024]"), ("--batch-size", "-3", "a positive integer"),
    ("--test-batch-size", "1e3", "a positive integer"), ("--seed", "1.5", "an integer >= 0"),
    ("--model", "vgg", "default, small or resnet"), ("--optimizer", "lbfgs", "adadelta, sgd, adam, adamw or rmsprop"),
    ("--gamma", "0", "a number > 0"), ("--momentum", "-1", "a number >= 0"), ("--weight-decay", "w", "a number >= 0"),
    ("--limit-train", "99999999999999999999", "a positive integer"), ("--limit-test", "", "a positive integer"),
    ("--width", "0", "an integer in [1, 1024]"),
]
for flag, value, expected in bad_values:
    rc, out, err = run(binary, work, "--data", data, flag, value)
    lines = err.strip().splitlines()
    assert rc == 2, f"{flag} {value!r}: exit status {rc}\n{err}"
    assert lines[0] == f"mnist_train: {flag}: invalid value '{value}' (expected {expected})", f"{flag}:\n{err}"
    assert len(lines) == 2 and "--help" in lines[1], f"{flag}: more than a message and a hint:\n{err}"
    no_sanitizer_report(err, flag)
print(f"ok: {len(bad_values)} bad values")

for argv, expected in ((["--bogus"], "unknown option '--bogus'"), (["--epochs"], "--epochs needs a value"),
                       (["stray"], "unexpected argument 'stray'"), (["--width", "8"], "--width applies to --model resnet"),
                       (["--eval-only"], "--eval-only needs --load")):
    rc, out, err = run(binary, work, *argv)
    assert rc == 2 and expected in err and len(err.strip().splitlines()) <= 2, f"{argv}: {rc}\n{err}"
    assert "usage:" not in err, err
rc, out, err = run(binary, work, "--help")
assert rc == 0 and out.startswith("usage:") and "fewer threads can be faster" in out, f"{rc}\n{out}\n{err}"
print("ok: unknown options, --eval-only, --help")

# Files: each named with its flag; exit status 1 after freeing everything.
for argv, expected in ((["--data", f"{work}/nodata"], f"--data {work}/nodata"),
                       ([*tiny, "--load", "nope.h5"], "--load nope.h5: "),
                       ([*tiny, "--eval-only", "--load", "nope.h5"], "--load nope.h5: "),
                       ([*tiny, "--save", f"{work}/nodir/w.h5"], f"--save {work}/nodir/w.h5: "),
                       ([*tiny, "--checkpoint", f"{work}/nodir/ck.h5"], f"--checkpoint {work}/nodir/ck.h5: "),
                       ([*tiny, "--dump-logits", f"{work}/nodir/l.h5"], f"--dump-logits {work}/nodir/l.h5: ")):
    rc, out, err = run(binary, work, *argv)
    no_sanitizer_report(err, expected)
    assert rc == 1 and expected in err, f"{argv}: exit status {rc}\n{err}"
    print(f"ok: {expected}")
rc, out, err = run(binary, work, *tiny, "--metrics", f"{work}/nodir/m.csv", "--plot", f"{work}/nodir/p.svg")
assert rc == 0 and f"--metrics {work}/nodir/m.csv: cannot write" in err and f"--plot {work}/nodir/p.svg" in err, err
assert "metrics:" not in out, f"claims the files it could not write:\n{out}"
print("OK")
