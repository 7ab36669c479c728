#!/usr/bin/env python3
"""A tiny training run for the hawf demo: fits y = 3x - 1 by gradient descent on
synthetic data generated in-process (no downloads), then leaves what a reviewer
needs in $HAWF_CHECKPOINT_DIR: metrics.json, report.md and the model itself.

    train.py LR EPOCHS [MODEL.json]    (MODEL.json: resume from that model)"""

import json
import os
import random
import sys

lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
out = os.environ.get("HAWF_CHECKPOINT_DIR", ".")

rng = random.Random(42)
data = [(x, 3 * x - 1 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(512))]
w = b = 0.0
if len(sys.argv) > 3:
    with open(sys.argv[3]) as f:
        model = json.load(f)
    w, b = model["w"], model["b"]
    print("resumed from %s (w %.3f, b %.3f), learning rate %g" % (sys.argv[3], w, b, lr), flush=True)
history = []
for epoch in range(1, epochs + 1):
    gw = gb = 0.0
    for x, y in data:
        err = w * x + b - y
        gw += 2 * err * x
        gb += 2 * err
    w -= lr * gw / len(data)
    b -= lr * gb / len(data)
    loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
    history.append(round(loss, 6))
    print("epoch %2d  loss %.4f" % (epoch, loss), flush=True)

with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"epochs": epochs, "lr": lr, "loss": history[-1], "loss_history": history}, f, indent=2)
with open(os.path.join(out, "model.json"), "w") as f:
    json.dump({"w": w, "b": b}, f)
with open(os.path.join(out, "report.md"), "w") as f:
    f.write("# Evaluation after %d epochs\n\n" % epochs)
    f.write("| metric | value |\n|---|---|\n| learning rate | %g |\n| loss (MSE) | %.4f |\n" % (lr, history[-1]))
    back = min(5, len(history) - 1)  # a short run compares with its first epoch
    f.write("| loss %d epoch%s ago | %.4f |\n| w, b | %.3f, %.3f (target 3, -1) |\n\n"
            % (back, "" if back == 1 else "s", history[-1 - back], w, b))
    f.write("Loss is still falling, slowly: continue, perhaps with a higher learning rate.\n")
