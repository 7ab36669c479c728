#include "submit_side.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <strings.h>

#include "config.hpp"
#include "actions.hpp"
#include "error.hpp"
#include "fsutil.hpp"
#include "spool.hpp"

namespace hawf::plugin {
namespace {

}  // namespace

int submit_option(Host& host, Request& request, Opt id, const char* value) {
    try {
        request.set(id, value ? value : "");
        return 0;
    } catch (const std::exception& e) {
        host.error(std::string("hawf: ") + e.what());
        return -1;
    }
}

namespace {

// sbatch --export without ALL: before Slurm 23.11 (NONE) or 24.05 (a list of
// variables) it passes no --hawf-* option to the job, which would run without its
// checkpoint; and a job given --hawf-then finds its copy of the script through
// HAWF_THEN_SCRIPT in its environment. So both are refused now rather than fail (or
// silently not stop) at job start. sbatch puts its --export value (unless ALL) in
// SLURM_EXPORT_ENV before this callback.
void check_export(const Host& host, const Request& request) {
    const std::optional<std::string> exported = host.getenv("SLURM_EXPORT_ENV");
    if (!exported) return;
    bool all = false, none = false, then_script = false;
    for (const std::string& item : split(*exported, ',')) {
        const std::string name = item.substr(0, item.find('='));
        all = all || strcasecmp(name.c_str(), "ALL") == 0;
        none = none || strcasecmp(name.c_str(), "NONE") == 0 || strcasecmp(name.c_str(), "NIL") == 0;
        then_script = then_script || name == then_script_env;
    }
    if (all) return;
    const std::string given = "sbatch --export " + quoted_text(*exported);
    const std::uint32_t major = host.slurm_version() >> 16, minor = (host.slurm_version() >> 8) & 0xff;
    const std::uint32_t release = major << 8 | minor, fixed = none ? 0x170b : 0x1805;  // 23.11, 24.05
    if (release < fixed)
        throw Error(ErrorKind::Usage, given + " passes no --hawf-* option to the job in Slurm " + std::to_string(major) +
                                          (minor < 10 ? ".0" : ".") + std::to_string(minor) + " (" +
                                          (none ? "23.11" : "24.05") + " and later do): it would run without its "
                                          "checkpoint; use --export=ALL (the default) or ALL,VAR=value");
    if (request.then() && !then_script)
        throw Error(ErrorKind::Usage, "--hawf-then: with " + given + " the job cannot find the copy of its follow-up's "
                                      "script taken now (" + then_script_env + "); use --export=ALL,... or chain "
                                      "the follow-up with hawf-await --then");
}

}  // namespace

int submit_post_opt(Host& host, const Request& request, const std::string& conf_path) {
    if (!request.any()) return 0;
    try {
        if (host.client() == Client::Salloc && request.checkpoint())
            throw Error(ErrorKind::Usage, "--hawf-checkpoint is for sbatch jobs and srun steps; inside this "
                                          "allocation give it to the srun step that should stop");
        if (host.client() == Client::Sbatch && !(request.after() && !request.checkpoint() && !request.then()))
            check_export(host, request);
        const Config config = load_config(conf_path);
        const Spool spool = spool_of(config);
        spool.open_root();
        if (!request.checkpoint() && request.after() && !request.then()) return 0;  // a follow-up
        // Checks the combination with a stand-in id; the real one is known on the node.
        const CheckpointSpec spec =
            request.spec({"0", request.checkpoint().value_or("x")}, getuid(), "", Scope::Step, config);
        // Users name channels, never URLs; which exist is the site's (checked here only:
        // a channel the admin removes later is hawfd's to skip, not a reason to fail the job).
        if (!spec.notify.empty()) try {
                check_notify_channels(config.notify, spec.notify, config.path);
            } catch (const Error& e) {
                throw Error(ErrorKind::Usage, std::string("--hawf-notify: ") + e.what());
            }
        // Inside a batch job that carries the checkpoint, srun inherits the option:
        // such a step is not the checkpoint (the batch step is) and copies nothing.
        if (host.client() == Client::Srun) {
            const auto job = host.getenv("SLURM_JOB_ID");
            const auto inherited = host.getenv("HAWF_CHECKPOINT");
            if (job && inherited && *inherited == *job + ":" + *request.checkpoint()) return 0;
        }
        if (request.checkpoint()) check_room_for_checkpoint(spool, getuid());  // refused now, not at job start
        // Read now, as sbatch reads a batch script: the follow-up runs this copy, not
        // what the submit directory holds when the job starts. The job finds the copy
        // through its environment (sbatch's default --export=ALL, srun's step).
        for (const auto& then : spec.then)
            host.setenv(then_script_env,
                        spool.snapshot_script(getuid(), then.script, "--hawf-then"));
        if (host.client() == Client::Srun) host.setenv(step_marker_env, *request.checkpoint());
        return 0;
    } catch (const std::exception& e) {
        host.error(std::string("hawf: ") + e.what());
        return -1;
    }
}

}  // namespace hawf::plugin
