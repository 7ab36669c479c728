#!/usr/bin/env python3
"""nm -D of the plugin shows only what Slurm looks up: the four plugin_* /
spank_plugin_version data symbols and slurm_spank_* callbacks; and of the engine
beside it (hawf_engine.so) only the hawf_engine_* functions the front looks up."""
import os
import re
import subprocess
import sys

ALLOWED = {"plugin_name", "plugin_type", "plugin_version", "spank_plugin_version"}


def exports(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True, capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


names = exports(sys.argv[1])
extra = [n for n in names if n not in ALLOWED and not re.fullmatch(r"slurm_spank_\w+", n)]
missing = ALLOWED - set(names)
engine = exports(os.path.join(os.path.dirname(sys.argv[1]), "hawf_engine.so"))
extra += [n for n in engine if not re.fullmatch(r"hawf_engine_\w+", n)]
if extra or missing or not engine:
    print("unexpected exports: %s; missing: %s" % (extra, sorted(missing) + ([] if engine else ["hawf_engine_*"])))
    sys.exit(1)
print("ok: %s; engine: %s" % (" ".join(names), " ".join(engine)))
