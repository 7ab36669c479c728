#!/bin/bash
# Tests completion/hawf.bash the way bash-completion runs it: each case sets
# COMP_WORDS/COMP_CWORD as readline would for a command line (split at blanks and at
# ":" and "="), calls the registered function, and compares the offered words.
#
#   completion/test-completion.sh [COMPLETION_FILE]
#       checkpoint data from a stub `hawf` printing canned `hawf ls/show --json`
#       (the tools' exact format); needs only bash and bash-completion
#   completion/test-completion.sh --live CKPT CHOICES KEYS [COMPLETION_FILE]
#       against the real `hawf` on PATH: CKPT must be the caller's only pending
#       checkpoint, with choices CHOICES ("continue stop") and parameters KEYS
#       ("epochs lr"); scripts/package-test.sh runs this on a real cluster
# COMPLETION_FILE defaults to completion/hawf.bash beside this script.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
live=
if [[ ${1-} == --live ]]; then
  live=1 ckpt=$2 choices=$3 keys=$4
  shift 4
fi
file=${1:-$here/hawf.bash}
for candidate in /usr/share/bash-completion/bash_completion /etc/bash_completion; do
  [[ -r $candidate ]] && { bash_completion=$candidate; break; }
done
if [[ -z ${bash_completion-} ]]; then
  echo "test-completion: bash-completion is not installed" >&2
  exit 2
fi

if [[ -z $live ]]; then
  # A stub hawf with canned output (nlohmann::json dump(2), as the tools print it).
  stub=$(mktemp -d)
  trap 'rm -rf "$stub"' EXIT
  cat > "$stub/hawf" <<'STUB'
#!/bin/bash
case "$*" in
  "ls --json --state=pending")
    cat <<'JSON'
[
  {
    "checkpoint": "4242:eval",
    "opened_at": "2026-11-27T01:00:00Z",
    "options": [
      "continue",
      "stop"
    ],
    "owner": "alice",
    "state": "pending"
  },
  {
    "checkpoint": "4250_3:eval.2",
    "opened_at": "2026-11-27T01:00:00Z",
    "options": [
      "approve",
      "reject"
    ],
    "owner": "alice",
    "state": "pending"
  }
]
JSON
    ;;
  "ls --json --state=decided")
    printf '[\n  {\n    "checkpoint": "4100:gate",\n    "decision": {\n      "checkpoint": "4100:gate",\n      "choice": "approve"\n    },\n    "state": "decided"\n  }\n]\n' ;;
  "show --json 4242:eval")
    cat <<'JSON'
{
  "checkpoint": "4242:eval",
  "files": [],
  "options": [
    "continue",
    "stop"
  ],
  "spec": {
    "checkpoint": "4242:eval",
    "options": [
      "continue",
      "stop"
    ],
    "params": [
      {
        "key": "lr",
        "type": "float"
      },
      {
        "key": "mode",
        "type": "enum(fast|slow)"
      }
    ]
  },
  "state": "pending"
}
JSON
    ;;
  *) echo "hawf: stub: unexpected arguments: $*" >&2; exit 2 ;;
esac
STUB
  chmod +x "$stub/hawf"
  PATH=$stub:$PATH
fi

# shellcheck source=/dev/null
source "$bash_completion"
# shellcheck source=hawf.bash
source "$file"

# compopt works only inside a completion started by readline; here it is a no-op.
compopt() { :; }

# Prints what <TAB> at the end of LINE offers, sorted, on one line.
complete_line() {
  local line=$1 words cmd func
  read -ra words <<< "$(sed 's/[:=]/ & /g' <<< "$line")"
  [[ $line == *' ' ]] && words+=('')
  COMP_LINE=$line COMP_POINT=${#line}
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$((${#words[@]} - 1))
  cmd=${words[0]##*/}
  func=$(complete -p "$cmd" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
  COMPREPLY=()
  "$func" "$cmd" "${words[COMP_CWORD]}" "${words[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}

failures=0
expect() {
  local line=$1 want=$2 got
  got=$(complete_line "$line" 2>&1)
  if [[ $got == "$want" ]]; then
    printf 'ok    %-40s -> %s\n' "'$line'" "$got"
  else
    printf 'FAIL  %-40s -> %s (expected: %s)\n' "'$line'" "$got" "$want"
    failures=$((failures + 1))
  fi
}

expect "hawf " "--help --version cancel cat doctor gc help log ls show status submit"
expect "hawf submit --" "--check --help --json --local"
expect "hawf l" "log ls"
expect "hawf ls --" "--all --format= --help --jobs= --json --local --me --noheader --parsable --review --states= --user="
expect "hawf ls --state=" "applied decided expected failed pending running"
expect "hawf ls --states=p" "pending"
expect "hawf ls --state d" "decided"
expect "hawf ls -t d" "decided"
expect "hawf ls --format=dec" "decided_by decision"
expect "hawf doctor --" "--help --json --plugin= --step-helper="
expect "hawf-decide --" "--amend --help --json --local --message --nodes= --params-from= --partition= --revoke --set --time= --user= --version"
expect "hawf-await --" "--default= --env --help --json --local --on= --open= --options= --params= --poll --signal= --then= --timeout= --user= --version"
expect "hawf-await --timeout=" "24h 2d 30m 90s"
expect "hawf-await --signal=USR1" "USR1 USR1@batch"
expect "hawf-decide x" ""
expect "hawf-decide 4242:eval continue -m " ""

if [[ -z $live ]]; then
  expect "hawf-decide " "4242:eval 4250_3:eval.2"
  expect "hawf-decide 42" "4242:eval 4250_3:eval.2"
  expect "hawf-decide 4242:" "eval"
  expect "hawf-decide 4250_3:e" "eval.2"
  expect "hawf-decide 4242:eval " "4250_3:eval.2 continue stop"
  expect "hawf-decide 4242:eval c" "continue"
  expect "hawf-decide 4242:eval 4250_3:eval.2 " "continue stop"
  expect "hawf-decide 4242:eval 4250_3:eval.2 s" "stop"
  expect "hawf-decide -m ok 4242:eval " "4250_3:eval.2 continue stop"
  expect "hawf-decide 4242:eval continue " ""
  expect "hawf-decide 4242:eval continue --set " "lr= mode="
  expect "hawf-decide --set l" ""
  expect "hawf-decide --amend " "4100:gate"
  expect "hawf-decide --revoke " "4100:gate"
  expect "hawf-decide --revoke 4100:gate " ""
  expect "hawf-await " "4242:eval 4250_3:eval.2"
  expect "hawf-await --timeout 30m 4242:" "eval"
  expect "hawf-await 4242:eval " ""
  expect "hawf show " "4242:eval 4250_3:eval.2"
  expect "hawf log --json 4250_3:" "eval.2"
  expect "hawf ls " ""
else
  jobid=${ckpt%%:*} name=${ckpt#*:}
  set_keys=$(for k in $keys; do printf '%s=\n' "$k"; done | sort | paste -sd' ')
  expect "hawf-decide " "$ckpt"
  expect "hawf-decide $jobid:" "$name"
  expect "hawf-decide $ckpt " "$(printf '%s\n' $choices | sort | paste -sd' ')"
  expect "hawf-decide $ckpt ${choices%% *} --set " "$set_keys"
  expect "hawf-await " "$ckpt"
  expect "hawf show $jobid:" "$name"
  expect "hawf-decide --amend " ""
fi

if ((failures)); then
  echo "test-completion: $failures case(s) failed" >&2
  exit 1
fi
echo "test-completion: all cases passed"
