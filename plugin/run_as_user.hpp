// Runs a piece of work in a child process that has dropped root completely
// (supplementary groups, gid, uid: no way back). slurmstepd runs as root, but the
// spool is on a shared filesystem where root is squashed and where every record
// must be owned by the job's user, so all spool writes happen here.
#pragma once

#include <functional>
#include <string>

#include "error.hpp"
#include "host.hpp"

namespace hawf::plugin {

struct Outcome {
    bool ok = false;
    std::string text;                    // what BODY returned, or the error message
    ErrorKind kind = ErrorKind::System;  // when not ok: the kind of the Error BODY threw
};

// Runs BODY as USER in a child process and returns what it returned, or the error
// message it threw (or why the child could not run). Never throws. Gives up after
// TIMEOUT_S seconds (a hung NFS mount must not hang slurmstepd), killing the child
// and what it started (a Subprocess: its own process group, no inherited descriptor).
//
// AS_ROOT, if given, runs first in the same child, as root: slurmstepd's real uid is
// root (in user_init only its effective uid is the user's), so the child, single-
// threaded, sets its effective uid back to 0, runs AS_ROOT, and only then drops fully
// for BODY. What AS_ROOT throws is the outcome (BODY never runs). It is for what only
// root can make (hawf's seal over a checkpoint's spec): keep it short, and never let
// it touch the spool (root is squashed there). The caller's identity never changes.
Outcome run_as_user(const JobUser& user, const std::function<std::string()>& body, int timeout_s = 120,
                    const std::function<void()>& as_root = {});

// How the step side runs its work: run_as_user, or in unit tests a stand-in.
using Runner = std::function<Outcome(const JobUser&, const std::function<std::string()>&, int,
                                     const std::function<void()>&)>;

}  // namespace hawf::plugin
