// The engine's SPANK adapter (hawf_engine.so): the only C++ file that includes
// spank.h. The front plugin (hawf_front.c, hawf.so) loads it when a job uses a
// --hawf-* option and forwards that option and every later callback here. It
// implements Host over the SPANK API and forwards each callback to submit_side
// (srun/sbatch/salloc) or step_side (slurmstepd). No exception ever leaves a
// callback, and only callbacks whose failure cannot drain a node return an error
// (see spank(8), "Errors").
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>   // program_invocation_short_name
#include <cstddef>  // spank.h needs NULL
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

extern "C" {
#include <slurm/spank.h>
}

#include "config.hpp"
#include "display.hpp"
#include "engine.h"
#include "host.hpp"
#include "request.hpp"
#include "step_side.hpp"
#include "submit_side.hpp"

namespace {

using namespace hawf::plugin;

class SpankHost final : public Host {
public:
    explicit SpankHost(spank_t sp) : sp_(sp) {}

    Where where() const override {
        switch (spank_context()) {
            case S_CTX_LOCAL:
            case S_CTX_ALLOCATOR: return Where::Submit;
            case S_CTX_REMOTE: return Where::Stepd;
            default: return Where::Elsewhere;
        }
    }
    Client client() const override {
        switch (spank_context()) {
            case S_CTX_LOCAL: return Client::Srun;
            // sbatch and salloc are both allocators; only their names tell them apart.
            case S_CTX_ALLOCATOR:
                return std::string(program_invocation_short_name) == "salloc" ? Client::Salloc : Client::Sbatch;
            default: return Client::None;
        }
    }
    StepIds step() const override {
        StepIds ids;
        spank_get_item(sp_, S_JOB_ID, &ids.job_id);
        spank_get_item(sp_, S_JOB_STEPID, &ids.step_id);
        spank_get_item(sp_, S_JOB_ARRAY_ID, &ids.array_job_id);
        spank_get_item(sp_, S_JOB_ARRAY_TASK_ID, &ids.array_task_id);
        return ids;
    }
    std::uint32_t node_id() const override {
        std::uint32_t id = 0;
        spank_get_item(sp_, S_JOB_NODEID, &id);
        return id;
    }
    std::uint32_t node_count() const override {
        std::uint32_t count = 1;
        spank_get_item(sp_, S_JOB_NNODES, &count);
        return count;
    }
    JobUser user() const override {
        JobUser u;
        spank_get_item(sp_, S_JOB_UID, &u.uid);
        spank_get_item(sp_, S_JOB_GID, &u.gid);
        gid_t* groups = nullptr;
        int count = 0;
        if (spank_get_item(sp_, S_JOB_SUPPLEMENTARY_GIDS, &groups, &count) == ESPANK_SUCCESS && groups)
            u.groups.assign(groups, groups + count);
        if (u.groups.empty()) u.groups.push_back(u.gid);
        return u;
    }
    int task_exit_status() const override {
        int status = 0;
        spank_get_item(sp_, S_TASK_EXIT_STATUS, &status);
        return status;
    }
    std::vector<std::string> job_env() const override {
        char** env = nullptr;
        std::vector<std::string> copy;  // Slurm owns the array
        if (spank_get_item(sp_, S_JOB_ENV, &env) == ESPANK_SUCCESS && env)
            for (char** e = env; *e; ++e) copy.emplace_back(*e);
        return copy;
    }
    std::optional<std::string> getenv(const std::string& name) const override {
        if (where() != Where::Stepd) {
            const char* value = std::getenv(name.c_str());
            return value ? std::optional<std::string>(value) : std::nullopt;
        }
        std::string buf(4096, '\0');
        if (spank_getenv(sp_, name.c_str(), &buf[0], static_cast<int>(buf.size())) != ESPANK_SUCCESS)
            return std::nullopt;
        buf.resize(buf.find('\0'));
        return buf;
    }
    void setenv(const std::string& name, const std::string& value) override {
        if (where() == Where::Stepd) spank_setenv(sp_, name.c_str(), value.c_str(), 1);
        else ::setenv(name.c_str(), value.c_str(), 1);
    }
    // Lines can quote spool records: escaped, they cannot drive the user's terminal.
    void error(const std::string& line) override { slurm_error("%s", hawf::shown(line).c_str()); }
    std::uint32_t slurm_version() const override { return SLURM_VERSION_NUMBER; }
    std::optional<std::string> oci_config() const override {
        if (!getenv("SLURM_CONTAINER")) return std::nullopt;
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) return std::nullopt;
        std::string path = std::string(cwd) + "/config.json";
        struct stat st;
        return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? std::optional<std::string>(path) : std::nullopt;
    }

private:
    spank_t sp_;
};

// Process-wide state: one plugin instance per srun/sbatch/slurmstepd process.
Request request;
std::string conf_path = hawf::default_config_path;
std::string step_helper = default_step_helper;
std::unique_ptr<StepSide> step_side;

// Runs a callback's BODY; what it throws is logged and gives FAILED: 0 where a
// failure would drain the node or fail jobs that never asked for hawf, -1 in
// task_init of a job that did (it must not run without what it asked for).
template <typename F>
int guarded(const char* where, F&& body, int failed = 0) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        slurm_error("hawf: %s: %s", where, hawf::shown(e.what()).c_str());
    } catch (...) {
        slurm_error("hawf: %s: unexpected failure", where);
    }
    return failed;
}

}  // namespace

extern "C" {

int hawf_engine_start(int ac, char** av) {
    return guarded("init", [&] {
        for (int i = 0; i < ac; ++i) {
            const std::string arg = av[i];
            if (arg.rfind("conf=", 0) == 0) conf_path = arg.substr(5);
            else if (arg.rfind("step_helper=", 0) == 0) step_helper = arg.substr(12);
            else slurm_error("hawf: ignoring unknown plugstack argument \"%s\" (known: conf=PATH, step_helper=PATH)", av[i]);
        }
        spank_t none = nullptr;
        if (SpankHost(none).where() == Where::Stepd)
            step_side = std::make_unique<StepSide>(conf_path, helper_runner(step_helper));
        return 0;
    });
}

int hawf_engine_option(int id, const char* value, int remote) {
    return guarded("option", [&] {
        if (id < 0 || id >= HAWF_OPTION_COUNT) return -1;
        if (remote) {  // validated at submission; one refused here fails the job later (Request::collect)
            const std::string refused = request.collect(Opt(id), value ? value : "");
            if (!refused.empty())  // e.g. another hawf release on the submit host
                slurm_error("hawf: refusing an option value from the submit host: %s", hawf::shown(refused).c_str());
            return 0;
        }
        spank_t none = nullptr;
        SpankHost host(none);
        return submit_option(host, request, Opt(id), value);
    });
}

int hawf_engine_init_post_opt(spank_t sp, int, char**) {
    return guarded("init_post_opt", [&] {
        SpankHost host(sp);
        return host.where() == Where::Submit ? submit_post_opt(host, request, conf_path) : 0;
    });
}

int hawf_engine_user_init(spank_t sp, int, char**) {
    return guarded("user_init", [&] {
        SpankHost host(sp);
        if (step_side) step_side->user_init(host, request);
        return 0;  // a failing user_init drains the node: failures surface in task_init
    });
}

int hawf_engine_task_init(spank_t sp, int, char**) {
    return guarded(
        "task_init",
        [&] {
            SpankHost host(sp);
            return step_side ? step_side->task_init(host) : 0;
        },
        request.any() ? -1 : 0);
}

int hawf_engine_task_exit(spank_t sp, int, char**) {
    return guarded("task_exit", [&] {
        SpankHost host(sp);
        if (step_side) step_side->task_exit(host);
        return 0;
    });
}

int hawf_engine_exit(spank_t sp, int, char**) {
    return guarded("exit", [&] {
        SpankHost host(sp);
        if (step_side) step_side->exit(host);
        return 0;
    });
}

}  // extern "C"
