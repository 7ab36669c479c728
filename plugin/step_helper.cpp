#include "step_helper.hpp"

#include <unistd.h>

#include <ctime>

#include "actions.hpp"
#include "config.hpp"
#include "container.hpp"
#include "flow.hpp"
#include "followups.hpp"
#include "hawfd_client.hpp"
#include "local_jobs.hpp"
#include "munge.hpp"
#include "request.hpp"
#include "review.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {

namespace {

// What site policies match on: the job as slurmctld knows it, never anything the job
// or its user could set on this node. Slurm not answering fails the job (closed).
JobFacts job_facts(const Config& config, const std::string& job) {
    std::optional<JobInfo> info;
    try {
        info = slurm_of(config)->job(job);
    } catch (const Error& e) {
        throw Error(e.kind(), std::string("cannot ask Slurm for the partition, account and QOS the site policies "
                                          "match on: ") + e.what());
    }
    if (!info) throw Error(ErrorKind::NotFound, "Slurm does not know job " + job + ": cannot match the site policies");
    return {info->partition, info->account, info->qos};
}

// The spec of checkpoint REQ.id of OWNER from the job's options, the config's
// defaults and limits, and the site policies that match the job.
CheckpointSpec make_spec(const nlohmann::json& req, const Config& config, uid_t owner) {
    const CheckpointId id = parse_checkpoint_id(req.at("id").get<std::string>());
    CheckpointSpec spec = Request::from_given(req.at("options"))
                              .spec(id, owner, user_name(owner), parse_scope(req.at("scope").get<std::string>()), config);
    if (!config.policies.empty()) {
        apply_policies(config.policies, job_facts(config, id.job_id), spec);
        spec.check(config.limits);  // what a policy added, e.g. more requirements than a spec holds
    }
    return spec;
}

// seal, as root (slurmstepd's real uid): the owner can rewrite their tree, not forge
// uid 0's credential. Touches no spool (root is squashed there).
std::string seal(const nlohmann::json& req) {
    const Config config = load_config(req.at("conf").get<std::string>());
    CheckpointSpec spec = make_spec(req, config, req.at("uid").get<uid_t>());
    spec.seal = munge_encode(spec_seal_payload(spec), config.hawfd.munge_socket);
    return to_json(spec).dump();
}

// Submits the --hawf-then scripts of a checkpoint that just opened, held until its
// decision, and registers them; a requeued job does not submit them again. What
// sbatch reads is the copy taken at submission (SNAPSHOT, HAWF_THEN_SCRIPT of the
// job; "" if it has none), never the submit directory now; the follow-up records the
// script as given. An array's tasks share one follow-up array (submit_array_followups).
void submit_followups(const Spool& spool, const Slurm& slurm, const Checkpoint& ckpt, const std::string& submit_dir,
                      const std::string& snapshot, const std::vector<std::string>& env) {
    std::vector<FollowUpSubmission> what;
    for (const auto& then : ckpt.spec.then) {
        const std::string script = then.script[0] == '/' ? then.script : submit_dir + "/" + then.script;
        bool submitted = false;
        for (const auto& f : ckpt.followups) submitted = submitted || f.script == script;
        if (submitted) continue;
        if (snapshot.empty())  // fail closed: never read the submit directory now
            throw Error(ErrorKind::NotFound,
                        "the copy of " + quoted_text(then.script) + " taken at submission did not reach this job (no " +
                            then_script_env + " in its environment: submitted with --export=NONE or an --export "
                            "list without it, or from a host without the hawf plugin); submit it again with the "
                            "default --export=ALL, or chain the follow-up with hawf-await --then");
        what.push_back(FollowUpSubmission{script, spool.script_path(ckpt.spec.owner_uid, snapshot), then.on,
                                          submit_dir, &env, {}, {}});
    }
    if (what.empty()) return;
    if (ckpt.spec.id.job_id.find('_') != std::string::npos)  // an array task's batch step
        submit_array_followups(spool, slurm, ckpt, what, current_actor(Via::Plugin));
    else
        for (const auto& w : what) submit_followup(spool, slurm, ckpt.spec.id, ckpt.spec.owner_uid, w, current_actor(Via::Plugin));
}

// open, as the job user: the sealed spec slurmstepd passes, or one made here. The
// answer is {"dir": ...} once the checkpoint is open, plus {"error": ...} if its
// follow-up could not be submitted: the step then fails, and ends it.
std::string open(const nlohmann::json& req) {
    const Config config = load_config(req.at("conf").get<std::string>());
    const Spool spool = spool_of(config);
    const uid_t user = getuid();
    const CheckpointSpec spec = req.contains("spec") ? spec_from_json(req["spec"]) : make_spec(req, config, user);
    if (spec.owner_uid != user || spec.id.str() != req.at("id").get<std::string>())
        throw Error(ErrorKind::System, "the sealed spec is for another checkpoint or user");
    const Checkpoint ckpt = open_checkpoint(spool, spec, current_actor(Via::Plugin));
    nlohmann::json answer = {{"dir", spool.files_dir(user, spec.id)}};
    if (req.contains("env")) {  // this node submits the follow-ups
        try {
            submit_followups(spool, *slurm_of(config), ckpt, req.at("submit_dir").get<std::string>(), req.value("snapshot", ""),
                             req["env"].get<std::vector<std::string>>());
        } catch (const std::exception& e) {
            answer["error"] = std::string("cannot submit the --hawf-then follow-up: ") + e.what();
        }
    }
    return answer.dump();
}

// deliver, as the job user. A delegated checkpoint's decision must carry hawfd's seal
// (munge_socket verifies it); with hawfd, so must its spec carry root's. The job's
// environment ("env", followup_environment) is what sbatch gets when the job is a
// round of a flow's loop and submits the next.
std::string deliver(const nlohmann::json& req) {
    const CheckpointId after = parse_checkpoint_id(req.at("after").get<std::string>());
    const std::string job = req.at("job").get<std::string>();
    Config config;
    try {
        config = load_config(req.at("conf").get<std::string>());
    } catch (const Error& e) {  // often brief (hawf.yaml being edited): wait held rather than fail
        back_to_held(Slurm(), job, after, std::string("cannot read the config: ") + e.what());
    }
    const Spool spool = spool_of(config);
    const std::unique_ptr<Slurm> slurm = slurm_of(config);
    const Environment env = start_followup(spool, *slurm, getuid(), after, job, std::time(nullptr),
                                           config.hawfd.munge_socket, config.hawfd_configured());
    // A round of a flow's loop submits the next (sbatch with the job's environment).
    const auto job_env = req.value("env", std::vector<std::string>{});
    continue_flow(spool, *slurm, getuid(), job, &job_env, current_actor(Via::Plugin));
    return nlohmann::json(env).dump();
}

// end, as the job user: the step's status (a wait status) on this node.
std::string end(const nlohmann::json& req) {
    const Config config = load_config(req.at("conf").get<std::string>());
    const Spool spool = spool_of(config);
    const uid_t user = getuid();
    const CheckpointId id = parse_checkpoint_id(req.at("id").get<std::string>());
    Checkpoint ckpt;
    try {
        ckpt = end_checkpoint(spool, user, id, req.at("status").get<int>(), current_actor(Via::Plugin),
                              req.at("node").get<std::uint32_t>(), req.at("nodes").get<std::uint32_t>());
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NotFound && req.at("opening_failed").get<bool>()) return "";  // never began
        throw;
    }
    // A failed srun step's follow-ups would wait for ever if the job succeeds: cancel
    // them. Those of a failed batch step are Slurm's (afterok, kill-on-invalid-dep):
    // it cancels them when the job fails, and keeps them when the job is requeued,
    // which reopens the checkpoint without submitting them again.
    const bool cancel = ckpt.state == State::Failed && ckpt.spec.scope == Scope::Step;
    const std::unique_ptr<Slurm> slurm = slurm_of(config);
    const auto changes = cancel ? sync_followups(*slurm, ckpt) : schedule_deadline(*slurm, ckpt);
    // hawfd tells who waits for it (a hint, bounded in time, never an error here).
    if (ckpt.state == State::Pending || ckpt.state == State::Failed) nudge_hawfd(config, user, id);
    std::string refused;
    for (const auto& change : changes)
        if (!change.error.empty()) refused += "; follow-up " + change.job + " not " + change.action_text() + ": " + change.error;
    if (!refused.empty()) throw Error(ErrorKind::System, "Slurm refused" + refused);
    return "";
}

// oci, as the job user: adds the step's HAWF_* variables and binds to the config.json
// Slurm wrote for its native container (Host::oci_config). The file is root's but
// group-readable by the user, in a directory of theirs.
std::string oci(const nlohmann::json& req) {
    const std::string path = req.at("config").get<std::string>();
    if (path.empty() || path[0] != '/') throw Error(ErrorKind::Usage, "not an absolute path: " + quoted_text(path));
    if (!amend_oci_config_file(path, 0, req.at("env").get<Environment>()))
        throw Error(ErrorKind::NotFound, "no " + path);
    return "";
}

}  // namespace

std::string run_step_verb(const std::string& verb, const std::string& request) {
    using Verb = std::string (*)(const nlohmann::json&);
    static const std::pair<const char*, Verb> verbs[] = {
        {"seal", seal}, {"open", open}, {"deliver", deliver}, {"end", end}, {"oci", oci}};
    for (const auto& [name, run] : verbs) {
        if (verb != name) continue;
        try {
            return run(parse_json(request));
        } catch (const nlohmann::json::exception& e) {  // slurmstepd and this helper do not match
            throw Error(ErrorKind::System, "hawf-step-helper " + verb + ": a request it cannot read: " + e.what());
        }
    }
    throw Error(ErrorKind::Usage, "hawf-step-helper: unknown verb " + quoted_text(verb) +
                                      " (known: seal, open, deliver, end, oci; run by the hawf SPANK plugin only)");
}

}  // namespace hawf::plugin
