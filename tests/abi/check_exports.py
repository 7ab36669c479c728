#!/usr/bin/env python3
"""nm -D of the plugin shows only what Slurm looks up: the four plugin_* /
spank_plugin_version data symbols and slurm_spank_* callbacks."""
import re
import subprocess
import sys

ALLOWED = {"plugin_name", "plugin_type", "plugin_version", "spank_plugin_version"}

out = subprocess.run(["nm", "-D", "--defined-only", sys.argv[1]], check=True, capture_output=True, text=True).stdout
names = [line.split()[-1] for line in out.splitlines() if line.strip()]
extra = [n for n in names if n not in ALLOWED and not re.fullmatch(r"slurm_spank_\w+", n)]
missing = ALLOWED - set(names)
if extra or missing:
    print("unexpected exports: %s; missing: %s" % (extra, sorted(missing)))
    sys.exit(1)
print("ok: %s" % " ".join(names))
