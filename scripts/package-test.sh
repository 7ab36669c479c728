#!/bin/bash
# The install test: builds the Debian and RPM packages, checks what they hold,
# installs the .debs on this machine and runs the tests against the INSTALLED
# plugin and tools, not the build tree. Run as root on Debian 12 after
# scripts/install-deps.sh (CI: scripts/test.sh runs it last).
#
#   1. packages: packaging/build-deb.sh and packaging/build-rpm.sh (rpmbuild --nodeps
#      here) into build-pkg/; lintian (errors fail); contents, conffiles, the
#      Slurm release in versions and dependencies, hardening of every ELF file
#   2. rpm -qlp / -qcp / --requires of the RPMs
#   3. apt-get install ./hawf*.deb; man -l and groff -man -ww -z of every installed
#      page; Slurm's own plugstack.conf (include plugstack.conf.d/*.conf) loads the
#      installed plugin (srun --help shows --hawf-checkpoint); hawf doctor
#   4. the ABI tests and the integration suite, through ctest in build-installed/
#      configured with HAWF_TEST_PLUGIN/HAWF_TEST_BINDIR naming the installed files
#      (build/ is left alone); the demo with the installed files
#   5. bash completion: unit cases, then live on a private cluster with a real
#      pending checkpoint
# Idempotent: hawf packages installed before are purged first, and at the end
# (--keep leaves them installed for a look around).
#   scripts/package-test.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
keep=
[[ ${1-} == --keep ]] && keep=1
if [[ $(id -u) != 0 ]]; then
  echo "package-test.sh: run as root (it installs packages and starts a Slurm cluster)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive

out=$src/build-pkg
build=$src/build-installed
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
plugin=/usr/lib/$multiarch/slurm/hawf.so
bindir=/usr/bin
tools=(hawf hawf-decide hawf-await)
hawfd=/usr/sbin/hawfd
helper=/usr/libexec/hawf/hawf-step-helper  # the plugin's built-in path: no plugstack argument names it
unit=/lib/systemd/system/hawfd.service
pages=(man1/hawf.1 man1/hawf-decide.1 man1/hawf-await.1 man5/hawf.yaml.5 man5/hawf-flow.5 man8/hawfd.8 man8/spank-hawf.8)
completions=(hawf hawf-decide hawf-await)
slurm_hex=$(awk '$2 == "SLURM_VERSION_NUMBER" { print $3 }' /usr/include/slurm/slurm_version.h)
slurm_release=$(printf '%d.%02d' $((slurm_hex >> 16)) $(((slurm_hex >> 8) & 255)))

t0=$SECONDS
step_start=$SECONDS
timings=()
step() {
  if [[ -n ${step_name-} ]]; then timings+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")"); fi
  step_name=$1 step_start=$SECONDS
  printf '\n=== %s\n' "$1"
}
fail() {
  echo "package-test: FAIL: $*" >&2
  exit 1
}

work=$(mktemp -d /tmp/hawf-pkgtest.XXXXXX)
chmod 755 "$work"
purge() {
  local installed=()
  for p in hawf hawf-slurm-plugin; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed && installed+=("$p")
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx config-files && installed+=("$p")
  done
  ((${#installed[@]} == 0)) || apt-get purge -y -q "${installed[@]}" >/dev/null
}
cleanup() {
  local rc=$?
  python3 "$src/tests/integration/cluster.py" stop --workdir "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
  if [[ -z $keep ]]; then purge || true; fi
  exit $rc
}
trap cleanup EXIT

# Every ELF file under DIR: RELRO, full (BIND_NOW) but for the plugin, which binds
# lazily like Slurm's own plugins (it calls functions of the Slurm program loading it);
# executables PIE. (The compiler flags are checked in the build log: see below.)
check_hardening() {
  local dir=$1 f
  while IFS= read -r f; do
    readelf -h "$f" >/dev/null 2>&1 || continue
    local dyn prog
    dyn=$(readelf -dW "$f") prog=$(readelf -lW "$f")
    grep -q GNU_RELRO <<< "$prog" || fail "$f: no RELRO (hardening)"
    if [[ $f != */hawf.so && $f != */hawf_engine.so ]]; then
      grep -qE 'BIND_NOW|FLAGS.*NOW' <<< "$dyn" || fail "$f: no BIND_NOW (hardening)"
    fi
    if [[ -x $f && ($f == */bin/* || $f == */sbin/* || $f == */libexec/*) ]]; then
      grep -q 'FLAGS_1.*PIE' <<< "$dyn" || fail "$f: not a PIE (hardening)"
    fi
    echo "hardened: ${f#"$dir"}"
  done < <(find "$dir" -type f)
}

# --------------------------------------------------------------------------
step "purge hawf packages installed before"
purge

step "build the Debian packages (packaging/build-deb.sh)"
packaging/build-deb.sh "$out/deb" 2>&1 | tee "$work/deb-build.log"
deb_tools=$(ls "$out"/deb/hawf_*_*.deb)
deb_plugin=$(ls "$out"/deb/hawf-slurm-plugin_*_*.deb)

step "lintian (errors fail; see packaging/debian/*.lintian-overrides)"
lintian_rc=0
lintian --fail-on error --info "$out"/deb/hawf_*.changes > "$work/lintian.out" 2>&1 || lintian_rc=$?
grep -v '^running with root privileges' "$work/lintian.out" || true
((lintian_rc == 0)) || fail "lintian reports errors (above)"
echo "ok: no lintian errors"

step "check the .debs: contents, conffiles, Slurm release, hardening"
check_deb() {  # DEB PATH...: the package holds every PATH
  local deb=$1 listing
  shift
  listing=$(dpkg-deb -c "$deb" | awk '{print substr($6, 2)}')
  for path in "$@"; do
    grep -qxF "$path" <<< "$listing" || fail "$(basename "$deb") does not hold $path"
  done
}
check_deb "$deb_tools" "${tools[@]/#//usr/bin/}" "$hawfd" "$unit" /etc/hawf/hawf.yaml "${helper%/*}/hawf-local-job" \
  $(for p in "${pages[@]:0:6}"; do echo "/usr/share/man/$p.gz"; done) \
  $(for c in "${completions[@]}"; do echo "/usr/share/bash-completion/completions/$c"; done)
check_deb "$deb_plugin" "$plugin" "${plugin%/*}/hawf_engine.so" "$helper" "${helper%/*}/hawf-oci-run" \
  /usr/share/hawf/enroot/50-hawf.sh /etc/slurm/plugstack.conf.d/hawf.conf /usr/share/man/man8/spank-hawf.8.gz
conffiles() { dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles 2>/dev/null || true; }
conffiles "$deb_tools" | grep -qx /etc/hawf/hawf.yaml || fail "/etc/hawf/hawf.yaml is not a conffile"
conffiles "$deb_plugin" | grep -qx /etc/slurm/plugstack.conf.d/hawf.conf || fail "hawf.conf is not a conffile"
[[ $(dpkg-deb -f "$deb_plugin" Version) == *+slurm$slurm_release ]] ||
  fail "plugin package version $(dpkg-deb -f "$deb_plugin" Version) does not name Slurm $slurm_release"
dpkg-deb -f "$deb_plugin" Depends | grep -qF "slurm-wlm-basic-plugins (>= $slurm_release~)" ||
  fail "plugin package does not depend on Slurm $slurm_release: $(dpkg-deb -f "$deb_plugin" Depends)"
# Hardening flags (DEB_BUILD_MAINT_OPTIONS=hardening=+all) on every compile and link.
compiles=$(grep -E '(^|&& )/usr/bin/(c\+\+|cc) .* -c ' "$work/deb-build.log" || true)
links=$(grep -E '^/usr/bin/(c\+\+|cc) .* -o [^ ]*(hawf|hawf-decide|hawf-await|hawfd|hawf-step-helper|hawf-oci-run|hawf-local-job|hawf\.so|hawf_engine\.so) ' "$work/deb-build.log" || true)
[[ -n $compiles && -n $links ]] || fail "no compiler command lines in the build log (is the build verbose?)"
for flag in -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Werror=format-security; do
  ! grep -qv -e "$flag" <<< "$compiles" || fail "a compile lacks $flag: $(grep -v -e "$flag" <<< "$compiles" | head -1)"
done
for flag in -Wl,-z,relro -Wl,-z,now; do
  ! grep -qv -e "$flag" <<< "$links" || fail "a link lacks $flag: $(grep -v -e "$flag" <<< "$links" | head -1)"
done
grep -E -e '-o hawf\.so ' "$work/deb-build.log" | grep -qE -e '-Wl,-z,lazy' || fail "hawf.so is not linked with -z lazy"
grep -E -e '-o hawf_engine\.so ' "$work/deb-build.log" | grep -qE -e '-Wl,-z,lazy' || fail "hawf_engine.so is not linked with -z lazy"
echo "ok: $(wc -l <<< "$compiles") compiles and $(wc -l <<< "$links") links with the hardening flags"
for deb in "$deb_tools" "$deb_plugin"; do
  rm -rf "$work/x" && dpkg-deb -x "$deb" "$work/x"
  check_hardening "$work/x"
done
echo "ok: $(basename "$deb_tools") $(basename "$deb_plugin")"

step "build the RPMs (packaging/build-rpm.sh: rpmbuild -ba --nodeps)"
packaging/build-rpm.sh "$out/rpm"

step "check the RPMs: rpm -qlp, config files, Release and Requires"
rpm_tools=$(ls "$out"/rpm/hawf-[0-9]*.rpm | grep -v '\.src\.rpm$')
rpm_plugin=$(ls "$out"/rpm/hawf-slurm-plugin-*.rpm)
check_rpm() {  # RPM PATTERN...: rpm -qlp lists a path matching each (grep -x) PATTERN
  local rpm=$1 listing
  shift
  listing=$(rpm -qlp "$rpm" 2>/dev/null)
  for pattern in "$@"; do
    grep -qx "$pattern" <<< "$listing" || fail "rpm -qlp $(basename "$rpm") lists nothing like $pattern"
  done
}
check_rpm "$rpm_tools" /usr/bin/hawf /usr/bin/hawf-decide /usr/bin/hawf-await /etc/hawf/hawf.yaml \
  /usr/sbin/hawfd /usr/lib/systemd/system/hawfd.service "${helper%/*}/hawf-local-job" \
  '/usr/share/man/man1/hawf\.1.*' '/usr/share/man/man1/hawf-decide\.1.*' '/usr/share/man/man1/hawf-await\.1.*' \
  '/usr/share/man/man5/hawf\.yaml\.5.*' '/usr/share/man/man5/hawf-flow\.5.*' '/usr/share/man/man8/hawfd\.8.*' \
  /usr/share/bash-completion/completions/hawf /usr/share/bash-completion/completions/hawf-decide \
  /usr/share/bash-completion/completions/hawf-await
check_rpm "$rpm_plugin" '/usr/lib64/slurm/hawf\.so' '/usr/lib64/slurm/hawf_engine\.so' "$helper" /etc/slurm/plugstack.conf.d/hawf.conf \
  '/usr/share/man/man8/spank-hawf\.8.*'
# %config(noreplace): file flags c and n.
fflags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm_tools" "$rpm_plugin" 2>/dev/null)
for f in /etc/hawf/hawf.yaml /etc/slurm/plugstack.conf.d/hawf.conf; do
  grep -qE "^$f [a-z]*c[a-z]*n" <<< "$fflags" || fail "$f is not %config(noreplace) in the RPMs"
done
for rpm in "$rpm_tools" "$rpm_plugin"; do
  release=$(rpm -qp --qf '%{RELEASE}' "$rpm" 2>/dev/null)
  [[ $release == *slurm$slurm_release* ]] || fail "$(basename "$rpm"): Release $release does not name Slurm $slurm_release"
done
requires=$(rpm -qp --requires "$rpm_plugin" 2>/dev/null)
grep -qE "^slurm(\(x86-64\))? >= $slurm_release$" <<< "$requires" || fail "plugin RPM does not require slurm >= $slurm_release"
grep -qE "^slurm(\(x86-64\))? < " <<< "$requires" || fail "plugin RPM has no upper bound on slurm"
grep -qx "required /usr/lib64/slurm/hawf.so conf=/etc/hawf/hawf.yaml" \
  <(rpm2cpio "$rpm_plugin" | (cd "$work" && cpio -i --quiet --to-stdout ./etc/slurm/plugstack.conf.d/hawf.conf)) ||
  fail "the RPM's plugstack line does not name /usr/lib64/slurm/hawf.so"
rpm -qlp "$rpm_tools" "$rpm_plugin" 2>/dev/null | grep -v '/\.build-id' | sed 's/^/  /'

step "install the .debs (apt-get install ./...deb)"
apt-get install -y -q --no-install-recommends "$deb_tools" "$deb_plugin"
for f in "$plugin" "$helper" "${tools[@]/#/$bindir/}" "$hawfd" "$unit" /etc/hawf/hawf.yaml /etc/slurm/plugstack.conf.d/hawf.conf; do
  [[ -e $f ]] || fail "$f missing after install"
done
# Root execs the helper in every hawf step: only root may change it (run_as_user.cpp).
[[ $(stat -c '%U %a' "$helper") == "root 755" ]] || fail "$helper is $(stat -c '%U %a' "$helper"), not root 755"
# The unit as systemd reads it (ExecStart exists, man:hawfd(8) resolves), and
# installed disabled: hawfd needs its hawf.yaml section first.
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify $unit warns: $verify"
grep -qx "ExecStart=$hawfd --foreground" "$unit" || fail "$unit does not start $hawfd --foreground"
[[ ! -e /etc/systemd/system/multi-user.target.wants/hawfd.service ]] || fail "hawfd.service is enabled by the install"

step "man pages: man -l and groff -man -ww -z of every installed page"
for page in "${pages[@]}"; do
  f=/usr/share/man/$page.gz
  [[ -e $f ]] || fail "$f not installed (dpkg path-exclude of /usr/share/man in /etc/dpkg/dpkg.cfg.d?)"
  warnings=$( { zcat "$f" | groff -man -ww -z; } 2>&1)
  [[ -z $warnings ]] || fail "groff -man -ww -z $f warns: $warnings"
  rendered=$(MANWIDTH=80 MAN_KEEP_FORMATTING= man -l "$f" 2>"$work/man.err") || fail "man -l $f failed: $(cat "$work/man.err")"
  [[ ! -s $work/man.err ]] || fail "man -l $f warns: $(cat "$work/man.err")"
  [[ $(wc -l <<< "$rendered") -gt 10 ]] || fail "man -l $f renders almost nothing"
  echo "ok: $f ($(wc -l <<< "$rendered") lines)"
done

step "Slurm loads the installed plugin through /etc/slurm/plugstack.conf"
line=$(grep -v '^#' /etc/slurm/plugstack.conf.d/hawf.conf | grep .)
[[ $line == "required $plugin conf=/etc/hawf/hawf.yaml" ]] || fail "unexpected plugstack line: $line"
if grep -qs 'plugstack.conf.d/\*' /etc/slurm/plugstack.conf; then
  cat > "$work/slurm.conf" <<EOF
ClusterName=hawfpkgtest
SlurmctldHost=localhost
PlugStackConfig=/etc/slurm/plugstack.conf
NodeName=localhost CPUs=1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES
EOF
  SLURM_CONF=$work/slurm.conf srun --help 2>&1 | grep -q -- '--hawf-checkpoint' ||
    fail "srun --help with /etc/slurm/plugstack.conf does not show --hawf-checkpoint"
  echo "ok: srun --help shows the --hawf-* options"
else
  echo "skipped: /etc/slurm/plugstack.conf does not include plugstack.conf.d/*.conf"
fi

step "hawf doctor with the installed files"
install -d -m 1777 "$work/spool"
printf 'spool: %s\n' "$work/spool" > "$work/hawf.yaml"
# srun --help (doctor's "slurm" check) reads the slurm.conf written above, whose
# plugstack.conf is the installed one.
[[ -f $work/slurm.conf ]] || fail "no $work/slurm.conf: hawf doctor cannot check that Slurm loads hawf"
HAWF_CONF=$work/hawf.yaml SLURM_CONF=$work/slurm.conf hawf doctor | tee "$work/doctor.out" || fail "hawf doctor failed"
grep -q "^ok    slurm            srun --help shows --hawf-checkpoint" "$work/doctor.out" ||
  fail "hawf doctor does not see Slurm load hawf"
grep -q "$plugin (built for Slurm $slurm_release)" "$work/doctor.out" || fail "hawf doctor does not find $plugin built for Slurm $slurm_release"
grep -q "^ok    step helper      $helper (hawf-step-helper " "$work/doctor.out" || fail "hawf doctor does not find $helper"

step "configure build-installed/ for the installed files; ABI tests"
cmake -S . -B "$build" -DHAWF_TEST_PLUGIN="$plugin" -DHAWF_TEST_BINDIR="$bindir" -DHAWF_TEST_HAWFD="$hawfd" \
  -DHAWF_TEST_STEP_HELPER= -DHAWF_TEST_OCI_RUN="${helper%/*}/hawf-oci-run" \
  -DHAWF_TEST_LOCAL_JOB="${helper%/*}/hawf-local-job" >/dev/null
cmake --build "$build" --target dlopen_plugin -j"$(nproc)" >/dev/null
# The tests must get the installed files (tests/CMakeLists.txt passes HAWF_TEST_PLUGIN,
# HAWF_TEST_BINDIR and HAWF_TEST_HAWFD on), not this build's, which is not even built here.
ctest --test-dir "$build" --show-only=json-v1 | python3 -c '
import json, re, sys
plugin, bindir, hawfd = sys.argv[1:]
tests = json.load(sys.stdin)["tests"]
def env(t):
    return " ".join(" ".join(p["value"]) if isinstance(p["value"], list) else str(p["value"])
                    for p in t.get("properties", []) if p["name"] == "ENVIRONMENT")
checked, bad = 0, []
for t in tests:
    if t["name"].startswith("abi.slurm-"):
        continue  # the plugin built against other Slurm releases, not an installed file
    if t["name"].startswith("abi."):
        ok = plugin in t.get("command", [])
    elif t["name"].startswith("integration.") and not t["name"].startswith("integration.demo"):
        ok = all(v in env(t) for v in ("HAWF_PLUGIN=" + plugin, "HAWF_BINDIR=" + bindir, "HAWF_HAWFD=" + hawfd))
        ok = ok and re.search(r"(^| )HAWF_STEP_HELPER=( |$)", env(t))  # the built-in path of the plugin
    else:
        continue
    checked += 1
    if not ok:
        bad.append(t["name"])
if not checked or bad:
    sys.exit("package-test: FAIL: %s would not test the installed files: tests/CMakeLists.txt must "
             "take the plugin, tools and hawfd from HAWF_TEST_PLUGIN, HAWF_TEST_BINDIR and HAWF_TEST_HAWFD"
             % ", ".join(bad or ["the ABI and integration tests"]))
print("ok: %d ABI and integration tests take %s, %s/ and %s" % (checked, plugin, bindir, hawfd))
' "$plugin" "$bindir" "$hawfd"
"$build/tests/dlopen_plugin" "$plugin"
ctest --test-dir "$build" -L abi -E '^abi\.slurm-' --output-on-failure

step "integration suite against the installed plugin and tools"
ctest --test-dir "$build" -L integration -E '^integration\.demo' --output-on-failure

step "demo with the installed plugin and tools"
# demo/run.sh takes a build tree: give it one whose files are the installed ones.
mkdir -p "$work/tree/plugin" "$work/tree/tools" "$work/tree/hawfd"
ln -s "$plugin" "$work/tree/plugin/hawf.so"
ln -s "${plugin%/*}/hawf_engine.so" "$work/tree/plugin/hawf_engine.so"
ln -s "$helper" "$work/tree/plugin/hawf-step-helper"
ln -s "${helper%/*}/hawf-local-job" "$work/tree/plugin/hawf-local-job"
ln -s "$hawfd" "$work/tree/hawfd/hawfd"
for t in "${tools[@]}"; do ln -s "$bindir/$t" "$work/tree/tools/$t"; done
demo/run.sh "$work/tree" > "$work/demo.out" 2>&1 || { cat "$work/demo.out"; fail "demo failed"; }
# Passed if its output matches the PASS_REGULAR_EXPRESSION of ctest's integration.demo.
ctest --test-dir "$build" --show-only=json-v1 | python3 -c '
import json, re, sys
test = [t for t in json.load(sys.stdin)["tests"] if t["name"] == "integration.demo"]
regexes = [r for t in test for p in t.get("properties", []) if p["name"] == "PASS_REGULAR_EXPRESSION" for r in p["value"]]
output = open(sys.argv[1], errors="replace").read()
# As CMake'"'"'s regular expressions, "." also matches a newline.
if not regexes or not any(re.search(r, output, re.DOTALL) for r in regexes):
    sys.exit("package-test: FAIL: the demo output does not match %r:\n%s" % (regexes, output))
print("ok: the demo output matches %r" % regexes)
' "$work/demo.out"

step "bash completion (installed files): unit cases, then a real pending checkpoint"
completion_file=/usr/share/bash-completion/completions/hawf
completion/test-completion.sh "$completion_file"
for c in "${completions[@]}"; do
  cmp -s "$completion_file" "/usr/share/bash-completion/completions/$c" || fail "completions/$c differs from completions/hawf"
done
user=hawfalice
install -m 755 completion/test-completion.sh "$work/test-completion.sh"
printf 'spool: %s\npoll_interval: 1s\n' "$work/spool" > "$work/hawf.yaml"
python3 tests/integration/cluster.py start --workdir "$work/cluster" --plugin "$plugin" \
  --plugin-arg "conf=$work/hawf.yaml" >/dev/null
slurm_conf=$(. "$work/cluster/env.sh" && echo "$SLURM_CONF")
install -d -m 755 -o "$user" "$work/$user"
as_user() {
  runuser -u "$user" -- env PATH=/usr/bin:/bin HOME="$work/$user" HAWF_CONF="$work/hawf.yaml" \
    SLURM_CONF="$slurm_conf" bash -c "cd '$work/$user' && $1"
}
job=$(as_user "sbatch --parsable --hawf-checkpoint=review --hawf-options=continue,stop \
  --hawf-params=lr:float,epochs:int --wrap=true")
job=${job%%;*}
for _ in $(seq 120); do
  as_user "hawf ls" | grep -q "^$job:review " && break
  sleep 0.5
done
as_user "hawf ls" | grep -q "^$job:review " || fail "checkpoint $job:review never became pending"
as_user "'$work/test-completion.sh' --live $job:review 'continue stop' 'epochs lr' $completion_file"
python3 tests/integration/cluster.py stop --workdir "$work/cluster"

step "done"
echo
echo "package-test: all checks passed ($((SECONDS - t0))s)"
printf '%s\n' "${timings[@]}"
if [[ -n $keep ]]; then
  echo "The packages stay installed (--keep): apt-get purge hawf hawf-slurm-plugin"
else
  echo "The packages are purged again (use --keep to leave them installed)."
fi
