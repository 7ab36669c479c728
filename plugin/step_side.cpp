#include "step_side.hpp"

#include <cstdlib>

#include "config.hpp"
#include "container.hpp"
#include "error.hpp"
#include "followups.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {
namespace {

constexpr std::uint32_t extern_step_id = 0xfffffffc;       // SLURM_EXTERN_CONT
constexpr std::uint32_t interactive_step_id = 0xfffffffa;  // SLURM_INTERACTIVE_STEP

// The batch step carries an sbatch checkpoint; an srun step one given to that srun.
std::optional<Scope> checkpoint_scope(const Host& host, const Request& request) {
    if (!request.checkpoint()) return std::nullopt;
    const StepIds ids = host.step();
    if (ids.step_id == batch_step_id) return Scope::Job;
    if (ids.step_id == extern_step_id || ids.step_id == interactive_step_id) return std::nullopt;
    if (host.getenv(step_marker_env) == request.checkpoint()) return Scope::Step;
    return std::nullopt;
}

constexpr std::uint32_t no_val = 0xfffffffe;  // NO_VAL: srun steps report it as the array task id

std::string job_id_text(const StepIds& ids) {
    if (ids.array_job_id && ids.array_task_id != no_val)
        return std::to_string(ids.array_job_id) + "_" + std::to_string(ids.array_task_id);
    return std::to_string(ids.job_id);
}

// The environment a follow-up's sbatch runs with: the job's own (so the follow-up
// gets the user's environment, not slurmstepd's), without what describes this job
// or its step (SLURM_*, except where slurm.conf is, and HAWF_*): sbatch would
// otherwise take them as options, the --hawf-checkpoint of this job among them.
// In a step of Slurm's native container the job's environment holds the image's
// variables over the user's (Slurm merges the bundle's process.env into it since
// 23.02), PATH among them, where Slurm's commands may not be: sbatch is looked for in
// slurmstepd's own PATH first (STEPD_PATH), then in that one.
std::vector<std::string> followup_environment(const std::vector<std::string>& job_env, bool in_container,
                                              const char* stepd_path) {
    std::vector<std::string> env;
    for (const auto& entry : job_env) {
        const bool job_specific = (entry.rfind("SLURM_", 0) == 0 && entry.rfind("SLURM_CONF=", 0) != 0) ||
                                  entry.rfind("HAWF_", 0) == 0;
        if (job_specific) continue;
        if (in_container && stepd_path && entry.rfind("PATH=", 0) == 0)
            env.push_back("PATH=" + std::string(stepd_path) + ":" + entry.substr(5));
        else env.push_back(entry);
    }
    return env;
}

// What sbatch runs with when this step submits a job: a --hawf-then follow-up, or a
// flow loop's next round.
std::vector<std::string> submit_environment(const Host& host) {
    return followup_environment(host.job_env(), host.getenv("SLURM_CONTAINER").has_value(), std::getenv("PATH"));
}

}  // namespace

void StepSide::user_init(Host& host, const Request& request) noexcept {
    try {
        if (const auto after = request.after(); after && host.step().step_id == batch_step_id)
            start_followup_job(host, *after);
        if (failure_) return;
        if (const auto scope = checkpoint_scope(host, request)) open(host, request, *scope);
        if (!failure_ && !exported_.empty()) reach_containers(host);
    } catch (const std::exception& e) {  // fail closed: this job asked for hawf
        if (!failure_) failure_ = std::string("internal error: ") + e.what();
    }
}

void StepSide::start_followup_job(Host& host, const FollowUpOf& after) {
    const StepIds ids = host.step();
    const bool task = ids.array_job_id && ids.array_task_id != no_val;
    if (after.each_task && !task) {
        failure_ = "--hawf-after=" + after.str() + " is for the tasks of a follow-up array (sbatch --array)";
        return;
    }
    // A follow-up array's task T of an array's checkpoints waits for task T's (and is
    // registered as "4301_7"); the tasks of one submitted with --array for a single
    // checkpoint all wait for it, registered as the array job.
    const CheckpointId of = after.for_task(ids.array_task_id);
    const std::string job = !task ? std::to_string(ids.job_id)
                            : after.each_task ? job_id_text(ids)
                                              : std::to_string(ids.array_job_id);
    const nlohmann::json request = {{"conf", conf_path_}, {"after", of.str()}, {"job", job}, {"env", submit_environment(host)}};
    const Outcome out = runner_(host.user(), HelperCall{"deliver", request.dump()});
    if (!out.ok) {
        failure_ = out.text;
        return;
    }
    // The helper recorded `applied`: an answer it did not finish must fail the job,
    // never let it run without its decision.
    Environment env;
    try {
        env = parse_json(out.text).get<Environment>();
    } catch (const nlohmann::json::exception&) {
        failure_ = "cannot read the decision the spool writer answered: " + quoted_text(out.text.substr(0, 200));
        return;
    }
    export_vars(host, env);
}

void StepSide::open(Host& host, const Request& request, Scope scope) {
    const StepIds ids = host.step();
    const CheckpointId id{job_id_text(ids), *request.checkpoint()};
    const JobUser user = host.user();
    const auto fail = [&](const std::string& why) { failure_ = "cannot open checkpoint " + id.str() + ": " + why; };
    if (request.refused()) return fail(*request.refused());
    nlohmann::json open = {{"conf", conf_path_}, {"id", id.str()}, {"scope", to_string(scope)}};
    if (host.node_id() == 0 && request.then()) {  // this node submits the follow-ups
        open["submit_dir"] = host.getenv("SLURM_SUBMIT_DIR").value_or("/");
        open["env"] = submit_environment(host);
        if (const auto snapshot = host.getenv(then_script_env)) open["snapshot"] = *snapshot;
    }
    // With hawfd configured, the spec is made as root and sealed with root's munge
    // credential (the owner can rewrite their tree, not forge uid 0): the helper's
    // `seal`, the only work done as root. The spool only as the user, after.
    try {
        if (load_config(conf_path_).hawfd_configured()) {
            const nlohmann::json seal = {
                {"conf", conf_path_}, {"id", id.str()}, {"scope", to_string(scope)}, {"uid", user.uid},
                {"options", request.given()}};
            const Outcome sealed = runner_(user, HelperCall{"seal", seal.dump(), true});
            if (!sealed.ok) return fail(sealed.text);
            open["spec"] = parse_json(sealed.text);
        } else {
            open["options"] = request.given();
        }
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    const Outcome out = runner_(user, HelperCall{"open", open.dump()});
    // Perhaps open in the spool even if the helper failed later (killed at its timeout,
    // say): exit() ends it, as failed when this job fails, so it never stays running.
    opened_ = id;
    if (!out.ok) return fail(out.text);
    nlohmann::json answer;
    try {
        answer = parse_json(out.text);
    } catch (const std::exception&) {
    }
    if (!answer.is_object() || !answer.contains("dir") || !answer["dir"].is_string())
        return fail("the spool writer answered " + quoted_text(out.text.substr(0, 200)));
    if (answer.contains("error")) failure_ = answer.value("error", "cannot submit the --hawf-then follow-up");
    Environment env = {{"HAWF_CHECKPOINT", id.str()}, {"HAWF_CHECKPOINT_DIR", answer["dir"].get<std::string>()}};
    if (conf_path_ != default_config_path) env.emplace_back("HAWF_CONF", conf_path_);
    export_vars(host, env);
}

void StepSide::export_vars(Host& host, const Environment& env) {
    for (const auto& [name, value] : env) {
        host.setenv(name, value);
        exported_.emplace_back(name, value);
    }
}

// The step's tasks may run in a container: each runtime gets the variables and the
// binds of the paths they name in its own terms. Apptainer's variables are set
// whatever the task runs (a task may start a container itself); Slurm's native
// container's config.json where it is written already. pyxis passes the job's
// environment itself, and enroot binds through hawf's hook (etc/enroot).
void StepSide::reach_containers(Host& host) {
    const std::vector<Bind> binds = container_binds(exported_);
    const auto current = [&](const std::string& name) { return host.getenv(name); };
    Environment all = exported_;  // what the step's tasks see on the host
    for (const auto& [name, value] : apptainer_environment(exported_, binds, current)) {
        host.setenv(name, value);
        all.emplace_back(name, value);
    }
    const std::optional<std::string> config = host.oci_config();
    if (!config) return;
    const nlohmann::json request = {{"config", *config}, {"env", all}};
    const Outcome out = runner_(host.user(), HelperCall{"oci", request.dump()});
    if (!out.ok) failure_ = "cannot pass the checkpoint to the step's container: " + out.text;
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
    // A step whose tasks never started (task_init refused them) did not succeed.
    const int status = failure_ && exit_status_ == 0 ? 1 << 8 : exit_status_;
    const nlohmann::json request = {{"conf", conf_path_},          {"id", opened_->str()},
                                    {"status", status},            {"opening_failed", failure_.has_value()},
                                    {"node", host.node_id()},      {"nodes", host.node_count()}};
    const Outcome out = runner_(host.user(), HelperCall{"end", request.dump()});
    if (!out.ok) host.error("hawf: cannot end checkpoint " + opened_->str() + ": " + out.text);
}

}  // namespace hawf::plugin
