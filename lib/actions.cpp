#include "actions.hpp"

#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>

#include "error.hpp"

namespace hawf {
namespace {

// Appends the event MAKE builds from the current checkpoint; on a lost race, reads
// again and lets MAKE decide anew (it throws when the new state forbids it).
template <typename Make>
Checkpoint append_next(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor, Make make) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        Checkpoint ckpt = spool.load(owner, id);
        Event ev = make(ckpt);
        ev.seq = ckpt.last_seq() + 1;
        ev.at = std::time(nullptr);
        ev.by = actor.user;
        ev.by_uid = actor.uid;
        ev.via = actor.via;
        ev.host = actor.host;
        auto next = transition(ckpt.state, ev.type);
        if (!next)
            throw Error(ErrorKind::Conflict, "cannot " + to_string(ev.type) + " " + id.str() + ": it is " +
                                                 to_string(ckpt.state));
        // The index must never miss a pending checkpoint: add before, remove after.
        if (*next == State::Pending) spool.set_pending(owner, id, true);
        if (!spool.append(owner, id, ev)) continue;
        if (*next != State::Pending) spool.set_pending(owner, id, false);
        return spool.load(owner, id);
    }
    throw Error(ErrorKind::Conflict, "too many concurrent changes to " + id.str() + ": try again");
}

std::string describe(const Checkpoint& c) {
    std::string s = c.spec.id.str() + " is " + to_string(c.state);
    if (c.decided)
        s += " (\"" + c.decided->decision->choice + "\" by " + c.decided->by + " at " + format_time(c.decided->at) + ")";
    return s;
}

}  // namespace

std::string user_name(uid_t uid) {
    struct passwd pw, *result = nullptr;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result) return pw.pw_name;
    return std::to_string(uid);
}

Actor current_actor(const std::string& via) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    return Actor{user_name(getuid()), getuid(), via, host};
}

Checkpoint open_checkpoint(const Spool& spool, const CheckpointSpec& spec, const Actor& actor) {
    spec.check();
    Event ev;
    ev.seq = 1;
    ev.type = EventType::Opened;
    ev.at = std::time(nullptr);
    ev.by = actor.user;
    ev.by_uid = actor.uid;
    ev.via = actor.via;
    ev.host = actor.host;
    ev.spec = spec;
    if (!spool.append(spec.owner_uid, spec.id, ev)) {
        Checkpoint existing = spool.load(spec.owner_uid, spec.id);
        if (to_json(existing.spec) != to_json(spec))
            throw Error(ErrorKind::Conflict, "checkpoint " + spec.id.str() + " already exists with other options");
        if (existing.state == State::Failed) {
            append_next(spool, spec.owner_uid, spec.id, actor, [](const Checkpoint&) {
                Event reopened;
                reopened.type = EventType::Reopened;
                return reopened;
            });
        } else if (existing.state != State::Running) {
            throw Error(ErrorKind::Conflict, "checkpoint " + describe(existing) + " already: use another name");
        }
    }
    spool.make_files_dir(spec.owner_uid, spec.id);
    return spool.load(spec.owner_uid, spec.id);
}

Checkpoint end_checkpoint(const Spool& spool, uid_t owner, const CheckpointId& id, int wait_status,
                          const Actor& actor, std::uint32_t node, std::uint32_t node_count) {
    Checkpoint ckpt = spool.load(owner, id);
    if (node_count > 1) {
        if (!ckpt.nodes_ended.count(node))
            ckpt = append_next(spool, owner, id, actor, [&](const Checkpoint&) {
                Event ev;
                ev.type = EventType::NodeEnded;
                ev.node = node;
                ev.exit_status = wait_status;
                return ev;
            });
        if (ckpt.state != State::Running || ckpt.nodes_ended.size() < node_count) return ckpt;
        wait_status = 0;
        for (const auto& [n, status] : ckpt.nodes_ended)
            if (wait_status == 0) wait_status = status;
    }
    try {
        return append_next(spool, owner, id, actor, [&](const Checkpoint&) {
            Event ev;
            bool ok = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
            ev.type = ok ? EventType::Pending : EventType::Failed;
            ev.exit_status = wait_status;
            return ev;
        });
    } catch (const Error& e) {
        // Two last nodes may both see every node ended; the other one wrote it.
        if (e.kind() != ErrorKind::Conflict || node_count == 1) throw;
        return spool.load(owner, id);
    }
}

void check_may_decide(const CheckpointSpec& spec, uid_t caller) {
    if (caller != 0 && caller != spec.owner_uid)
        throw Error(ErrorKind::Denied, spec.id.str() + " belongs to " + spec.owner +
                                           ": only " + spec.owner + " and root may decide it");
}

Checkpoint decide(const Spool& spool, uid_t owner, const CheckpointId& id, const Decision& decision,
                  DecideMode mode, const Actor& actor, const Limits& limits) {
    return append_next(spool, owner, id, actor, [&](const Checkpoint& c) {
        check_may_decide(c.spec, actor.uid);
        check_decision(c.spec, decision, limits);
        if (mode == DecideMode::Decide && c.state != State::Pending) {
            std::string hint = c.state == State::Decided ? ": use --amend to change the decision" : "";
            throw Error(ErrorKind::Conflict, "cannot decide " + describe(c) + hint);
        }
        if (mode == DecideMode::Amend && c.state != State::Decided)
            throw Error(ErrorKind::Conflict, "cannot amend " + describe(c) +
                                                 (c.state == State::Applied ? ": a follow-up already used it" : ""));
        Event ev;
        ev.type = mode == DecideMode::Decide ? EventType::Decided : EventType::Amended;
        ev.decision = decision;
        return ev;
    });
}

Checkpoint revoke(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor) {
    return append_next(spool, owner, id, actor, [&](const Checkpoint& c) {
        check_may_decide(c.spec, actor.uid);
        if (c.state != State::Decided)
            throw Error(ErrorKind::Conflict, "cannot revoke " + describe(c) +
                                                 (c.state == State::Applied ? ": a follow-up already used it" : ""));
        Event ev;
        ev.type = EventType::Revoked;
        return ev;
    });
}

uid_t find_owner(const Spool& spool, const CheckpointId& id, uid_t caller) {
    if (caller != 0 && spool.exists(caller, id)) return caller;
    std::vector<uid_t> owners = spool.owners_of(id);
    if (owners.size() == 1) return owners[0];
    if (owners.empty()) throw Error(ErrorKind::NotFound, "no checkpoint " + id.str() + " in spool " + spool.root());
    std::string names;
    for (uid_t uid : owners) names += (names.empty() ? "" : ", ") + user_name(uid);
    throw Error(ErrorKind::Conflict, "checkpoint " + id.str() + " exists for several users (" + names +
                                         "): give --user=NAME");
}

}  // namespace hawf
