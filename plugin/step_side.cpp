#include "step_side.hpp"

#include <ctime>

#include "actions.hpp"
#include "config.hpp"
#include "error.hpp"
#include "followups.hpp"
#include "hawfd_client.hpp"
#include "munge.hpp"
#include "review.hpp"
#include "run_as_user.hpp"
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
std::vector<std::string> followup_environment(const std::vector<std::string>& job_env) {
    std::vector<std::string> env;
    for (const auto& entry : job_env) {
        const bool job_specific = (entry.rfind("SLURM_", 0) == 0 && entry.rfind("SLURM_CONF=", 0) != 0) ||
                                  entry.rfind("HAWF_", 0) == 0;
        if (!job_specific) env.push_back(entry);
    }
    return env;
}

// Submits the --hawf-then scripts of a checkpoint that just opened, held until its
// decision, and registers them; a requeued job does not submit them again. What
// sbatch reads is the copy taken at submission (SNAPSHOT, HAWF_THEN_SCRIPT of the
// job), never the submit directory now; the follow-up records the script as given.
void submit_followups(const Spool& spool, const Checkpoint& ckpt, const std::string& submit_dir,
                      const std::optional<std::string>& snapshot, const std::vector<std::string>& env) {
    const Slurm slurm;
    for (const auto& then : ckpt.spec.then) {
        const std::string script = then.script[0] == '/' ? then.script : submit_dir + "/" + then.script;
        bool submitted = false;
        for (const auto& f : ckpt.followups) submitted = submitted || f.script == script;
        if (submitted) continue;
        if (!snapshot || snapshot->empty())  // fail closed: never read the submit directory now
            throw Error(ErrorKind::NotFound,
                        "the copy of " + quoted_text(then.script) + " taken at submission did not reach this job (no " +
                            then_script_env + " in its environment: submitted with --export=NONE or an --export "
                            "list without it, or from a host without the hawf plugin); submit it again with the "
                            "default --export=ALL, or chain the follow-up with hawf-await --then");
        submit_followup(spool, slurm, ckpt.spec.id, ckpt.spec.owner_uid,
                        FollowUpSubmission{script, spool.script_path(ckpt.spec.owner_uid, *snapshot), then.on,
                                           submit_dir, &env, {}},
                        current_actor(Via::Plugin));
    }
}

// What site policies match on: the job as slurmctld knows it, never anything the job
// or its user could set on this node. Slurm not answering fails the job (closed).
JobFacts job_facts(const std::string& job) {
    std::optional<JobInfo> info;
    try {
        info = Slurm().job(job);
    } catch (const Error& e) {
        throw Error(e.kind(), std::string("cannot ask Slurm for the partition, account and QOS the site policies "
                                          "match on: ") + e.what());
    }
    if (!info) throw Error(ErrorKind::NotFound, "Slurm does not know job " + job + ": cannot match the site policies");
    return {info->partition, info->account, info->qos};
}

}  // namespace

void StepSide::user_init(Host& host, const Request& request) noexcept {
    try {
        if (const auto after = request.after(); after && host.step().step_id == batch_step_id)
            start_followup_job(host, *after);
        if (failure_) return;
        if (const auto scope = checkpoint_scope(host, request)) open(host, request, *scope);
    } catch (const std::exception& e) {  // fail closed: this job asked for hawf
        if (!failure_) failure_ = std::string("internal error: ") + e.what();
    }
}

void StepSide::start_followup_job(Host& host, const CheckpointId& after) {
    const StepIds ids = host.step();
    const std::string job = std::to_string(ids.array_job_id && ids.array_task_id != no_val ? ids.array_job_id : ids.job_id);
    const JobUser user = host.user();
    Outcome out = runner_(user, [&] {
        const Config config = load_config(conf_path_);
        // A delegated checkpoint's decision must carry hawfd's seal (munge_socket verifies it).
        // With hawfd, so must its spec carry root's seal (the owner could have rewritten it).
        nlohmann::json env = start_followup(spool_of(config), Slurm(), user.uid, after, job, std::time(nullptr),
                                            config.hawfd.munge_socket, config.hawfd_configured());
        return env.dump();
    }, 120, {});
    if (!out.ok) {
        failure_ = out.text;
        return;
    }
    // The child recorded `applied`: an answer it did not finish must fail the job,
    // never let it run without its decision.
    Environment env;
    try {
        env = parse_json(out.text).get<Environment>();
    } catch (const nlohmann::json::exception&) {
        failure_ = "cannot read the decision the spool writer answered: " + quoted_text(out.text.substr(0, 200));
        return;
    }
    for (const auto& [name, value] : env) host.setenv(name, value);
}

void StepSide::open(Host& host, const Request& request, Scope scope) {
    const StepIds ids = host.step();
    const CheckpointId id{job_id_text(ids), *request.checkpoint()};
    const JobUser user = host.user();
    const bool submits_followups = host.node_id() == 0 && request.then();
    const std::string submit_dir = host.getenv("SLURM_SUBMIT_DIR").value_or("/");
    const std::vector<std::string> env = submits_followups ? followup_environment(host.job_env()) : std::vector<std::string>{};
    const std::optional<std::string> snapshot = submits_followups ? host.getenv(then_script_env) : std::nullopt;
    const auto make_spec = [&](const Config& config) {
        CheckpointSpec spec = request.spec(id, user.uid, user_name(user.uid), scope, config);
        if (!config.policies.empty()) {
            apply_policies(config.policies, job_facts(id.job_id), spec);
            spec.check(config.limits);  // what a policy added, e.g. more requirements than a spec holds
        }
        return spec;
    };
    // With hawfd configured, the child first makes the spec as root and seals it with
    // root's munge credential (the owner can rewrite their tree, not forge uid 0): the
    // config, the site policies (squeue), the checks, munge. Nothing else runs as root,
    // and the spool only after the child dropped fully. Without hawfd, no seal.
    std::optional<Config> config;          // read once, in the child
    std::optional<CheckpointSpec> sealed;  // set in the child
    const auto seal_as_root = [&] {
        config = load_config(conf_path_);
        if (!config->hawfd_configured()) return;
        CheckpointSpec spec = make_spec(*config);
        spec.seal = munge_encode(spec_seal_payload(spec), config->hawfd.munge_socket);
        sealed = std::move(spec);
    };
    // The child answers {"dir": ...} once the checkpoint is open, plus {"error": ...}
    // if its follow-up could not be submitted: the step then fails, and ends it.
    Outcome out = runner_(user, [&] {
        const Spool spool = spool_of(*config);
        const CheckpointSpec spec = sealed ? *sealed : make_spec(*config);
        const Checkpoint ckpt = open_checkpoint(spool, spec, current_actor(Via::Plugin));
        nlohmann::json answer = {{"dir", spool.files_dir(user.uid, id)}};
        try {
            if (submits_followups) submit_followups(spool, ckpt, submit_dir, snapshot, env);
        } catch (const std::exception& e) {
            answer["error"] = std::string("cannot submit the --hawf-then follow-up: ") + e.what();
        }
        return answer.dump();
    }, 120, seal_as_root);
    // Perhaps open in the spool even if the child failed later (killed at its timeout,
    // say): exit() ends it, as failed when this job fails, so it never stays running.
    opened_ = id;
    if (!out.ok) {
        failure_ = "cannot open checkpoint " + id.str() + ": " + out.text;
        return;
    }
    const nlohmann::json answer = parse_json(out.text);
    if (!answer.is_object() || !answer.contains("dir") || !answer["dir"].is_string()) {
        failure_ = "cannot open checkpoint " + id.str() + ": the spool writer answered " +
                   quoted_text(out.text.substr(0, 200));
        return;
    }
    if (answer.contains("error")) failure_ = answer.value("error", "cannot submit the --hawf-then follow-up");
    host.setenv("HAWF_CHECKPOINT", id.str());
    host.setenv("HAWF_CHECKPOINT_DIR", answer["dir"].get<std::string>());
    if (conf_path_ != default_config_path) host.setenv("HAWF_CONF", conf_path_);
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
    Outcome out = runner_(user, [&] {
        const Config config = load_config(conf_path_);
        const Spool spool = spool_of(config);
        // A step whose tasks never started (task_init refused them) did not succeed.
        const int status = failure_ && exit_status_ == 0 ? 1 << 8 : exit_status_;
        Checkpoint ckpt;
        try {
            ckpt = end_checkpoint(spool, user.uid, id, status, current_actor(Via::Plugin), node, nodes);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NotFound && failure_) return std::string();  // opening failed before it began
            throw;
        }
        // A failed srun step's follow-ups would wait for ever if the job succeeds: cancel
        // them. Those of a failed batch step are Slurm's (afterok, kill-on-invalid-dep):
        // it cancels them when the job fails, and keeps them when the job is requeued,
        // which reopens the checkpoint without submitting them again.
        const bool cancel = ckpt.state == State::Failed && ckpt.spec.scope == Scope::Step;
        const auto changes = cancel ? sync_followups(Slurm(), ckpt) : schedule_deadline(Slurm(), ckpt);
        // hawfd tells who waits for it (a hint, bounded in time, never an error here).
        if (ckpt.state == State::Pending || ckpt.state == State::Failed) nudge_hawfd(config, user.uid, id);
        std::string refused;
        for (const auto& change : changes)
            if (!change.error.empty()) refused += "; follow-up " + change.job + " not " + change.action_text() + ": " + change.error;
        if (!refused.empty()) throw Error(ErrorKind::System, "Slurm refused" + refused);
        return std::string();
    }, 120, {});
    if (!out.ok) host.error("hawf: cannot end checkpoint " + id.str() + ": " + out.text);
}

}  // namespace hawf::plugin
