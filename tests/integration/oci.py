"""Slurm's native OCI containers for the tests and the demo: a rootless runc bundle
made here from what the machine has (no download), and the oci.conf that runs runc
behind hawf-oci-run, as spank-hawf(8) tells a site to.

    oci.py bundle --user USER --dir DIR [--host-usr] [--bind PATH]...   make an OCI bundle in DIR
    oci.py conf --etc DIR --wrapper PATH --state DIR --user USER...   write DIR/oci.conf

A bundle's rootfs is busybox-static and its applets (the tests: no host tool can
help a task), or, with --host-usr, the host's /usr bound read-only (the demo: its
Python). Its hostname is HOSTNAME, so a task can tell it ran inside: without
oci.conf Slurm runs a --container task on the host without a word."""

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys

HOSTNAME = "hawfbox"
APPLETS = ("sh", "cat", "ls", "hostname", "sleep", "test", "sed", "echo", "env", "grep", "id", "mkdir", "[")
RUNC = shutil.which("runc")
BUSYBOX = shutil.which("busybox")


def _chown_tree(path, owner):
    entry = pwd.getpwnam(owner)
    for top, dirs, files in os.walk(path):
        for name in [top] + [os.path.join(top, n) for n in dirs + files]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)


def make_rootfs(path, owner, host_usr=False, extra_files=()):
    """A minimal root filesystem owned by OWNER (a rootless runc, running as the
    job's user, makes the bind mount points in it); EXTRA_FILES are copied into /hawf."""
    for sub in ("usr", "proc", "dev", "sys", "tmp", "etc", "hawf"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    if host_usr:  # merged /usr, as Debian 12: the rest are links into it
        for link in ("bin", "sbin", "lib", "lib64"):
            os.symlink("usr/" + link, os.path.join(path, link))
    else:
        for sub in ("bin", "usr/bin"):
            os.makedirs(os.path.join(path, sub))
        shutil.copy(BUSYBOX, os.path.join(path, "bin", "busybox"))
        for applet in APPLETS:
            for sub in ("bin", "usr/bin"):
                os.symlink("/bin/busybox", os.path.join(path, sub, applet))
    for extra in extra_files:
        shutil.copy(extra, os.path.join(path, "hawf"))
    _chown_tree(path, owner)


def make_bundle(path, owner, host_usr=False, extra_files=(), binds=()):
    """An OCI bundle for OWNER in PATH: `runc spec --rootless`, OWNER mapped to root
    inside, hostname HOSTNAME, a tmpfs /tmp, BINDS (host directories at the same
    path), and its rootfs/."""
    os.makedirs(path)
    make_rootfs(os.path.join(path, "rootfs"), owner, host_usr, extra_files)
    subprocess.run([RUNC, "spec", "--rootless"], cwd=path, check=True)
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    entry = pwd.getpwnam(owner)
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": entry.pw_uid, "size": 1}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": entry.pw_gid, "size": 1}]
    config["process"]["terminal"] = False
    config["hostname"] = HOSTNAME
    config["root"] = {"path": "rootfs", "readonly": False}
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "mode=1777"]})
    if host_usr:
        config["mounts"].append({"destination": "/usr", "type": "none", "source": "/usr",
                                 "options": ["rbind", "ro", "nosuid", "nodev"]})
    for bind in binds:
        config["mounts"].append({"destination": bind, "type": "none", "source": bind,
                                 "options": ["rbind", "rw", "nosuid", "nodev"]})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    os.chmod(path, 0o755)
    os.chmod(os.path.join(path, "config.json"), 0o644)


def write_oci_conf(etc, wrapper, state, users):
    """ETC/oci.conf (beside slurm.conf): runc with its state under STATE/<user>
    (made for each of USERS), run through WRAPPER (hawf-oci-run)."""
    os.makedirs(state, mode=0o755, exist_ok=True)
    for user in users:
        entry = pwd.getpwnam(user)
        os.makedirs(os.path.join(state, user), mode=0o700, exist_ok=True)
        os.chown(os.path.join(state, user), entry.pw_uid, entry.pw_gid)
    runc = "%s --root=%s/%%u" % (RUNC, state)
    name = "%n.%u.%j.%s.%t"
    with open(os.path.join(etc, "oci.conf"), "w") as f:
        f.write('RunTimeQuery="%s state %s"\n' % (runc, name))
        f.write('RunTimeKill="%s kill -a %s"\n' % (runc, name))
        f.write('RunTimeDelete="%s delete --force %s"\n' % (runc, name))
        f.write('RunTimeRun="exec %s %s run %s -b %%b"\n' % (wrapper, runc, name))


def _main(argv=None):
    parser = argparse.ArgumentParser(description="OCI bundles and oci.conf for a private Slurm cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    bundle = sub.add_parser("bundle", help="make an OCI bundle")
    bundle.add_argument("--dir", required=True)
    bundle.add_argument("--user", required=True)
    bundle.add_argument("--host-usr", action="store_true", help="bind the host's /usr read-only (Python)")
    bundle.add_argument("--bind", action="append", default=[], help="a host directory bound at the same path")
    conf = sub.add_parser("conf", help="write oci.conf")
    conf.add_argument("--etc", required=True, help="the directory of slurm.conf")
    conf.add_argument("--wrapper", required=True, help="hawf-oci-run")
    conf.add_argument("--state", required=True, help="runc's state directories")
    conf.add_argument("--user", action="append", required=True)
    args = parser.parse_args(argv)
    if args.command == "bundle":
        make_bundle(args.dir, args.user, args.host_usr, binds=args.bind)
    else:
        write_oci_conf(args.etc, args.wrapper, args.state, args.user)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
