#include "followups.hpp"

#include <algorithm>
#include <cctype>

#include "error.hpp"

namespace hawf {
namespace {

bool releases(const Checkpoint& ckpt, const FollowUp& f, const std::string& choice) {
    auto on = ckpt.releasing_choices(f);
    return std::find(on.begin(), on.end(), choice) != on.end();
}

// Runs one Slurm change, turning a refusal into the change's error text. Holding or
// cancelling a job that has already ended is not a refusal: there is nothing to stop.
template <typename F>
FollowUpChange change(const std::string& job, const std::string& action, F&& body) {
    FollowUpChange c{job, action, ""};
    try {
        body();
    } catch (const Error& e) {
        const std::string text = e.what();
        const bool ended = text.find("already finished") != std::string::npos ||
                           text.find("already completing or completed") != std::string::npos ||
                           text.find("Invalid job id") != std::string::npos;
        if (ended && (action == "cancelled" || action == "held")) c.action = "already ended";
        else c.error = text;
    }
    return c;
}

}  // namespace

std::vector<FollowUpChange> sync_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& skip) {
    std::vector<FollowUpChange> changes;
    const Decision* d = ckpt.decision();
    for (const auto& f : ckpt.followups) {
        if (f.job == skip) continue;
        if (d && releases(ckpt, f, d->choice)) {
            changes.push_back(change(f.job, "released", [&] {
                if (ckpt.spec.timeout_s) slurm.update(f.job, {"StartTime=now"});  // it waited for the deadline
                slurm.release(f.job);
            }));
        } else if (d || ckpt.state == State::Failed) {  // a failed checkpoint will never release them
            changes.push_back(change(f.job, "cancelled", [&] { slurm.cancel(f.job); }));
        } else if (ckpt.state == State::Pending && ckpt.deadline()) {
            const std::string at = format_local_time(ckpt.deadline());
            changes.push_back(change(f.job, "eligible at " + at, [&] { slurm.update(f.job, {"StartTime=" + at}); }));
        } else if (ckpt.state == State::Pending) {
            changes.push_back(change(f.job, "held", [&] { slurm.hold(f.job); }));
        }
    }
    return changes;
}

std::vector<FollowUpChange> schedule_deadline(const Slurm& slurm, const Checkpoint& ckpt, const std::string& only) {
    std::vector<FollowUpChange> changes;
    if (ckpt.state != State::Pending || !ckpt.deadline()) return changes;
    const std::string at = format_local_time(ckpt.deadline());
    for (const auto& f : ckpt.followups)
        if (only.empty() || f.job == only) changes.push_back(change(f.job, "eligible at " + at, [&] {
            slurm.update(f.job, {"StartTime=" + at});
            slurm.release(f.job);
        }));
    return changes;
}

void reshape_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& choice,
                       const std::vector<std::string>& assignments) {
    if (assignments.empty()) return;
    std::vector<std::string> done;
    for (const auto& f : ckpt.followups) {
        if (!releases(ckpt, f, choice)) continue;
        try {
            slurm.update(f.job, assignments);
        } catch (const Error& e) {
            std::string changed;
            for (const auto& j : done) changed += (changed.empty() ? "" : ", ") + j;
            throw Error(ErrorKind::System, std::string("follow-up ") + f.job + " not changed, nothing released" +
                                               (changed.empty() ? "" : " (already changed: " + changed + ")") +
                                               ": " + e.what());
        }
        done.push_back(f.job);
    }
}

Environment decision_environment(const Checkpoint& ckpt, const std::string& files_dir,
                                 const std::string& decision_file) {
    const Decision& d = *ckpt.decision();
    Environment env = {{"HAWF_AFTER", ckpt.spec.id.str()},
                       {"HAWF_AFTER_DIR", files_dir},
                       {"HAWF_DECISION", d.choice},
                       {"HAWF_DECIDED_BY", ckpt.decided->by},
                       {"HAWF_COMMENT", d.comment}};
    for (const auto& [key, value] : d.params) {
        std::string name = "HAWF_PARAM_" + key;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
        env.emplace_back(name, value);
    }
    if (!decision_file.empty()) env.emplace_back("HAWF_DECISION_FILE", decision_file);
    return env;
}

Environment start_followup(const Spool& spool, const Slurm& slurm, uid_t owner, const CheckpointId& id,
                           const std::string& job, std::int64_t now) {
    Checkpoint ckpt = spool.load(owner, id);
    const FollowUp* registered = ckpt.followup(job);
    if (!registered)
        throw Error(ErrorKind::Conflict, "job " + job + " is not a follow-up of " + id.str() +
                                             " (hawf-await --then or --hawf-then registers follow-ups)");
    const FollowUp self = *registered;  // a copy: ckpt is reassigned below
    if (ckpt.state == State::Pending) {
        Actor timeout = current_actor("timeout");
        timeout.user = "timeout";
        ckpt = take_default(spool, owner, id, now, timeout);
        if (ckpt.decision() && ckpt.decided->via == "timeout") sync_followups(slurm, ckpt, job);
    }
    const Decision* d = ckpt.decision();
    if (!d)
        throw Error(ErrorKind::Conflict, id.str() + " is " + to_string(ckpt.state) +
                                             ", not decided: this follow-up was released by hand");
    if (!releases(ckpt, self, d->choice)) {
        std::string on;
        for (const auto& c : ckpt.releasing_choices(self)) on += (on.empty() ? "" : ",") + c;
        throw Error(ErrorKind::Conflict, id.str() + " was decided \"" + d->choice + "\" by " + ckpt.decided->by +
                                             ": this follow-up runs only for " + on);
    }
    ckpt = mark_applied(spool, owner, id, job, current_actor("plugin"));
    const std::string file = spool.write_delivery(owner, id, job, decision_json(ckpt).dump(2) + "\n");
    return decision_environment(ckpt, spool.files_dir(owner, id), file);
}

std::string describe(const std::vector<FollowUpChange>& changes) {
    std::string s;
    for (const auto& c : changes) s += (s.empty() ? "" : ", ") + c.action + " " + c.job;
    return s;
}

}  // namespace hawf
