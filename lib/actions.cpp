#include "actions.hpp"

#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include "error.hpp"

namespace hawf {
namespace {

// Appends the event MAKE builds from the current checkpoint (nullopt while it has
// no event yet); MAKE returns nullopt when there is nothing to write. On a lost
// race it reads again and lets MAKE decide anew (it throws when the new state
// forbids it). Returns the checkpoint as it is afterwards.
// What follows an event that changes a checkpoint's decision: files/decision.json,
// the file a task reads without hawf tools. Rewritten until the log did not move
// meanwhile, so a writer racing another never leaves an older event's view last.
// The event is the truth and is written: a files/ the job made unfit for the view
// (made group-writable, a directory named decision.json) loses the view, not the
// decision or what follows it (releasing the follow-ups).
Checkpoint publish_decision_view(const Spool& spool, uid_t owner, Checkpoint now) {
    for (int attempt = 0; attempt < 10; ++attempt) {
        const nlohmann::json view = decision_json(now);
        try {
            spool.write_decision_view(owner, now.spec.id,
                                      view.is_null() ? std::nullopt : std::optional<std::string>(view.dump(2) + "\n"));
        } catch (const Error&) {
        }
        Checkpoint again = spool.load(owner, now.spec.id);
        if (again.last_seq() == now.last_seq()) return again;
        now = std::move(again);
    }
    return now;
}

bool changes_decision(EventType type) {
    return type == EventType::Decided || type == EventType::Amended || type == EventType::Revoked ||
           type == EventType::Applied || type == EventType::Reopened;
}

template <typename Make>
Checkpoint append_next(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor, Make make) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::optional<Checkpoint> ckpt;
        try {
            ckpt = spool.load(owner, id);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
        }
        std::optional<Event> ev = make(ckpt);
        if (!ev) return *ckpt;
        ev->seq = ckpt ? ckpt->last_seq() + 1 : 1;
        ev->at = std::time(nullptr);
        ev->by = actor.user;
        ev->by_uid = actor.uid;
        ev->via = actor.via;
        ev->host = actor.host;
        std::optional<State> next = ckpt ? transition(ckpt->state, ev->type)
                                         : ev->type == EventType::Opened ? std::optional<State>(State::Running)
                                         : ev->type == EventType::FollowUpAdded ? std::optional<State>(State::Expected)
                                                                                : std::nullopt;
        if (!next)
            throw Error(ErrorKind::Conflict, "cannot add \"" + to_string(ev->type) + "\" to " + id.str() + ": it is " +
                                                 (ckpt ? to_string(ckpt->state) : "not open"));
        // The index must never miss a pending checkpoint: add before, remove after.
        // Only when entering pending: an approval of a checkpoint that is pending
        // already must not put back the entry a decider racing it has just removed.
        const bool entering_pending = *next == State::Pending && (!ckpt || ckpt->state != State::Pending);
        if (entering_pending) spool.set_pending(owner, id, true);
        if (!spool.append(owner, id, *ev)) continue;
        // And again after: a decider that wrote the event before ours may have removed
        // the entry since our add found it still there.
        if (entering_pending) spool.set_pending(owner, id, true);
        Checkpoint now = spool.load(owner, id);
        if (*next != State::Pending && ckpt && ckpt->state == State::Pending) {
            spool.set_pending(owner, id, false);
            // A revoke may have made it pending again between our event and the
            // removal (its own add found the entry still there): put it back.
            now = spool.load(owner, id);
            if (now.state == State::Pending) spool.set_pending(owner, id, true);
        }
        return changes_decision(ev->type) ? publish_decision_view(spool, owner, std::move(now)) : now;
    }
    throw Error(ErrorKind::Conflict, "too many concurrent changes to " + id.str() + ": try again");
}

// The checkpoint MAKE was given, which must exist.
const Checkpoint& existing(const std::optional<Checkpoint>& c, const CheckpointId& id) {
    if (!c || c->state == State::Expected) throw Error(ErrorKind::NotFound, "no checkpoint " + id.str() + " (not opened yet)");
    return *c;
}

Event event(EventType type) {
    Event ev;
    ev.type = type;
    return ev;
}

std::string describe(const Checkpoint& c) {
    std::string s = c.spec.id.str() + " is " + to_string(c.state);
    if (c.decided)
        s += " (\"" + c.decided->decision->choice + "\" by " + c.decided_by() + " at " +
             format_time(c.decided->at) + ")";
    return s;
}

// What only hawfd does, for a checkpoint its reviewers decide: refused (Conflict)
// unless C is delegated and pending.
void check_delegated_pending(const Checkpoint& c, const std::string& what) {
    if (!c.spec.delegated())
        throw Error(ErrorKind::Conflict,
                    "cannot " + what + " " + c.spec.id.str() + ": it has no reviewers, its owner decides");
    if (c.state != State::Pending) {
        std::string state = describe(c);  // "42:eval is decided (...)"
        state.replace(0, c.spec.id.str().size() + 1, "it ");
        throw Error(ErrorKind::Conflict, "cannot " + what + " " + c.spec.id.str() + ": " + state);
    }
}

}  // namespace

std::string user_name(uid_t uid) {
    struct passwd pw, *result = nullptr;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result) {
        try {  // a directory service may hold names a record could not be read back with
            check_user_name(pw.pw_name, "user name");
            return pw.pw_name;
        } catch (const Error&) {
        }
    }
    return std::to_string(uid);
}

Actor current_actor(Via via) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    std::string name = host;
    try {
        check_host_name(name, "host name");
    } catch (const Error&) {
        name = "unknown";
    }
    return Actor{user_name(getuid()), getuid(), via, name};
}

void check_room_for_checkpoint(const Spool& spool, uid_t owner) {
    check_checkpoint_count(spool.all_ids(owner).size() + 1, spool.limits());
}

Checkpoint open_checkpoint(const Spool& spool, const CheckpointSpec& spec, const Actor& actor) {
    spec.check(spool.limits());
    Checkpoint ckpt = append_next(spool, spec.owner_uid, spec.id, actor, [&](const std::optional<Checkpoint>& c) {
        std::optional<Event> ev;
        if (!c || c->state == State::Expected) {
            ev = event(EventType::Opened);
            ev->spec = spec;
            return ev;
        }
        // Each node of a step (and a requeued job) seals the spec anew: the seals
        // differ, the spec must not.
        CheckpointSpec had = c->spec, asked = spec;
        had.seal.clear();
        asked.seal.clear();
        if (to_json(had) != to_json(asked))
            throw Error(ErrorKind::Conflict, "checkpoint " + spec.id.str() + " already exists with other options");
        if (c->state == State::Failed) return ev = event(EventType::Reopened);
        if (c->state != State::Running)
            throw Error(ErrorKind::Conflict, "checkpoint " + describe(*c) + " already: use another name");
        return ev;  // another node of the same step opened it
    });
    spool.make_files_dir(spec.owner_uid, spec.id);
    return ckpt;
}

Checkpoint end_checkpoint(const Spool& spool, uid_t owner, const CheckpointId& id, int wait_status,
                          const Actor& actor, std::uint32_t node, std::uint32_t node_count) {
    if (node_count > 1) {
        Checkpoint ckpt = append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& c) {
            std::optional<Event> ev;
            if (existing(c, id).nodes_ended.count(node)) return ev;
            ev = event(EventType::NodeEnded);
            ev->node = node;
            ev->exit_status = wait_status;
            return ev;
        });
        if (ckpt.state != State::Running || ckpt.nodes_ended.size() < node_count) return ckpt;
        wait_status = 0;
        for (const auto& [n, status] : ckpt.nodes_ended)
            if (wait_status == 0) wait_status = status;
    }
    try {
        return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& c) {
            existing(c, id);
            bool ok = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
            std::optional<Event> ev = event(ok ? EventType::Pending : EventType::Failed);
            ev->exit_status = wait_status;
            return ev;
        });
    } catch (const Error& e) {
        // Two last nodes may both see every node ended; the other one wrote it.
        if (e.kind() != ErrorKind::Conflict || node_count == 1) throw;
        return spool.load(owner, id);
    }
}

void check_may_decide(const CheckpointSpec& spec, uid_t caller) {
    // Root too: a decision of a delegated checkpoint verifies only if hawfd sealed it.
    if (spec.delegated())
        throw Error(ErrorKind::Denied, spec.id.str() + " has reviewers (" + reviewers_shown(all_reviewers(spec)) +
                                           "): they decide through hawfd");
    if (caller != 0 && caller != spec.owner_uid) {
        const std::string owner = user_name(spec.owner_uid);  // also before "opened" named them
        throw Error(ErrorKind::Denied, spec.id.str() + " belongs to " + owner + ": only " + owner +
                                           " and root may decide it");
    }
}

void check_decidable(const Checkpoint& c, const Decision& decision, DecideMode mode, uid_t actor,
                     const Limits& limits) {
    check_may_decide(c.spec, actor);
    check_decision(c.spec, decision, limits);
    if (mode == DecideMode::Decide && c.state != State::Pending) {
        std::string hint = c.state == State::Decided ? ": use --amend to change the decision" : "";
        throw Error(ErrorKind::Conflict, "cannot decide " + describe(c) + hint);
    }
    if (mode == DecideMode::Amend && c.state != State::Decided)
        throw Error(ErrorKind::Conflict, "cannot amend " + describe(c) +
                                             (c.state == State::Applied ? ": a follow-up already used it" : ""));
}

Checkpoint decide(const Spool& spool, uid_t owner, const CheckpointId& id, const Decision& decision,
                  DecideMode mode, const Actor& actor, const Limits& limits) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        check_decidable(c, decision, mode, actor.uid, limits);
        std::optional<Event> ev = event(mode == DecideMode::Decide ? EventType::Decided : EventType::Amended);
        ev->decision = decision;
        return ev;
    });
}

Checkpoint revoke(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        check_may_decide(c.spec, actor.uid);
        if (c.state != State::Decided)
            throw Error(ErrorKind::Conflict, "cannot revoke " + describe(c) +
                                                 (c.state == State::Applied ? ": a follow-up already used it" : ""));
        return std::optional<Event>(event(EventType::Revoked));
    });
}

Checkpoint add_followup(const Spool& spool, const FollowUp& followup, const Actor& actor) {
    return append_next(spool, followup.owner_uid, followup.of, actor, [&](const std::optional<Checkpoint>& c) {
        if (c && c->state != State::Expected && c->state != State::Running && c->state != State::Pending)
            throw Error(ErrorKind::Conflict, "cannot add a follow-up: " + describe(*c));
        if (c && c->followup(followup.job)) return std::optional<Event>();
        std::optional<Event> ev = event(EventType::FollowUpAdded);
        ev->followup = followup;
        return ev;
    });
}

Decision default_decision(const CheckpointSpec& spec) {
    return Decision{spec.default_choice, {}, "no decision before the deadline"};
}

Checkpoint take_default(const Spool& spool, uid_t owner, const CheckpointId& id, std::int64_t now,
                        const Actor& actor, const std::string& seal) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        std::optional<Event> ev;
        if (c.state != State::Pending || !c.deadline() || now < c.deadline()) return ev;  // decided, or not yet due
        // Delivery runs a delegated checkpoint's follow-ups only on a decision hawfd sealed.
        if (c.spec.delegated() && seal.empty())
            throw Error(ErrorKind::Conflict, "cannot take the default of " + c.spec.id.str() +
                                                 ": it has reviewers, hawfd takes its default");
        ev = event(EventType::Decided);
        ev->decision = default_decision(c.spec);
        if (c.spec.delegated()) ev->credential = seal;
        return ev;
    });
}

Checkpoint mark_applied(const Spool& spool, uid_t owner, const CheckpointId& id, const std::string& job,
                        const Actor& actor) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        // Checked here, against the log as it is when writing: a revoke or an amend
        // may have come after the caller looked.
        const Checkpoint& c = existing(maybe, id);
        if (c.state != State::Decided && c.state != State::Applied)
            throw Error(ErrorKind::Conflict, "cannot apply " + describe(c) + ": it has no decision");
        if (const FollowUp* f = c.followup(job)) {
            const std::vector<std::string> on = c.releasing_choices(*f);
            if (std::find(on.begin(), on.end(), c.decision()->choice) == on.end()) {
                std::string choices;
                for (const auto& o : on) choices += (choices.empty() ? "" : ",") + o;
                throw Error(ErrorKind::Conflict, "cannot apply " + describe(c) + " in follow-up " + job +
                                                     ": it runs only for " + choices);
            }
        }
        std::optional<Event> ev;
        if (c.state == State::Applied) return ev;  // applied already by another follow-up
        ev = event(EventType::Applied);
        ev->job = job;
        return ev;
    });
}

Checkpoint approve(const Spool& spool, uid_t owner, const CheckpointId& id, const Decision& decision,
                   const Actor& actor, const std::string& credential, const Limits& limits) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        std::optional<Event> ev;
        // The same request recorded already (hawfd retrying after a crash): nothing to add.
        for (const auto& a : c.approvals)
            if (a.by_uid == actor.uid && a.credential == credential) return ev;
        check_delegated_pending(c, "approve");
        check_decision(c.spec, decision, limits);
        ev = event(EventType::Approved);
        ev->decision = decision;
        ev->credential = credential;
        return ev;
    });
}

Checkpoint withdraw(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor,
                    const std::string& credential) {
    return append_next(spool, owner, id, actor, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        check_delegated_pending(c, "withdraw an approval of");
        if (std::none_of(c.approvals.begin(), c.approvals.end(), [&](const Event& a) { return a.by_uid == actor.uid; }))
            throw Error(ErrorKind::Conflict, actor.user + " has no approval of " + id.str() + " to withdraw");
        std::optional<Event> ev = event(EventType::Withdrawn);
        ev->credential = credential;
        return ev;
    });
}

Checkpoint record_quorum(const Spool& spool, uid_t owner, const CheckpointId& id, const Quorum& quorum,
                         const std::string& seal, const Actor& actor) {
    Actor hawfd = actor;
    hawfd.via = Via::Hawfd;
    return append_next(spool, owner, id, hawfd, [&](const std::optional<Checkpoint>& maybe) {
        const Checkpoint& c = existing(maybe, id);
        std::optional<Event> ev;
        // Recorded already (a racing or retried hawfd): the same outcome, nothing to add.
        const Decision* d = c.decision();
        if (d && !c.decided->approvals.empty() && d->choice == quorum.decision.choice &&
            d->params == quorum.decision.params)
            return ev;
        check_delegated_pending(c, "record a quorum for");
        // The approvals hawfd counted (it leaves out those whose credentials do not
        // verify) must still be in force and, by themselves, make this decision.
        const auto counted = [&](const Event& a) {
            return std::find(quorum.approvals.begin(), quorum.approvals.end(), a.seq) != quorum.approvals.end();
        };
        if (!(reached_quorum(c, counted) == std::optional<Quorum>(quorum)))
            throw Error(ErrorKind::Conflict, "the approvals in force at " + id.str() +
                                                 " no longer make this decision (one was withdrawn or replaced)");
        ev = event(EventType::Decided);
        ev->decision = quorum.decision;
        ev->approvals = quorum.approvals;
        ev->credential = seal;
        return ev;
    });
}

uid_t find_owner(const Slurm& slurm, const CheckpointId& id, uid_t caller, std::optional<uid_t> named) {
    return owner_of_job(slurm.job(id.job_id), id.job_id, caller, named);
}

uid_t owner_of_job(const std::optional<JobInfo>& job, const std::string& job_id, uid_t caller,
                   std::optional<uid_t> named) {
    if (job) {
        if (named && *named != job->uid)
            throw Error(ErrorKind::Usage, "--user " + user_name(*named) + ": job " + job_id + " belongs to " +
                                              user_name(job->uid));
        return job->uid;
    }
    if (named) {
        if (caller != 0 && *named != caller)
            throw Error(ErrorKind::Denied, "--user " + user_name(*named) + ": only root may name another user");
        return *named;
    }
    if (caller == 0)
        throw Error(ErrorKind::Usage, "Slurm no longer knows job " + job_id + ": give --user=NAME, its owner");
    return caller;
}

void check_may_read(const CheckpointId& id, uid_t owner, uid_t caller) {
    if (caller != 0 && caller != owner) {
        const std::string name = user_name(owner);
        throw Error(ErrorKind::Denied, id.str() + " belongs to " + name + ": only " + name + " and root may see it");
    }
}

}  // namespace hawf
