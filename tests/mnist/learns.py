"""The small net learns: on 4,000 training images for 2 epochs the training
loss falls and held-out accuracy clears 90% (chance is 10%)."""
import csv

from common import args, train

binary, data, work = args()
out = train(binary, data, work, "--model", "small", "--epochs", 2, "--limit-train", 4000, "--limit-test", 2000,
            "--optimizer", "adadelta", "--lr", 1.0)
rows = list(csv.DictReader(open(f"{work}/run.csv")))
assert [r["epoch"] for r in rows] == ["1", "2"], rows
l1, l2 = float(rows[0]["train_loss"]), float(rows[1]["train_loss"])
acc = float(rows[1]["test_accuracy"])
print(f"train loss {l1:.4f} -> {l2:.4f}, held-out accuracy {acc:.2f}%")
assert l2 < l1, "training loss did not fall"
assert acc >= 90.0, f"accuracy {acc} below 90%"
assert "final test accuracy" in out and "confusion matrix" in out
svg = open(f"{work}/run.svg").read()
assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "polyline" in svg
print("OK")
