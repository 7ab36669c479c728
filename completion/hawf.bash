# bash completion for hawf, hawf-decide and hawf-await          -*- shell-script -*-
#
# Installed under each command's name in bash-completion's completions directory
# (/usr/share/bash-completion/completions), where bash-completion finds it on the
# first <TAB> after that command. Checkpoint arguments (CKPT) complete to the ids of
# your own pending checkpoints (root: everyone's), read from `hawf ls --json`; the
# CHOICE of hawf-decide and the KEY of --set KEY=VALUE come from `hawf show --json`.

# The hawf next to the command being completed (so an uninstalled build completes
# with its own hawf), else the one on PATH.
_hawf_bin()
{
    local cmd=${words[0]}
    if [[ $cmd == */* && -x ${cmd%/*}/hawf ]]; then
        printf '%s\n' "${cmd%/*}/hawf"
    else
        printf 'hawf\n'
    fi
}

# Ids of the caller's checkpoints in state $1 (pending, decided, ...), one a line.
# Only the top-level objects' "checkpoint" key (4 spaces deep in the indented JSON).
_hawf_checkpoints()
{
    "$(_hawf_bin)" ls --json --state="${1:-pending}" 2>/dev/null |
        sed -n 's/^    "checkpoint": "\([^"\\]*\)",\{0,1\}$/\1/p'
}

# What `hawf show --json CKPT` lists under key $2: "options" (the choices, a
# top-level array of strings) or "key" (the declared parameters' names).
_hawf_checkpoint_field()
{
    "$(_hawf_bin)" show --json "$1" 2>/dev/null | case $2 in
        options) sed -n '/^  "options": \[$/,/^  \]/s/^    "\([^"\\]*\)",\{0,1\}$/\1/p' ;;
        key) sed -n 's/^ *"key": "\([^"\\]*\)",\{0,1\}$/\1/p' ;;
    esac
}

# Positional arguments among words[first..cword-1]; $1 is the first word to look
# at, $2 the options that take a separate value (e.g. "--set -m --message --user").
_hawf_positionals()
{
    local first=$1 with_value=" $2 " i word
    positionals=()
    for ((i = first; i < cword; i++)); do
        word=${words[i]}
        if [[ $word == -- ]]; then
            positionals+=("${words[@]:i+1:cword-i-1}")
            return
        elif [[ $word == -* ]]; then
            [[ $word != *=* && $with_value == *" $word "* ]] && ((i++))
        else
            positionals+=("$word")
        fi
    done
}

# Checkpoints in state $1 not among the positionals yet, and the words $2.
_hawf_complete_checkpoints()
{
    local ids id given=" ${positionals[*]-} "
    ids=$(for id in $(_hawf_checkpoints "$1"); do [[ $given == *" $id "* ]] || printf '%s\n' "$id"; done)
    COMPREPLY=($(compgen -W "$ids ${2-}" -- "$cur"))
    __ltrim_colon_completions "$cur"
}

# Completes option names; those ending in "=" take no space after them.
_hawf_complete_options()
{
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
    [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
}

_hawf()
{
    local cur prev words cword split
    _init_completion -s -n : || return

    if ((cword == 1)); then
        COMPREPLY=($(compgen -W 'ls show cat log submit status cancel doctor gc help --help --version' -- "$cur"))
        return
    fi
    local command=${words[1]}

    case $prev in
        --state | --states | -t)
            COMPREPLY=($(compgen -W 'expected running pending decided applied failed' -- "$cur"))
            return
            ;;
        --format | -o)
            COMPREPLY=($(compgen -W 'checkpoint job name state owner options opened deadline decision decided_by reviewers flow' -- "$cur"))
            return
            ;;
        --user | -u)
            COMPREPLY=($(compgen -u -- "$cur"))
            return
            ;;
        --plugin)
            _filedir so
            return
            ;;
        --step-helper)
            _filedir
            return
            ;;
        --older-than)
            COMPREPLY=($(compgen -W '7d 30d 90d' -- "$cur"))
            return
            ;;
    esac
    $split && return

    local opts
    case $command in
        ls) opts='--local --all --states= --user= --me --jobs= --review --noheader --format= --parsable --json --help' ;;
        show) opts='--local --user= --json --help' ;;
        cat) opts='--local --user= --help' ;;
        log) opts='--user= --verify --json --help' ;;
        doctor) opts='--plugin= --step-helper= --json --help' ;;
        gc) opts='--older-than= --dry-run --json --help' ;;
        submit) opts='--check --local --json --help' ;;
        status) opts='--local --user= --json --help' ;;
        cancel) opts='--local --user= --help' ;;
        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        _hawf_complete_options "$opts"
        return
    fi

    local positionals
    _hawf_positionals 2 '--state --states -t --user -u --plugin --format -o --jobs -j --older-than'
    case $command in
        show | log | cat)
            ((${#positionals[@]} == 0)) && _hawf_complete_checkpoints pending
            ;;
        submit)
            ((${#positionals[@]} == 0)) && _filedir '@(yaml|yml)'
            ;;
    esac
}

_hawf_decide()
{
    local cur prev words cword split
    _init_completion -s -n : || return

    local positionals
    _hawf_positionals 1 '--set -m --message --user --time --partition --nodes --params-from'
    local ckpt=${positionals[0]-}

    case $prev in
        --set)
            # KEY= for each parameter the checkpoint declared.
            if [[ $cur != *=* && -n $ckpt ]]; then
                local keys
                keys=$(_hawf_checkpoint_field "$ckpt" key | sed 's/$/=/')
                COMPREPLY=($(compgen -W "$keys" -- "$cur"))
                compopt -o nospace
            fi
            return
            ;;
        -m | --message)
            return
            ;;
        --params-from)
            _filedir 'json|csv'
            return
            ;;
        --user)
            COMPREPLY=($(compgen -u -- "$cur"))
            return
            ;;
    esac
    $split && return

    if [[ $cur == -* ]]; then
        _hawf_complete_options '--local --set --params-from= --message --amend --revoke --time= --partition= --nodes= --user= --json --help --version'
        return
    fi

    # --amend and --revoke change a decision: they take a decided checkpoint.
    local state=pending word
    for word in "${words[@]:1:cword-1}"; do
        [[ $word == --amend || $word == --revoke ]] && state=decided
    done
    # CKPT... CHOICE: after a checkpoint, another one or the first one's choices
    # (--revoke takes checkpoints only). Nothing after a choice.
    if ((${#positionals[@]} == 0)); then
        _hawf_complete_checkpoints "$state"
    elif [[ ${positionals[-1]} == *:* ]]; then
        local choices=
        [[ " ${words[*]:1:cword-1} " == *" --revoke "* ]] || choices=$(_hawf_checkpoint_field "$ckpt" options)
        _hawf_complete_checkpoints "$state" "$choices"
    fi
}

_hawf_await()
{
    local cur prev words cword split
    _init_completion -s -n : || return

    case $prev in
        --timeout)
            COMPREPLY=($(compgen -W '90s 30m 24h 2d' -- "$cur"))
            return
            ;;
        --then)
            _filedir
            return
            ;;
        --signal)
            COMPREPLY=($(compgen -W 'USR1@batch USR2@batch USR1 USR2 HUP INT TERM CONT' -- "$cur"))
            return
            ;;
        --user)
            COMPREPLY=($(compgen -u -- "$cur"))
            return
            ;;
    esac
    $split && return

    if [[ $cur == -* ]]; then
        _hawf_complete_options '--local --timeout= --poll --env --json --user= --then= --on= --open= --options= --params= --default= --signal= --help --version'
        return
    fi

    local positionals
    _hawf_positionals 1 '--timeout --user --then --on --open --options --params --default --signal'
    ((${#positionals[@]} == 0)) && _hawf_complete_checkpoints pending
}

complete -F _hawf hawf
complete -F _hawf_decide hawf-decide
complete -F _hawf_await hawf-await

# ex: filetype=sh
