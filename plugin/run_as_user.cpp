#include "run_as_user.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "process.hpp"
#include "validate.hpp"

extern char** environ;

namespace hawf::plugin {

#ifndef HAWF_STEP_HELPER
#error "HAWF_STEP_HELPER (the installed hawf-step-helper) must be defined by the build"
#endif
const char* const default_step_helper = HAWF_STEP_HELPER;

namespace {

// In user_init slurmstepd has only switched its effective uid: regain root first,
// so that what follows is complete.
bool become(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
    if (geteuid() != 0 && seteuid(0) != 0) return false;
    if (setgroups(groups.size(), groups.data()) != 0) return false;
    if (setresgid(gid, gid, gid) != 0) return false;
    if (setresuid(uid, uid, uid) != 0) return false;
    return uid == 0 || setuid(0) != 0;  // must not be able to regain root
}

}  // namespace

std::string encode_answer(const Outcome& outcome) {
    return (outcome.ok ? std::string(1, '+') : std::string(1, static_cast<char>('0' + static_cast<int>(outcome.kind)))) +
           outcome.text;
}

Outcome decode_answer(int status, const std::string& out, const std::string& err) {
    const bool exited_0 = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (exited_0 && !out.empty() && out[0] == '+') return {true, out.substr(1)};
    const int kind = out.empty() ? -1 : out[0] - '0';
    if (!exited_0 && kind >= 0 && kind <= static_cast<int>(ErrorKind::System))
        return {false, out.substr(1), static_cast<ErrorKind>(kind)};
    if (WIFSIGNALED(status)) return {false, "hawf-step-helper killed by signal " + std::to_string(WTERMSIG(status))};
    const std::string said = err.substr(0, std::min(err.find('\n'), std::size_t{200}));
    return {false, "hawf-step-helper failed without a whole answer" + (said.empty() ? "" : ": " + quoted_text(said))};
}

Outcome run_as_user(const std::string& helper, const JobUser& user, const HelperCall& call) {
    // Root execs the helper: it must be a file only root can change.
    if (const std::string unsafe = unsafe_for_root(helper); !unsafe.empty()) {
        const bool missing = unsafe.rfind("cannot run ", 0) == 0;
        return {false, unsafe + (missing ? " (install the hawf-slurm-plugin package on this node, or set "
                                           "step_helper= in plugstack.conf)" : "")};
    }
    // Everything the child needs, made before fork.
    const std::vector<gid_t> groups = call.as_root ? std::vector<gid_t>{0} : user.groups;
    const uid_t uid = call.as_root ? 0 : user.uid;
    const gid_t gid = call.as_root ? 0 : user.gid;
    // Failures between fork and exec are answered (kind System) by exit_child, with
    // async-signal-safe calls only.
    const std::string cannot_switch = encode_answer({false, "cannot switch to uid " + std::to_string(uid)});
    const std::string cannot_run = encode_answer({false, "cannot run " + helper});
    char* const argv[] = {const_cast<char*>(helper.c_str()), const_cast<char*>(call.verb.c_str()), nullptr};
    Subprocess::Finished done;
    try {
        const Fd input = input_file(call.request);
        Subprocess child(input.get(), [&] {
            if (!become(uid, gid, groups)) exit_child(STDOUT_FILENO, cannot_switch.c_str(), errno, 1);
            execve(helper.c_str(), argv, environ);
            exit_child(STDOUT_FILENO, cannot_run.c_str(), errno, 1);
        });
        done = child.finish(std::chrono::steady_clock::now() + std::chrono::seconds(call.timeout_s));
    } catch (const Error& e) {
        return {false, e.what()};
    }
    if (done.timed_out) return {false, "the spool did not answer within " + std::to_string(call.timeout_s) + " s"};
    return decode_answer(done.status, done.out, done.err);
}

Runner helper_runner(std::string helper) {
    return [helper = std::move(helper)](const JobUser& user, const HelperCall& call) {
        return run_as_user(helper, user, call);
    };
}

}  // namespace hawf::plugin
