// Runs hawf-step-helper as the job's user: the only code in the plugin that changes
// identity. slurmstepd runs as root, but the spool is on a shared filesystem where
// root is squashed and where every record must be owned by the job's user, so all
// spool work happens in the helper, after a complete drop (supplementary groups,
// gid, uid: no way back). As NVIDIA's pyxis and Slurm's own run_command do, the
// forked child of slurmstepd (which has threads) makes only async-signal-safe calls:
// it drops and execs; the helper does the rest in a process of its own.
#pragma once

#include <functional>
#include <string>

#include "host.hpp"
#include "error.hpp"

namespace hawf::plugin {

// What the helper answered (or why there is no answer).
struct Outcome {
    bool ok = false;
    std::string text;                    // the answer, or the error message
    ErrorKind kind = ErrorKind::System;  // when not ok: the kind of the Error it failed with
};

// The answer on the wire: one byte saying what follows ('+' the answer, or the
// ErrorKind of the failure as a digit), then the text. The helper exits 0 only after
// writing all of a '+' answer, so half an answer is never taken for a whole one.
std::string encode_answer(const Outcome& outcome);
// Reads what a helper that ended with wait status STATUS wrote (OUT; ERR: its stderr,
// quoted when it gave no answer: the loader's complaint, say).
Outcome decode_answer(int status, const std::string& out, const std::string& err = "");

// One request to the helper: `HELPER VERB` reading REQUEST (JSON) on stdin.
struct HelperCall {
    std::string verb;
    std::string request;
    // Run as root instead of the job user: only for the seal over a checkpoint's spec
    // (in user_init slurmstepd's effective uid is the user's, its real uid root).
    bool as_root = false;
    int timeout_s = 120;  // a hung NFS mount must not hang slurmstepd
};

// Runs CALL with the helper at HELPER as USER and returns what it answered, or why
// there is no answer. Never throws. The helper must be a root-owned file no one
// else can write (root execs it). At the timeout the helper and whatever it started
// are killed (a Subprocess: its own process group, no inherited descriptor).
Outcome run_as_user(const std::string& helper, const JobUser& user, const HelperCall& call);

// How the step side runs the helper: run_as_user with an installed helper, or in unit
// tests a stand-in.
using Runner = std::function<Outcome(const JobUser&, const HelperCall&)>;
Runner helper_runner(std::string helper);

// Where the packages install the helper (plugstack.conf's step_helper=PATH overrides it).
extern const char* const default_step_helper;

}  // namespace hawf::plugin
