#include "followups.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "error.hpp"
#include "review.hpp"

namespace hawf {
namespace {

bool releases(const Checkpoint& ckpt, const FollowUp& f, const std::string& choice) {
    auto on = ckpt.releasing_choices(f);
    return std::find(on.begin(), on.end(), choice) != on.end();
}

// What squeue shows of a change: made, not (yet) made, or moot because the job
// has ended (nothing left to hold or cancel).
enum class Seen { Done, NotDone, Ended };
using Check = std::function<Seen(const std::optional<JobInfo>&)>;

bool has_ended(const std::string& state) {
    for (const char* s : {"COMPLETED", "COMPLETING", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                          "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"})
        if (state == s) return true;
    return false;
}

// Released: no longer held and, if it waited for a deadline, eligible now (a few
// seconds of clock skew allowed); a job that runs was released too.
Check released(bool begin_now) {
    return [begin_now](const std::optional<JobInfo>& j) {
        if (!j || has_ended(j->state)) return Seen::Ended;
        if (j->held) return Seen::NotDone;
        if (j->state == "PENDING" && begin_now && j->eligible > std::time(nullptr) + 5) return Seen::NotDone;
        return Seen::Done;
    };
}

Seen cancelled(const std::optional<JobInfo>& j) {
    if (j && (j->state == "CANCELLED" || j->state == "COMPLETING")) return Seen::Done;
    return !j || has_ended(j->state) ? Seen::Ended : Seen::NotDone;
}

Seen held(const std::optional<JobInfo>& j) {
    if (!j || has_ended(j->state)) return Seen::Ended;
    return j->held ? Seen::Done : Seen::NotDone;
}

// Waits for the deadline AT (and, with RELEASED, no longer held).
Check eligible_at(std::int64_t at, bool released) {
    return [at, released](const std::optional<JobInfo>& j) {
        return j && j->state == "PENDING" && j->eligible == at && !(released && j->held) ? Seen::Done
                                                                                          : Seen::NotDone;
    };
}


std::string failure_of(const std::function<void()>& body) {
    try {
        body();
        return "";
    } catch (const Error& e) {
        return e.what();
    }
}

// Runs one Slurm change (BODY, idempotent) and makes sure of its outcome. A failure
// is checked against what squeue shows (SEEN): the change may be made all the same.
// A refusal stays a refusal; with no answer, hawf asks again and repeats the command
// (a lost request is sent again) until PATIENCE runs out, and then says it cannot
// tell rather than that it was not done.
FollowUpChange change(const Slurm& slurm, const std::string& job, FollowUpAction action, const std::string& at,
                      const std::function<void()>& body, const Check& seen, const Patience& patience) {
    FollowUpChange c{job, action, at, "", false};
    std::string failure = failure_of(body);
    if (failure.empty()) return c;
    const auto give_up = std::chrono::steady_clock::now() + patience.total;
    auto pause = patience.first;
    for (;;) {
        // The job has ended (cancelled by hand, failed at start): nothing left to hold,
        // cancel or release; the decision stands, and says so.
        if (classify_failure(failure) == SlurmFailure::JobGone) {
            c.action = FollowUpAction::AlreadyEnded;
            return c;
        }
        std::optional<Seen> shows;
        try {
            shows = seen(slurm.job(job));
        } catch (const Error&) {  // slurmctld does not answer this either
        }
        if (shows == Seen::Done) return c;
        if (shows == Seen::Ended) {
            c.action = FollowUpAction::AlreadyEnded;
            return c;
        }
        // No answer from slurmctld: it may have done it, may still do it, or never got it.
        if (classify_failure(failure) != SlurmFailure::NoAnswer) {
            c.error = failure;
            return c;
        }
        if (std::chrono::steady_clock::now() + pause > give_up) break;
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(8));
        // Slurm answers again and has not done it: the request may be lost, send it again.
        if (shows) {
            failure = failure_of(body);
            if (failure.empty()) return c;
        }
    }
    c.error = "Slurm did not answer: follow-up " + job + " may or may not be " + c.action_text() + " (check squeue --jobs=" +
              job + ")";
    c.unsure = true;
    return c;
}

// One change syncing asks of Slurm for one follow-up.
struct Planned {
    std::string job;
    FollowUpAction action = FollowUpAction::Released;
    std::int64_t deadline = 0;  // Eligible: the begin time; Released: it waited for one (begin now too)
};

void plan(const Checkpoint& ckpt, const std::string& skip, std::vector<Planned>& plans) {
    const Decision* d = ckpt.decision();
    for (const auto& f : ckpt.followups) {
        if (f.job == skip) continue;
        if (d && releases(ckpt, f, d->choice))
            plans.push_back({f.job, FollowUpAction::Released, ckpt.spec.timeout_s != 0 ? ckpt.deadline() : 0});
        else if (d || ckpt.state == State::Failed)  // a failed checkpoint will never release them
            plans.push_back({f.job, FollowUpAction::Cancelled});
        else if (ckpt.state == State::Pending && ckpt.deadline())
            plans.push_back({f.job, FollowUpAction::Eligible, ckpt.deadline()});
        else if (ckpt.state == State::Pending)
            plans.push_back({f.job, FollowUpAction::Held});
    }
}

FollowUpChange carry_out(const Slurm& slurm, const Planned& p, const Patience& patience) {
    switch (p.action) {
        case FollowUpAction::Released:
            return change(
                slurm, p.job, p.action, "",
                [&] {
                    if (p.deadline) slurm.update(p.job, {"StartTime=now"});
                    slurm.release(p.job);
                },
                released(p.deadline != 0), patience);
        case FollowUpAction::Cancelled:
            return change(slurm, p.job, p.action, "", [&] { slurm.cancel(p.job); }, cancelled, patience);
        case FollowUpAction::Eligible: {
            const std::string at = format_local_time(p.deadline);
            return change(slurm, p.job, p.action, at, [&] { slurm.update(p.job, {"StartTime=" + at}); },
                          eligible_at(p.deadline, false), patience);
        }
        default:
            return change(slurm, p.job, FollowUpAction::Held, "", [&] { slurm.hold(p.job); }, held, patience);
    }
}

// PLANS carried out, each on its own or, TOGETHER, plain releases, cancels and holds
// of several follow-ups each in one command (a whole follow-up array's tasks in one
// request to slurmctld); only if such a command fails is each of its follow-ups
// carried out (and checked) on its own.
std::vector<FollowUpChange> carry_out(const Slurm& slurm, const std::vector<Planned>& plans, const Patience& patience,
                                      bool together) {
    const auto batchable = [](const Planned& p) { return p.action != FollowUpAction::Eligible && !p.deadline; };
    std::map<FollowUpAction, std::vector<std::string>> batches;
    for (const auto& p : plans)
        if (together && batchable(p)) batches[p.action].push_back(p.job);
    std::map<FollowUpAction, bool> done;  // each batch of more than one: made in one command
    for (const auto& [action, jobs] : batches) {
        if (jobs.size() < 2) continue;
        done[action] = failure_of([&, action = action, &jobs = jobs] {
                           if (action == FollowUpAction::Released) slurm.release(jobs);
                           else if (action == FollowUpAction::Cancelled) slurm.cancel(jobs);
                           else slurm.hold(jobs);
                       }).empty();
    }
    std::vector<FollowUpChange> changes;
    for (const auto& p : plans)
        changes.push_back(batchable(p) && done[p.action] ? FollowUpChange{p.job, p.action, "", "", false}
                                                          : carry_out(slurm, p, patience));
    return changes;
}

}  // namespace

std::vector<FollowUpChange> sync_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& skip,
                                           const Patience& patience) {
    std::vector<Planned> plans;
    plan(ckpt, skip, plans);
    return carry_out(slurm, plans, patience, false);
}

std::vector<FollowUpChange> sync_followups(const Slurm& slurm, const std::vector<Checkpoint>& ckpts,
                                           const Patience& patience) {
    std::vector<Planned> plans;
    for (const auto& ckpt : ckpts) plan(ckpt, "", plans);
    return carry_out(slurm, plans, patience, true);
}

std::vector<FollowUpChange> schedule_deadline(const Slurm& slurm, const Checkpoint& ckpt, const std::string& only,
                                              const Patience& patience) {
    std::vector<FollowUpChange> changes;
    // A delegated checkpoint's default needs hawfd's seal: hawfd takes it at the
    // deadline and releases the follow-ups then; started earlier, they would fail.
    if (ckpt.state != State::Pending || !ckpt.deadline() || ckpt.spec.delegated()) return changes;
    const std::string at = format_local_time(ckpt.deadline());
    for (const auto& f : ckpt.followups)
        if (only.empty() || f.job == only)
            changes.push_back(change(
                slurm, f.job, FollowUpAction::Eligible, at,
                [&] {
                    slurm.update(f.job, {"StartTime=" + at});
                    slurm.release(f.job);
                },
                eligible_at(ckpt.deadline(), true), patience));
    return changes;
}

namespace {

// The fields of SHAPE that ASSIGNMENTS change: NumNodes brings NumCPUs and NumTasks
// (Slurm changes them with it).
std::vector<std::string> touched_keys(const std::vector<std::string>& assignments) {
    std::vector<std::string> keys;
    for (const auto& a : assignments) {
        const std::string key = a.substr(0, a.find('='));
        keys.push_back(key);
        if (key == "NumNodes") keys.insert(keys.end(), {"NumCPUs", "NumTasks"});
    }
    return keys;
}

// "TimeLimit UNLIMITED -> 5:00, NumNodes 1 -> 2" for people: what differs.
std::string differences(const JobShape& before, const JobShape& after) {
    std::string text;
    for (const auto& [key, was] : before) {
        const auto now = after.find(key);
        const std::string is = now == after.end() ? "?" : now->second;
        if (is != was) text += (text.empty() ? "" : ", ") + key + " " + was + " -> " + is;
    }
    return text;
}

struct Reshaped {
    std::string job;
    JobShape before;
};

// Puts each follow-up in DONE back as it was (the KEYS of its shape before), newest
// first, and says so; or, where Slurm refuses that too, what state each is left in.
std::string put_back(const Slurm& slurm, const std::vector<Reshaped>& done, const std::vector<std::string>& keys) {
    std::string left;
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
        std::vector<std::string> restore;
        for (const auto& key : keys) restore.push_back(key + "=" + it->before.at(key));
        std::string failure = failure_of([&] { slurm.update(it->job, restore); });
        std::optional<JobShape> now;
        const std::string unseen = failure_of([&] { now = slurm.shape(it->job); });
        if (now && differences(it->before, *now).empty()) continue;
        left += "; follow-up " + it->job + " could not be put back (" + (failure.empty() ? unseen : failure) +
                "): " + (now ? "now " + differences(it->before, *now) : "its state is unknown, check squeue --jobs=" + it->job);
    }
    return left.empty() ? "every follow-up is as it was" : "put back what Slurm allowed" + left;
}

}  // namespace

std::vector<std::string> reshape_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& choice,
                                           const std::vector<std::string>& assignments) {
    std::vector<std::string> report;
    if (assignments.empty()) return report;
    const std::vector<std::string> keys = touched_keys(assignments);
    std::vector<Reshaped> done;  // from before the update: Slurm may apply part of what it refuses
    for (const auto& f : ckpt.followups) {
        if (!releases(ckpt, f, choice)) continue;
        try {
            const std::optional<JobShape> before = slurm.shape(f.job);
            if (!before) continue;  // ended: nothing to reshape, the decision says it ended
            done.push_back({f.job, *before});
            slurm.update(f.job, assignments);
            const std::optional<JobShape> after = slurm.shape(f.job);
            const std::string changed = after ? differences(*before, *after) : "";
            report.push_back("follow-up " + f.job + " " + (changed.empty() ? "unchanged" : "reshaped: " + changed));
        } catch (const Error& e) {
            throw Error(ErrorKind::System, "follow-up " + f.job + " not reshaped: " + e.what() +
                                               "; nothing recorded or released, " + put_back(slurm, done, keys));
        }
    }
    return report;
}

std::vector<std::string> prepare_decision(const Slurm& slurm, const Checkpoint& before, const DecideRequest& request,
                                          uid_t actor, const Limits& limits) {
    check_may_decide(before.spec, actor);  // before anything: also a revoke's
    if (request.reshape.empty()) return {};  // decide() checks the rest, as it records
    if (!request.decision) throw Error(ErrorKind::Usage, "a revoke releases nothing to reshape");
    check_decidable(before, *request.decision, request.mode, actor, limits);
    return reshape_followups(slurm, before, request.decision->choice, request.reshape);
}

Checkpoint record_decision(const Spool& spool, uid_t owner, const CheckpointId& id, const DecideRequest& request,
                           const Actor& actor, const Limits& limits) {
    return request.decision ? decide(spool, owner, id, *request.decision, request.mode, actor, limits)
                            : revoke(spool, owner, id, actor);
}

std::string signal_decided(const Slurm& slurm, const Checkpoint& ckpt, const DecideRequest& request) {
    if (!request.decision || ckpt.spec.signal.empty()) return "";
    const std::optional<JobInfo> job = slurm.job(ckpt.spec.id.job_id);  // the job learns of it at once
    if (!job || job->state != "RUNNING") return "";
    slurm.signal(ckpt.spec.id.job_id, ckpt.spec.signal);
    return ckpt.spec.signal;
}

DecideOutcome decide_and_sync(const Spool& spool, const Slurm& slurm, uid_t owner, const CheckpointId& id,
                              const DecideRequest& request, const Actor& actor, const Limits& limits) {
    DecideOutcome out;
    out.ckpt = record_decision(spool, owner, id, request, actor, limits);
    out.changes = sync_followups(slurm, out.ckpt);
    out.signalled = signal_decided(slurm, out.ckpt, request);
    return out;
}

Environment decision_environment(const Checkpoint& ckpt, const std::string& files_dir,
                                 const std::string& decision_file) {
    const Decision& d = *ckpt.decision();
    Environment env = {{"HAWF_AFTER", ckpt.spec.id.str()},
                       {"HAWF_AFTER_DIR", files_dir},
                       {"HAWF_DECISION", d.choice},
                       {"HAWF_DECIDED_BY", ckpt.decided_by()},
                       {"HAWF_COMMENT", d.comment}};
    for (const auto& [key, value] : d.params) {
        std::string name = "HAWF_PARAM_" + key;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
        env.emplace_back(name, value);
    }
    if (!decision_file.empty()) env.emplace_back("HAWF_DECISION_FILE", decision_file);
    return env;
}

void back_to_held(const Slurm& slurm, const std::string& job, const CheckpointId& id, const std::string& why,
                  bool until_the_deadline) {
    try {
        if (until_the_deadline) slurm.requeue(job);
        else slurm.requeue_hold(job);
    } catch (const Error& e) {
        throw Error(ErrorKind::Conflict, why + ", and job " + job + " could not go back to " +
                                             (until_the_deadline ? "the queue: " : "held: ") + e.what());
    }
    if (until_the_deadline)
        throw Error(ErrorKind::Conflict, why + ": job " + job + " went back to the queue, to start again after " +
                                             "the deadline of " + id.str() + " and take its default");
    throw Error(ErrorKind::Conflict, why + ": job " + job + " went back to held waiting for " + id.str());
}

Environment start_followup(const Spool& spool, const Slurm& slurm, uid_t owner, const CheckpointId& id,
                           const std::string& job, std::int64_t now, const std::string& munge_socket,
                           bool require_sealed_spec) {
    Checkpoint ckpt = spool.load(owner, id);
    const FollowUp* registered = ckpt.followup(job);
    if (!registered)
        throw Error(ErrorKind::Conflict, "job " + job + " is not a follow-up of " + id.str() +
                                             " (hawf-await --then or --hawf-then registers follow-ups)");
    const FollowUp self = *registered;  // a copy: ckpt is reassigned below
    // The owner can rewrite the spec in their tree (drop its reviewers, decide in owner
    // mode): only root's seal tells the spec hawf opened. Not opened yet: nothing to
    // run on, said below.
    const auto check_spec = [&](const Checkpoint& c) {
        if (require_sealed_spec && c.state != State::Expected) verify_spec(c.spec, munge_socket);
    };
    check_spec(ckpt);
    ckpt = take_default_and_sync(spool, slurm, ckpt, now, job);
    const Decision* d = ckpt.decision();
    // Released by hand (it looks like any held job): back to held, for the decision to
    // release. Started just before its deadline (this node's clock is behind
    // slurmctld's): back to the queue, from which Slurm starts a requeued job no sooner
    // than its credential lifetime later (120 s by default), past the deadline.
    const bool deadline_near = ckpt.state == State::Pending && ckpt.deadline() && !ckpt.spec.delegated() &&
                               ckpt.deadline() - now <= 60;
    if (!d && ckpt.state != State::Failed)
        back_to_held(slurm, job, id, id.str() + " is " + to_string(ckpt.state) + ", not decided", deadline_near);
    if (!d) throw Error(ErrorKind::Conflict, id.str() + " failed: this follow-up will never run");
    // The owner can write any decision into their own tree: only hawfd's seal tells
    // the reviewers' decision from a forged one.
    verify_decision(ckpt, munge_socket);
    if (!releases(ckpt, self, d->choice)) {
        std::string on;
        for (const auto& c : ckpt.releasing_choices(self)) on += (on.empty() ? "" : ",") + c;
        throw Error(ErrorKind::Conflict, id.str() + " was decided \"" + d->choice + "\" by " + ckpt.decided_by() +
                                             ": this follow-up runs only for " + on);
    }
    const std::uint64_t verified = ckpt.decided->seq;
    ckpt = mark_applied(spool, owner, id, job, current_actor(Via::Plugin));
    // Another decision may have come in since (amended): the one delivered must verify
    // too, and so must the spec it is read with.
    check_spec(ckpt);
    if (ckpt.decided->seq != verified) verify_decision(ckpt, munge_socket);
    const std::string file = spool.write_delivery(owner, id, job, decision_json(ckpt).dump(2) + "\n");
    return decision_environment(ckpt, spool.files_dir(owner, id), file);
}

namespace {
const std::pair<FollowUpAction, const char*> action_names[] = {
    {FollowUpAction::Released, "released"}, {FollowUpAction::Cancelled, "cancelled"},
    {FollowUpAction::Held, "held"},         {FollowUpAction::Eligible, "eligible"},
    {FollowUpAction::AlreadyEnded, "already ended"},
};
}  // namespace

std::string to_string(FollowUpAction action) { return name_in(action_names, action); }

FollowUpAction parse_followup_action(const std::string& name) {
    if (const auto action = value_in(action_names, name)) return *action;
    throw Error(ErrorKind::Untrusted, "unknown follow-up action " + quoted_text(name));
}

std::string FollowUpChange::action_text() const {
    return action == FollowUpAction::Eligible ? "eligible at " + at : to_string(action);
}

std::string describe(const std::vector<FollowUpChange>& changes) {
    return joined(changes, ", ", [](const FollowUpChange& c) { return c.action_text() + " " + c.job; });
}

namespace {

// sbatch of a follow-up of OF, held; a follow-up array (OF.each_task) of TASKS.
// --requeue: one released by hand goes back to held (back_to_held) also where JobRequeue=0.
std::string submit_held(const Slurm& slurm, const FollowUpOf& of, const FollowUpSubmission& what,
                        const std::string& tasks = "") {
    std::string dependency = (of.each_task ? "--dependency=aftercorr:" : "--dependency=afterok:") + of.id.job_id;
    if (!what.also_after.empty()) dependency += ",afterok:" + joined(what.also_after, ":");
    std::vector<std::string> args = {"--hold", dependency,
                                     "--kill-on-invalid-dep=yes", "--requeue", "--hawf-after=" + of.str(),
                                     "--comment=hawf: waiting for " + of.str()};
    if (of.each_task) args.push_back("--array=" + tasks);
    args.insert(args.end(), what.extra.begin(), what.extra.end());
    return slurm.submit(args, what.read.empty() ? what.script : what.read, what.cwd, what.env);
}

// Registers follow-up JOB (submitted for WHAT) at checkpoint ID; if the checkpoint
// refuses it, cancels JOB (nothing would ever release it) and says so.
Checkpoint register_or_cancel(const Spool& spool, const Slurm& slurm, const CheckpointId& id, uid_t owner,
                              const std::string& job, const FollowUpSubmission& what, const Actor& actor) {
    try {
        return add_followup(spool, FollowUp{id, owner, job, what.script, what.on}, actor);
    } catch (const Error& e) {
        try {
            slurm.cancel(job);
        } catch (const Error& cancel) {
            throw Error(e.kind(), std::string(e.what()) + " (follow-up " + job + " could not be cancelled: " +
                                      cancel.what() + ")");
        }
        throw Error(e.kind(), std::string(e.what()) + " (follow-up " + job + " cancelled)");
    }
}

// The follow-up arrays an array's first task published: script -> array job id; or
// its error. Written by the owner's own tasks, read back as strictly as anything else.
std::map<std::string, std::string> published_arrays(const std::string& text, const std::string& what) {
    const nlohmann::json j = parse_json(text);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
        throw Error(ErrorKind::System, what + " failed in the task that submits them: " + j["error"].get<std::string>());
    std::map<std::string, std::string> arrays;
    const auto bad = [&] { return Error(ErrorKind::Untrusted, what + " are not as hawf writes them: " + quoted_text(text)); };
    if (!j.is_object() || !j.contains("followups") || !j["followups"].is_array()) throw bad();
    for (const auto& f : j["followups"]) {
        if (!f.is_object() || !f.contains("script") || !f["script"].is_string() || !f.contains("job") ||
            !f["job"].is_string())
            throw bad();
        try {
            check_array_job_id(f["job"].get<std::string>());
        } catch (const Error&) {
            throw bad();
        }
        arrays[f["script"].get<std::string>()] = f["job"].get<std::string>();
    }
    return arrays;
}

}  // namespace

Checkpoint submit_followup(const Spool& spool, const Slurm& slurm, const CheckpointId& id, uid_t owner,
                           const FollowUpSubmission& what, const Actor& actor, std::string* job_out) {
    const std::string job = submit_held(slurm, FollowUpOf{id, false}, what);
    if (job_out) *job_out = job;
    return register_or_cancel(spool, slurm, id, owner, job, what, actor);
}

Checkpoint submit_array_followups(const Spool& spool, const Slurm& slurm, const Checkpoint& ckpt,
                                  const std::vector<FollowUpSubmission>& what, const Actor& actor,
                                  std::chrono::milliseconds wait) {
    const CheckpointId& id = ckpt.spec.id;
    const uid_t owner = ckpt.spec.owner_uid;
    const std::size_t underscore = id.job_id.find('_');
    if (underscore == std::string::npos) throw Error(ErrorKind::Usage, id.str() + " is not an array task's checkpoint");
    const FollowUpOf of{{id.job_id.substr(0, underscore), id.name}, true};
    const std::string task = id.job_id.substr(underscore + 1);
    const std::string what_text = "the follow-up arrays of " + of.str();
    std::optional<std::string> published = spool.array_followups(owner, of.id.job_id, id.name);
    const std::string holder = published ? "" : spool.claim_array_followups(owner, of.id.job_id, id.name, task);
    if (holder == task) {
        // This task submits them (again, if it was requeued before it published them).
        nlohmann::json list = nlohmann::json::array();
        try {
            const std::string tasks = task_ranges(slurm.array_task_ids(of.id.job_id));
            if (tasks.empty()) throw Error(ErrorKind::System, "Slurm lists no task of array job " + of.id.job_id);
            for (const auto& w : what) list.push_back({{"script", w.script}, {"job", submit_held(slurm, of, w, tasks)}});
        } catch (const Error& e) {  // the other tasks fail at once rather than wait for them
            spool.publish_array_followups(owner, of.id.job_id, id.name, nlohmann::json({{"error", e.what()}}).dump());
            throw;
        }
        published = nlohmann::json({{"followups", list}}).dump();
        spool.publish_array_followups(owner, of.id.job_id, id.name, *published);
    }
    const auto give_up = std::chrono::steady_clock::now() + wait;
    for (auto pause = std::chrono::milliseconds(50); !published; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
        if (std::chrono::steady_clock::now() + pause > give_up)
            throw Error(ErrorKind::System, what_text + " were claimed by task " + of.id.job_id + "_" + holder +
                                               " but not submitted within " +
                                               std::to_string(wait.count() / 1000) + " s");
        std::this_thread::sleep_for(pause);
        published = spool.array_followups(owner, of.id.job_id, id.name);
    }
    const std::map<std::string, std::string> arrays = published_arrays(*published, what_text);
    Checkpoint with = ckpt;
    for (const auto& w : what) {
        const auto array = arrays.find(w.script);
        if (array == arrays.end())
            throw Error(ErrorKind::System, what_text + " hold none for " + quoted_text(w.script));
        with = register_or_cancel(spool, slurm, id, owner, array->second + "_" + task, w, actor);
    }
    return with;
}

Checkpoint take_default_and_sync(const Spool& spool, const Slurm& slurm, const Checkpoint& seen, std::int64_t now,
                                 const std::string& skip, std::vector<FollowUpChange>* changes) {
    if (seen.state != State::Pending || seen.spec.delegated() || !seen.deadline() || now < seen.deadline())
        return seen;
    Actor timeout = current_actor(Via::Timeout);
    timeout.user = "timeout";
    Checkpoint ckpt = take_default(spool, seen.spec.owner_uid, seen.spec.id, now, timeout);
    if (ckpt.decision() && ckpt.decided->via == Via::Timeout) {
        std::vector<FollowUpChange> done = sync_followups(slurm, ckpt, skip);
        if (changes) *changes = std::move(done);
    }
    return ckpt;
}

}  // namespace hawf
