#!/usr/bin/env python3
"""Waits for the decision at the checkpoint whose directory is $HAWF_CHECKPOINT_DIR
and returns it (a dict: choice, params with their types, comment, decided_by, ...):
for a task in a container without hawf's tools. hawf writes decision.json there
atomically once the checkpoint is decided, and removes it on --revoke."""
import json
import os
import time


def wait_decision(every=10.0, timeout=None):
    """The decision, once there is one; None if TIMEOUT seconds pass first."""
    path = os.path.join(os.environ["HAWF_CHECKPOINT_DIR"], "decision.json")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(every)


if __name__ == "__main__":
    decision = wait_decision(every=1.0)
    print(decision["choice"], json.dumps(decision["params"], sort_keys=True))
