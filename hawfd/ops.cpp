#include "ops.hpp"

#include <pwd.h>

#include <array>
#include <mutex>

#include "actions.hpp"
#include "config.hpp"
#include "display.hpp"
#include "munge.hpp"
#include "notifier.hpp"
#include "outbox.hpp"
#include "review.hpp"
#include "server.hpp"
#include "views.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;

constexpr std::size_t max_review_rows = 5000;

// Changes to one checkpoint happen one at a time in hawfd (striped: a fixed number
// of locks, whatever the number of checkpoints): an approval and the quorum it
// completes are recorded without another approval slipping in between, so two
// last approvals arriving together neither both seal a decision nor get a spurious
// conflict. The spool's exclusive events would keep it right anyway; this keeps it quiet.
std::unique_lock<std::mutex> lock_checkpoint(uid_t owner, const CheckpointId& id) {
    static std::array<std::mutex, 64> stripes;
    const std::size_t h = std::hash<std::string>()(std::to_string(owner) + ":" + id.str());
    return std::unique_lock<std::mutex>(stripes[h % stripes.size()]);
}

// A string field of the request's payload; Error(Usage) naming it otherwise.
std::string text(const json& payload, const char* key, bool required = true) {
    if (!payload.contains(key)) {
        if (!required) return "";
        throw Error(ErrorKind::Usage, std::string("the request has no \"") + key + "\"");
    }
    if (!payload[key].is_string()) throw Error(ErrorKind::Usage, std::string("\"") + key + "\" must be a string");
    return payload[key].get<std::string>();
}

struct Target {
    uid_t owner;
    CheckpointId id;
};

// The checkpoint a request names and its owner as Slurm knows it; for a job Slurm
// has forgotten, the owner the request names ("user", hawf-decide --user).
Target target_of(const Service& service, const json& payload) {
    const CheckpointId id = parse_checkpoint_id(text(payload, "checkpoint"));
    std::optional<uid_t> named;
    if (const std::string user = text(payload, "user", false); !user.empty()) {
        std::vector<char> buf(16384);
        passwd pw{}, *found = nullptr;
        if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
            throw Error(ErrorKind::Usage, "unknown user " + quoted_text(user) + " for --user");
        named = pw.pw_uid;
    }
    // As root: hawfd decides whose it is, never the caller's own tree by default.
    return {find_owner(service.slurm, id, 0, named), id};
}

json actor_json(const std::string& user, uid_t uid, const Service& service) {
    return {{"user", user}, {"uid", uid}, {"host", service.host}};
}

void check_delegated(const Checkpoint& ckpt) {
    if (!ckpt.spec.delegated())
        throw Error(ErrorKind::Denied, ckpt.spec.id.str() + " has no reviewers: only its owner " +
                                           user_name(ckpt.spec.owner_uid) + " and root decide it");
}

// Who may see a checkpoint through hawfd: its owner, its reviewers, root.
void check_may_see(const Checkpoint& ckpt, uid_t caller) {
    if (caller == 0 || caller == ckpt.spec.owner_uid) return;
    if (ckpt.spec.delegated() && is_reviewer(all_reviewers(ckpt.spec), caller)) return;
    const std::string owner = user_name(ckpt.spec.owner_uid);
    throw Error(ErrorKind::Denied, ckpt.spec.id.str() + " belongs to " + owner + ": only " + owner +
                                       ", its reviewers and root may see it");
}

// What decide and withdraw answer: where the checkpoint stands.
json standing(const Checkpoint& ckpt, const std::vector<FollowUpChange>& changes) {
    return {{"checkpoint", ckpt.spec.id.str()}, {"owner", user_name(ckpt.spec.owner_uid)},
            {"state", to_string(ckpt.state)}, {"quorum", ckpt.spec.quorum},
            {"required", summary_json(ckpt).value("required", json::array())},
            {"approvals", approvals_json(ckpt)}, {"decision", decision_json(ckpt)},
            {"follow_ups", changes_json(changes)}};
}

// The quorum CKPT's approvals reach counting only those whose reviewer's credential
// verifies: the owner can write approvals into their own tree, hawfd never seals them.
std::optional<Quorum> verified_quorum(const Service& service, const Checkpoint& ckpt) {
    std::vector<std::uint64_t> forged;
    for (const EventCheck& check : verify_events(ckpt, service.munge_socket()))
        if (check.type == EventType::Approved && !check.ok) {
            forged.push_back(check.seq);
            log_line("not counting approval " + std::to_string(check.seq) + " of " + ckpt.spec.id.str() + " by " +
                     shown(check.by) + ": " + shown(check.problem));
        }
    return reached_quorum(ckpt, [&](const Event& a) {
        return std::find(forged.begin(), forged.end(), a.seq) == forged.end();
    });
}

json ping(const Service&, const Request& request) {
    return {{"uid", request.uid}, {"user", request.user}, {"hawfd", HAWF_VERSION}};
}

Finished finish_locked(const Service& service, Checkpoint ckpt, const std::optional<Quorum>& quorum);

// A reviewer's approval; the one that completes the quorum makes the decision.
json decide(const Service& service, const Request& request) {
    const Target t = target_of(service, request.payload);
    if (!request.payload.contains("params") || !request.payload["params"].is_object())
        throw Error(ErrorKind::Usage, "the request has no \"params\" object");
    Decision decision{text(request.payload, "choice"), {}, text(request.payload, "comment", false)};
    for (const auto& [key, value] : request.payload["params"].items()) {
        if (!value.is_string()) throw Error(ErrorKind::Usage, "parameter " + quoted_text(key) + " must be a string");
        decision.params[key] = value.get<std::string>();
    }
    check_name(decision.choice, "choice");
    const auto lock = lock_checkpoint(t.owner, t.id);
    Checkpoint ckpt = service.owners->load(t.owner, t.id);
    check_delegated(ckpt);
    // A reviewer is never asked to approve a spec the owner rewrote (say, to drop a
    // policy's requirement): only the spec hawf opened carries root's seal.
    verify_spec(ckpt.spec, service.munge_socket());
    check_may_approve(ckpt.spec, request.uid);
    ckpt = service.owners->call(t.owner, t.id,
                                {{"verb", "approve"},
                                 {"decision", to_json(decision)},
                                 {"actor", actor_json(request.user, request.uid, service)},
                                 {"credential", request.credential}});
    const std::optional<Quorum> quorum = verified_quorum(service, ckpt);
    if (!quorum) return standing(ckpt, {});
    service.journal->add(t.owner, t.id);
    const Finished done = finish_locked(service, std::move(ckpt), quorum);
    if (service.notifier) service.notifier->nudge(t.owner, t.id);  // tell who decided
    return standing(done.ckpt, done.changes);
}

json withdraw(const Service& service, const Request& request) {
    const Target t = target_of(service, request.payload);
    const auto lock = lock_checkpoint(t.owner, t.id);
    const Checkpoint ckpt = service.owners->call(
        t.owner, t.id,
        {{"verb", "withdraw"}, {"actor", actor_json(request.user, request.uid, service)},
         {"credential", request.credential}});
    return standing(ckpt, {});
}

// "Look at JOB:NAME": the plugin, hawf-decide and hawf-await after they change a
// checkpoint. Only a nudge: hawfd reads what is owed from the owner's log. A user
// nudges about their own checkpoints; root names the owner (as with --user).
json notify(const Service& service, const Request& request) {
    const CheckpointId id = parse_checkpoint_id(text(request.payload, "checkpoint"));
    const uid_t owner = request.uid == 0 ? target_of(service, request.payload).owner : request.uid;
    if (service.notifier) service.notifier->nudge(owner, id);
    return {{"checkpoint", id.str()}};
}

// hawf doctor: the caller's notifications waiting and given up (root: everyone's).
json outbox(const Service& service, const Request& request) {
    if (!service.outbox) return {{"configured", false}};
    json status = service.outbox->status(request.uid);
    status["configured"] = true;
    return status;
}

json show(const Service& service, const Request& request) {
    const Target t = target_of(service, request.payload);
    const Checkpoint ckpt = service.owners->load(t.owner, t.id);
    check_may_see(ckpt, request.uid);
    const json files = service.owners->ask(t.owner, t.id, {{"verb", "files"}});
    return {{"show", show_json(ckpt, service.spool.files_dir(t.owner, t.id), files.at("files"),
                               files.at("report").get<std::string>(), followup_states(service.slurm, ckpt))}};
}

// A file of the checkpoint directory (hawf cat), base64 in "data".
json cat(const Service& service, const Request& request) {
    const Target t = target_of(service, request.payload);
    const std::string file = text(request.payload, "file");
    check_may_see(service.owners->load(t.owner, t.id), request.uid);
    const json answer = service.owners->ask(t.owner, t.id, {{"verb", "read"}, {"file", file}});
    return {{"file", file}, {"data", answer.at("data")}};
}

json verify(const Service& service, const Request& request) {
    const Target t = target_of(service, request.payload);
    const Checkpoint ckpt = service.owners->load(t.owner, t.id);
    check_may_see(ckpt, request.uid);
    json checks = json::array();
    for (const EventCheck& c : verify_events(ckpt, service.munge_socket(), true))  // hawfd runs: specs are sealed
        checks.push_back({{"seq", c.seq}, {"event", to_string(c.type)}, {"by", c.by}, {"ok", c.ok},
                          {"problem", c.problem}});
    return {{"checkpoint", t.id.str()}, {"owner", user_name(t.owner)}, {"checks", checks}};
}

// The pending checkpoints of other users the caller may approve.
// At most max_review_rows (the answer stays a few MiB), "more" counts the rest.
json review(const Service& service, const Request& request) {
    json list = json::array();
    std::size_t more = 0;
    for (uid_t owner : service.spool.owners()) {
        if (owner == request.uid) continue;  // the caller lists their own
        try {
            const json answer = service.owners->run(owner, {{"verb", "reviewable"}, {"owner", owner},
                                                            {"reviewer", request.uid}});
            for (const auto& entry : answer.at("checkpoints")) {
                const Checkpoint ckpt = checkpoint_of(entry.at("events"));
                // The child is the owner's: what it says is held to the same checks.
                if (ckpt.spec.owner_uid != owner || ckpt.state != State::Pending || !ckpt.spec.delegated()) continue;
                check_may_approve(ckpt.spec, request.uid);
                if (list.size() < max_review_rows) list.push_back(summary_json(ckpt));
                else ++more;
            }
        } catch (const Error& e) {
            log_line("review: skipping uid " + std::to_string(owner) + ": " + shown(e.what()));
        }
    }
    return {{"checkpoints", list}, {"more", more}};
}

// hawf-await --open inside a running job: the spec it asks for ("spec", as the record
// writes it), with the site policies applied as for the job Slurm knows, checked and
// sealed as root (spec_seal_payload): what the plugin's child does in slurmstepd for
// --hawf-checkpoint. Only for the caller's own running job, an in-job ("inline")
// checkpoint not open yet, and no reviewers of its own (hawf-await --open takes none).
json seal(const Service& service, const Request& request) {
    const CheckpointId id = parse_checkpoint_id(text(request.payload, "checkpoint"));
    if (!request.payload.contains("spec") || !request.payload["spec"].is_object())
        throw Error(ErrorKind::Usage, "the request has no \"spec\" object");
    CheckpointSpec spec = spec_from_json(request.payload["spec"]);
    const std::string what = "cannot seal the spec of " + id.str() + ": ";
    if (!(spec.id == id) || spec.owner_uid != request.uid || spec.owner != user_name(request.uid))
        throw Error(ErrorKind::Denied, what + "it must be " + id.str() + " of " + request.user + ", the caller");
    if (spec.scope != Scope::Inline) throw Error(ErrorKind::Usage, what + "hawfd seals only hawf-await --open's checkpoints");
    if (spec.delegated() || !spec.seal.empty())
        throw Error(ErrorKind::Usage, what + "reviewers, site policies and the seal are hawf's to add, not the caller's");
    // The job as Slurm knows it: the caller's, running (SLURM_JOB_ID is the caller's to set).
    const std::optional<JobInfo> job = service.slurm.job(id.job_id);
    if (!job || job->uid != request.uid || job->state != "RUNNING")
        throw Error(ErrorKind::Denied, what + "it opens a checkpoint of the caller's own running job, and job " +
                                           id.job_id +
                                           (!job                        ? " is unknown to Slurm"
                                            : job->uid != request.uid ? " belongs to " + user_name(job->uid)
                                                                      : " is " + job->state));
    // Sealed once: a seal for a checkpoint its job already opened (another spec, say
    // with reviewers) would let the owner put that one in its place.
    try {
        const Checkpoint existing = service.owners->load(request.uid, id);
        if (existing.state != State::Expected)
            throw Error(ErrorKind::Conflict, what + "it is already " + to_string(existing.state) + ": use another name");
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
    apply_policies(service.config.policies, JobFacts{job->partition, job->account, job->qos}, spec);
    spec.check(service.config.limits);  // what a policy added, e.g. more requirements than a spec holds
    spec.seal = munge_encode(spec_seal_payload(spec), service.munge_socket());
    return {{"spec", to_json(spec)}};
}

}  // namespace

const std::map<std::string, Op>& op_table() {
    static const std::map<std::string, Op> table = {
        {"ping", ping}, {"decide", decide}, {"withdraw", withdraw}, {"show", show},
        {"cat", cat},   {"verify", verify}, {"review", review},     {"seal", seal},
        {"notify", notify}, {"outbox", outbox}};
    return table;
}

Finished finish(const Service& service, uid_t owner, const CheckpointId& id) {
    const auto lock = lock_checkpoint(owner, id);
    Checkpoint ckpt = service.owners->load(owner, id);
    const std::optional<Quorum> quorum = ckpt.state == State::Pending ? verified_quorum(service, ckpt) : std::nullopt;
    return finish_locked(service, std::move(ckpt), quorum);
}

namespace {

// CKPT as loaded under the checkpoint's lock, QUORUM what its verified approvals reach.
Finished finish_locked(const Service& service, Checkpoint ckpt, const std::optional<Quorum>& quorum) {
    const uid_t owner = ckpt.spec.owner_uid;
    const CheckpointId id = ckpt.spec.id;
    if (quorum) {
        // Never seal a decision on a spec the owner rewrote since the approvals.
        verify_spec(ckpt.spec, service.munge_socket());
        // The reviewer whose approval completed the quorum is the decision's actor.
        const Event* last = nullptr;
        for (const auto& ev : ckpt.history)
            if (ev.seq == quorum->approvals.back()) last = &ev;
        Event decided;
        decided.type = EventType::Decided;
        decided.via = Via::Hawfd;
        decided.by = last->by;
        decided.by_uid = last->by_uid;
        decided.decision = quorum->decision;
        decided.approvals = quorum->approvals;
        const std::string seal = munge_encode(decision_seal_payload(ckpt, decided), service.munge_socket());
        ckpt = service.owners->call(
            owner, id,
            {{"verb", "record-quorum"},
             {"quorum", {{"decision", to_json(quorum->decision)}, {"approvals", quorum->approvals}}},
             {"seal", seal},
             {"actor", actor_json(last->by, last->by_uid, service)}});
        // A checkpoint opened with --signal tells its still running job, as hawf-decide does.
        if (!ckpt.spec.signal.empty()) try {
                const std::optional<JobInfo> job = service.slurm.job(id.job_id);
                if (job && job->state == "RUNNING") service.slurm.signal(id.job_id, ckpt.spec.signal);
            } catch (const Error& e) {
                log_line("cannot signal job " + id.job_id + ": " + shown(e.what()));
            }
    }
    std::vector<FollowUpChange> changes;
    if (ckpt.state == State::Decided || ckpt.state == State::Applied)
        changes = sync_followups(service.slurm, ckpt, "", service.patience);
    bool done = true;
    for (const auto& c : changes) done = done && c.error.empty();
    if (done) service.journal->remove(owner, id);
    return {std::move(ckpt), std::move(changes)};
}

}  // namespace

Finished take_default_at_deadline(const Service& service, uid_t owner, const CheckpointId& id, std::int64_t now) {
    const auto lock = lock_checkpoint(owner, id);
    Checkpoint ckpt = service.owners->load(owner, id);
    if (ckpt.state != State::Pending || !ckpt.deadline() || now < ckpt.deadline()) return {std::move(ckpt), {}};
    json verb = {{"verb", "take-default"}, {"now", now}};
    if (ckpt.spec.delegated()) {
        verify_spec(ckpt.spec, service.munge_socket());  // never seal on a spec the owner rewrote
        Event decided;
        decided.type = EventType::Decided;
        decided.via = Via::Timeout;
        decided.decision = default_decision(ckpt.spec);
        verb["seal"] = munge_encode(decision_seal_payload(ckpt, decided), service.munge_socket());
    }
    service.journal->add(owner, id);
    ckpt = service.owners->call(owner, id, verb);
    return finish_locked(service, std::move(ckpt), std::nullopt);
}

void finish_owed(const Service& service) {
    for (const auto& [owner, id] : service.journal->entries()) {
        try {
            const Finished done = finish(service, owner, id);
            const std::string what = describe(done.changes);
            log_line("finished " + id.str() + " of uid " + std::to_string(owner) + ": " + to_string(done.ckpt.state) +
                     (what.empty() ? "" : ", " + what));
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NotFound) {  // removed meanwhile (hawf gc): nothing is owed
                service.journal->remove(owner, id);
                log_line("dropped " + id.str() + " of uid " + std::to_string(owner) + ": " + shown(e.what()));
                continue;
            }
            log_line("cannot finish " + id.str() + " of uid " + std::to_string(owner) + " yet: " + shown(e.what()));
        }
    }
}

}  // namespace hawf::hawfd
