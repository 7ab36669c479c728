#include "step_side.hpp"

#include "actions.hpp"
#include "config.hpp"
#include "run_as_user.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {
namespace {

constexpr std::uint32_t extern_step_id = 0xfffffffc;       // SLURM_EXTERN_CONT
constexpr std::uint32_t interactive_step_id = 0xfffffffa;  // SLURM_INTERACTIVE_STEP

// The batch step carries an sbatch checkpoint; an srun step one given to that srun.
std::optional<std::string> checkpoint_scope(const Host& host, const Request& request) {
    if (!request.checkpoint()) return std::nullopt;
    const StepIds ids = host.step();
    if (ids.step_id == batch_step_id) return "job";
    if (ids.step_id == extern_step_id || ids.step_id == interactive_step_id) return std::nullopt;
    if (host.getenv(step_marker_env) == request.checkpoint()) return "step";
    return std::nullopt;
}

std::string job_id_text(const StepIds& ids) {
    constexpr std::uint32_t no_val = 0xfffffffe;  // NO_VAL: srun steps report it as the task id
    if (ids.array_job_id && ids.array_task_id != no_val)
        return std::to_string(ids.array_job_id) + "_" + std::to_string(ids.array_task_id);
    return std::to_string(ids.job_id);
}

}  // namespace

void StepSide::user_init(Host& host, const Request& request) {
    const auto scope = checkpoint_scope(host, request);
    if (!scope) return;
    const StepIds ids = host.step();
    const CheckpointId id{job_id_text(ids), *request.checkpoint()};
    const JobUser user = host.user();
    Outcome out = run_as_user(user, [&] {
        const Config config = load_config(conf_path_);
        const Spool spool(config.spool);
        const CheckpointSpec spec = request.spec(id, user.uid, user_name(user.uid), *scope, config.default_options);
        open_checkpoint(spool, spec, current_actor("plugin"));
        return spool.files_dir(user.uid, id);
    });
    if (!out.ok) {
        failure_ = "cannot open checkpoint " + id.str() + ": " + out.text;
        return;
    }
    host.setenv("HAWF_CHECKPOINT", id.str());
    host.setenv("HAWF_CHECKPOINT_DIR", out.text);
    if (conf_path_ != default_config_path) host.setenv("HAWF_CONF", conf_path_);
    opened_ = id;
}

int StepSide::task_init(Host& host) {
    if (!failure_) return 0;
    host.error("hawf: " + *failure_);
    return -1;
}

void StepSide::task_exit(Host& host) {
    if (opened_ && exit_status_ == 0) exit_status_ = host.task_exit_status();
}

void StepSide::exit(Host& host) {
    if (!opened_) return;
    const CheckpointId id = *opened_;
    const JobUser user = host.user();
    const std::uint32_t node = host.node_id(), nodes = host.node_count();
    Outcome out = run_as_user(user, [&] {
        const Spool spool(load_config(conf_path_).spool);
        end_checkpoint(spool, user.uid, id, exit_status_, current_actor("plugin"), node, nodes);
        return std::string();
    });
    if (!out.ok) host.error("hawf: cannot end checkpoint " + id.str() + ": " + out.text);
}

}  // namespace hawf::plugin
