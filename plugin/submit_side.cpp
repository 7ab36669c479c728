#include "submit_side.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config.hpp"
#include "error.hpp"
#include "spool.hpp"

namespace hawf::plugin {

int submit_option(Host& host, Request& request, Opt id, const char* value) {
    try {
        request.set(id, value ? value : "");
        return 0;
    } catch (const std::exception& e) {
        host.error(std::string("hawf: ") + e.what());
        return -1;
    }
}

int submit_post_opt(Host& host, const Request& request, const std::string& conf_path) {
    if (!request.any()) return 0;
    try {
        if (host.client() == Client::Salloc && request.checkpoint())
            throw Error(ErrorKind::Usage, "--hawf-checkpoint is for sbatch jobs and srun steps; inside this "
                                          "allocation give it to the srun step that should stop");
        const Config config = load_config(conf_path);
        Spool(config.spool).open_root();
        if (!request.checkpoint() && request.after() && !request.then()) return 0;  // a follow-up
        // Checks the combination with a stand-in id; the real one is known on the node.
        const CheckpointSpec spec = request.spec({"0", request.checkpoint().value_or("x")}, getuid(), "", "step",
                                                 config.default_options);
        for (const auto& then : spec.then)  // relative to the submit directory, which is ours
            if (access(then.script.c_str(), R_OK) != 0)
                throw Error(ErrorKind::Usage, "--hawf-then: cannot read script \"" + then.script +
                                                  "\": " + std::strerror(errno));
        if (host.client() != Client::Srun) return 0;
        // Inside a batch job that carries the checkpoint, srun inherits the option:
        // such a step is not the checkpoint; the batch step is.
        const auto job = host.getenv("SLURM_JOB_ID");
        const auto inherited = host.getenv("HAWF_CHECKPOINT");
        if (job && inherited && *inherited == *job + ":" + *request.checkpoint()) return 0;
        host.setenv(step_marker_env, *request.checkpoint());
        return 0;
    } catch (const std::exception& e) {
        host.error(std::string("hawf: ") + e.what());
        return -1;
    }
}

}  // namespace hawf::plugin
