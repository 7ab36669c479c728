#include "review.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "display.hpp"
#include "error.hpp"
#include "munge.hpp"

namespace hawf {
namespace {

using nlohmann::json;

Error usage(const std::string& message) { return Error(ErrorKind::Usage, message); }

bool is_group(const std::string& entry) { return !entry.empty() && entry[0] == '@'; }

struct User {
    std::string name;
    uid_t uid;
    gid_t gid;
};
struct Group {
    gid_t gid;
    std::vector<std::string> members;
};

// A reentrant NSS lookup (getpwnam_r and kin) with a buffer that grows while it is
// too small; CONVERT copies what is needed out of the entry before the buffer goes.
// nullopt: no such entry.
template <typename Entry, typename Out, typename Lookup, typename Convert>
std::optional<Out> nss_lookup(const std::string& what, Lookup lookup, Convert convert) {
    for (std::size_t size = 4096;; size *= 2) {
        std::vector<char> buf(size);
        Entry entry{};
        Entry* result = nullptr;
        const int err = lookup(&entry, buf.data(), buf.size(), &result);
        if (err == ERANGE && size < (std::size_t(1) << 24)) continue;
        if (result) return convert(*result);
        // Not found is 0 or, depending on the NSS module, one of these (getpwnam_r(3)).
        if (err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM) return std::nullopt;
        throw system_error("cannot look up " + what, err);
    }
}

User to_user(const passwd& p) { return User{p.pw_name, p.pw_uid, p.pw_gid}; }

std::optional<User> user_named(const std::string& name) {
    return nss_lookup<passwd, User>(
        "user " + quoted_text(name),
        [&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwnam_r(name.c_str(), e, b, n, r); }, to_user);
}

std::optional<User> user_with_uid(uid_t uid) {
    return nss_lookup<passwd, User>(
        "uid " + std::to_string(uid),
        [&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwuid_r(uid, e, b, n, r); }, to_user);
}

std::optional<Group> group_named(const std::string& name) {
    return nss_lookup<group, Group>(
        "group " + quoted_text(name),
        [&](group* e, char* b, std::size_t n, group** r) { return getgrnam_r(name.c_str(), e, b, n, r); },
        [](const group& g) {
            Group out{g.gr_gid, {}};
            for (char** m = g.gr_mem; m && *m; ++m) out.members.emplace_back(*m);
            return out;
        });
}

// USER's primary and supplementary groups (getgrouplist grows the list as needed).
std::vector<gid_t> groups_of(const User& user) {
    int wanted = 64;
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::vector<gid_t> groups(static_cast<std::size_t>(wanted));
        int count = wanted;
        if (getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) >= 0) {
            groups.resize(static_cast<std::size_t>(count));
            return groups;
        }
        wanted = std::max(count, wanted * 2);
    }
    return {user.gid};
}

std::string name_of(uid_t uid) {
    const std::optional<User> user = user_with_uid(uid);
    return user ? shown(user->name) : "uid " + std::to_string(uid);
}

const Event* event_at(const Checkpoint& ckpt, std::uint64_t seq) {
    for (const auto& e : ckpt.history)
        if (e.seq == seq) return &e;
    return nullptr;
}

// Decodes CREDENTIAL: a credential munge refuses is the event's failing (its
// message), munged not answering is the caller's (Error System propagates).
std::optional<MungeCredential> decode(const std::string& credential, const std::string& socket, std::string& problem) {
    if (credential.empty()) {
        problem = "no credential";
        return std::nullopt;
    }
    try {
        return munge_decode(credential, socket);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Untrusted) throw;
        problem = e.what();
        return std::nullopt;
    }
}

// Why the credential of approval or withdrawal EV does not prove it; "" if it does.
std::string request_problem(const Checkpoint& ckpt, const Event& ev, const std::string& socket) {
    std::string problem;
    const std::optional<MungeCredential> cred = decode(ev.credential, socket, problem);
    if (!cred) return problem;
    if (cred->uid != ev.by_uid)
        return "the credential is " + name_of(cred->uid) + "'s (uid " + std::to_string(cred->uid) + "), not " +
               shown(ev.by) + "'s (uid " + std::to_string(ev.by_uid) + ")";
    const json asked = parse_json(cred->payload);
    if (asked.is_discarded() || !asked.is_object()) return "the credential's payload is not a request";
    const CheckpointId& id = ckpt.spec.id;
    const auto checkpoint = asked.find("checkpoint");
    if (checkpoint == asked.end() || !checkpoint->is_string() || *checkpoint != id.str())
        return "the credential is for another checkpoint, not " + id.str();
    // "user" (the owner, as the reviewer named them) is optional; given, it names this owner.
    const auto user = asked.find("user");
    const std::string owner = user != asked.end() && *user == ckpt.spec.owner ? ckpt.spec.owner : "";
    if (user != asked.end() && owner.empty())
        return "the credential names another owner than " + shown(ckpt.spec.owner);
    const bool approval = ev.type == EventType::Approved;
    const json expected = approval ? decide_request(id, *ev.decision, owner) : withdraw_request(id, owner);
    const auto op = asked.find("op");
    if (op == asked.end() || *op != expected.at("op"))
        return std::string("the credential does not ask to ") + (approval ? "decide" : "withdraw");
    if (asked != expected) return "the credential asks for another decision";
    return "";
}

// Why decision EV of a delegated checkpoint is not hawfd's sealed quorum decision; "" if it is.
std::string seal_problem(const Checkpoint& ckpt, const Event& ev, const std::string& socket) {
    // A quorum's decision, or the default hawfd took at the deadline.
    const bool quorum = ev.via == Via::Hawfd && !ev.approvals.empty();
    const bool deadline_default = ev.via == Via::Timeout && ev.approvals.empty() && ev.decision &&
                                  ckpt.spec.timeout_s > 0 && ev.decision->choice == ckpt.spec.default_choice &&
                                  ev.decision->params.empty();
    if (ev.type != EventType::Decided || !(quorum || deadline_default) || ev.credential.empty())
        return "not sealed by hawfd";
    std::string problem;
    const std::optional<MungeCredential> seal = decode(ev.credential, socket, problem);
    if (!seal) return "the seal does not verify: " + problem;
    if (seal->uid != 0) return "sealed by uid " + std::to_string(seal->uid) + ", not root";
    try {
        if (seal->payload != decision_seal_payload(ckpt, ev)) return "the seal is for another decision";
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Untrusted) throw;
        return e.what();
    }
    return "";
}

// Why SPEC's seal does not prove hawf opened it; "" if it does.
std::string spec_problem(const CheckpointSpec& spec, const std::string& socket) {
    if (spec.seal.empty()) return "it has no seal";
    std::string problem;
    const std::optional<MungeCredential> seal = decode(spec.seal, socket, problem);
    if (!seal) return "the seal does not verify: " + problem;
    if (seal->uid != 0) return "sealed by " + name_of(seal->uid) + " (uid " + std::to_string(seal->uid) + "), not root";
    if (seal->payload != spec_seal_payload(spec)) return "the seal is for another spec";
    return "";
}

}  // namespace

std::string reviewers_shown(const std::vector<std::string>& reviewers) {
    return joined(reviewers, ", ", [](const std::string& r) { return shown(r); });
}

void check_reviewer_entry(const std::string& entry) {
    try {
        check_user_name(is_group(entry) ? entry.substr(1) : entry);
    } catch (const Error&) {
        throw usage("bad reviewer " + quoted_text(entry) +
                    ": use USER or @GROUP, names of letters, digits, '.', '_', '-' or '@' starting with a letter, "
                    "digit or '_'");
    }
}

void check_reviewers(const std::vector<std::string>& reviewers) {
    if (reviewers.size() > max_reviewers)
        throw usage(std::to_string(reviewers.size()) + " reviewers: at most " + std::to_string(max_reviewers));
    for (auto it = reviewers.begin(); it != reviewers.end(); ++it) {
        check_reviewer_entry(*it);
        if (std::find(reviewers.begin(), it, *it) != it)
            throw usage("reviewer " + quoted_text(*it) + " is named twice");
    }
}

std::vector<std::string> parse_reviewers(const std::string& text) {
    if (text.empty()) throw usage("no reviewers: name at least one USER or @GROUP");
    const std::vector<std::string> reviewers = split(text, ',');
    check_reviewers(reviewers);
    for (const auto& r : reviewers) {
        if (is_group(r) ? !group_named(r.substr(1)) : !user_named(r))
            throw usage("unknown reviewer " + quoted_text(r) + ": no such " + (is_group(r) ? "group" : "user") +
                        " here" + (is_group(r) ? "" : " (a group is written @GROUP)"));
    }
    return reviewers;
}

std::uint32_t parse_quorum(const std::string& text) {
    const bool digits = !text.empty() && text.size() <= 3 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const unsigned long n = digits ? std::stoul(text) : 0;
    if (n < 1 || n > max_quorum)
        throw usage("bad --hawf-quorum " + quoted_text(text) + ": use a whole number from 1 to " +
                    std::to_string(max_quorum));
    return static_cast<std::uint32_t>(n);
}

std::vector<uid_t> reviewer_uids(const std::vector<std::string>& reviewers) {
    std::vector<uid_t> uids;
    auto add = [&](const std::string& name) {
        const std::optional<User> user = user_named(name);
        if (user && std::find(uids.begin(), uids.end(), user->uid) == uids.end()) uids.push_back(user->uid);
    };
    for (const auto& r : reviewers) {
        if (!is_group(r)) add(r);
        else if (const std::optional<Group> g = group_named(r.substr(1)))
            for (const auto& member : g->members) add(member);
    }
    return uids;
}

bool is_reviewer(const std::vector<std::string>& reviewers, uid_t uid) {
    const std::optional<User> user = user_with_uid(uid);
    if (!user) return false;  // a uid without a name is named by no entry
    std::optional<std::vector<gid_t>> groups;  // looked up for the first @GROUP only
    for (const auto& r : reviewers) {
        if (!is_group(r)) {
            if (r == user->name) return true;
            continue;
        }
        const std::optional<Group> g = group_named(r.substr(1));
        if (!g) continue;
        if (!groups) groups = groups_of(*user);
        if (std::find(groups->begin(), groups->end(), g->gid) != groups->end()) return true;
    }
    return false;
}

std::vector<std::string> all_reviewers(const CheckpointSpec& spec) {
    std::vector<std::string> all;
    auto add = [&](const std::vector<std::string>& reviewers) {
        for (const auto& r : reviewers)
            if (std::find(all.begin(), all.end(), r) == all.end()) all.push_back(r);
    };
    add(spec.reviewers);
    for (const auto& r : spec.required) add(r.reviewers);
    return all;
}

void check_may_approve(const CheckpointSpec& spec, uid_t caller) {
    const std::string id = spec.id.str();
    if (!spec.delegated())
        throw Error(ErrorKind::Denied, id + " has no reviewers: its owner decides it with hawf-decide");
    const std::vector<std::string> all = all_reviewers(spec);
    const std::string reviewers = reviewers_shown(all);
    if (caller == spec.owner_uid && !spec.owner_may_decide)
        throw Error(ErrorKind::Denied, "a site policy does not let " + shown(spec.owner) + ", its owner, decide " + id +
                                           ": its reviewers (" + reviewers + ") do");
    if (!is_reviewer(all, caller))
        throw Error(ErrorKind::Denied,
                    name_of(caller) + " may not decide " + id + ": only its reviewers (" + reviewers + ") may");
}

namespace {

// For the approver UID, whether they count for the job's own list ([0]) and for each
// of spec.required ([1 + i]): requirements_met's rule, looked up once per approver.
std::vector<bool> lists_of(const CheckpointSpec& spec, uid_t uid) {
    std::vector<bool> on(1 + spec.required.size(), false);
    if (uid == spec.owner_uid && !spec.owner_may_decide) return on;
    // Alone, the job's list is the one hawfd admitted every approval for.
    on[0] = !spec.reviewers.empty() && (spec.required.empty() || is_reviewer(spec.reviewers, uid));
    for (std::size_t i = 0; i < spec.required.size(); ++i) on[1 + i] = is_reviewer(spec.required[i].reviewers, uid);
    return on;
}

// Whether distinct approvers on the lists ON (lists_of, one per approver) meet every
// requirement of SPEC.
bool lists_met(const CheckpointSpec& spec, const std::vector<const std::vector<bool>*>& on) {
    const auto count = [&](std::size_t list) {
        return static_cast<std::size_t>(std::count_if(on.begin(), on.end(), [&](const auto* l) { return (*l)[list]; }));
    };
    if (!spec.reviewers.empty() && count(0) < spec.quorum) return false;
    for (std::size_t i = 0; i < spec.required.size(); ++i)
        if (count(1 + i) < spec.required[i].quorum) return false;
    return spec.delegated();
}

}  // namespace

bool requirements_met(const CheckpointSpec& spec, const std::vector<const Event*>& approvals) {
    std::vector<uid_t> uids;
    for (const Event* a : approvals)
        if (std::find(uids.begin(), uids.end(), a->by_uid) == uids.end()) uids.push_back(a->by_uid);
    std::vector<std::vector<bool>> lists;
    for (const uid_t uid : uids) lists.push_back(lists_of(spec, uid));
    std::vector<const std::vector<bool>*> on;
    for (const auto& l : lists) on.push_back(&l);
    return lists_met(spec, on);
}

bool Quorum::operator==(const Quorum& o) const {
    return decision.choice == o.decision.choice && decision.params == o.decision.params &&
           decision.comment == o.decision.comment && approvals == o.approvals;
}

std::optional<Quorum> reached_quorum(const Checkpoint& ckpt, const std::function<bool(const Event&)>& counts) {
    if (ckpt.state != State::Pending || !ckpt.spec.delegated()) return std::nullopt;
    std::vector<Event> in_force;  // one per reviewer (fold), in the order given
    for (const Event& a : ckpt.approvals)
        if (!counts || counts(a)) in_force.push_back(a);
    // requirements_met, with each approver's lists looked up once (NSS).
    std::vector<std::vector<bool>> lists;
    for (const Event& a : in_force) lists.push_back(lists_of(ckpt.spec, a.by_uid));
    for (std::size_t last = 0; last < in_force.size(); ++last) {
        const Decision& d = *in_force[last].decision;
        std::vector<const Event*> agreeing;
        std::vector<const std::vector<bool>*> on;
        for (std::size_t k = 0; k <= last; ++k)
            if (in_force[k].decision->choice == d.choice && in_force[k].decision->params == d.params) {
                agreeing.push_back(&in_force[k]);
                on.push_back(&lists[k]);
            }
        // Each approval adds one to one group, and a group's lists only grow: the first
        // LAST that meets every requirement is the approval that completed them.
        if (!lists_met(ckpt.spec, on)) continue;
        Quorum q{Decision{d.choice, d.params, ""}, {}};
        for (const Event* a : agreeing) {
            q.approvals.push_back(a->seq);
            if (a->decision->comment.empty()) continue;
            q.decision.comment += (q.decision.comment.empty() ? "" : "\n") + a->decision->comment;
        }
        return q;
    }
    return std::nullopt;
}

json decide_request(const CheckpointId& id, const Decision& decision, const std::string& owner_user) {
    json j = {{"op", "decide"},
              {"checkpoint", id.str()},
              {"choice", decision.choice},
              {"params", decision.params},
              {"comment", decision.comment}};
    if (!owner_user.empty()) j["user"] = owner_user;
    return j;
}

json withdraw_request(const CheckpointId& id, const std::string& owner_user) {
    json j = {{"op", "withdraw"}, {"checkpoint", id.str()}};
    if (!owner_user.empty()) j["user"] = owner_user;
    return j;
}

std::string decision_seal_payload(const Checkpoint& ckpt, const Event& decided) {
    if (!decided.decision) throw Error(ErrorKind::Untrusted, "the decision to seal has no decision");
    json approvals = json::array();
    for (const std::uint64_t seq : decided.approvals) {
        const Event* a = event_at(ckpt, seq);
        if (!a || a->type != EventType::Approved)
            throw Error(ErrorKind::Untrusted, "the decision names event " + std::to_string(seq) + " of " +
                                                  ckpt.spec.id.str() + ", which is not an approval");
        approvals.push_back({{"seq", seq}, {"uid", a->by_uid}, {"by", a->by}});
    }
    const json payload = {{"op", decided.via == Via::Timeout ? "default" : "decided"},
                          {"checkpoint", ckpt.spec.id.str()},
                          {"owner_uid", ckpt.spec.owner_uid},
                          {"choice", decided.decision->choice},
                          {"params", decided.decision->params},
                          {"comment", decided.decision->comment},
                          {"approvals", approvals}};
    // nlohmann's objects keep their keys sorted: the same bytes whoever recomputes them.
    return payload.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string spec_seal_payload(const CheckpointSpec& spec) {
    CheckpointSpec unsealed = spec;
    unsealed.seal.clear();
    const json payload = {{"op", "opened"}, {"spec", to_json(unsealed)}};
    // Sorted keys (nlohmann's objects), lists in their order: the same bytes from the record.
    return payload.dump(-1, ' ', false, json::error_handler_t::replace);
}

void verify_spec(const CheckpointSpec& spec, const std::string& munge_socket) {
    const std::string problem = spec_problem(spec, munge_socket);
    if (!problem.empty())
        throw Error(ErrorKind::Untrusted,
                    "the checkpoint " + spec.id.str() + " was not opened by hawf (its spec is not sealed): " + problem);
}

std::vector<EventCheck> verify_events(const Checkpoint& ckpt, const std::string& munge_socket,
                                      bool spec_must_be_sealed) {
    std::vector<EventCheck> checks;
    for (const auto& ev : ckpt.history) {
        std::string problem;
        if (ev.type == EventType::Opened) {
            // The spec in force is this event's (fold): one opened event per checkpoint.
            if (ckpt.spec.seal.empty() && !spec_must_be_sealed) continue;
            problem = spec_problem(ckpt.spec, munge_socket);
        } else if (ev.type == EventType::Approved || ev.type == EventType::Withdrawn)
            problem = request_problem(ckpt, ev, munge_socket);
        else if (ckpt.spec.delegated() &&
                 (ev.type == EventType::Decided || ev.type == EventType::Amended || ev.type == EventType::Revoked))
            problem = seal_problem(ckpt, ev, munge_socket);
        else
            continue;
        checks.push_back(EventCheck{ev.seq, ev.type, ev.by, problem.empty(), problem});
    }
    return checks;
}

void verify_decision(const Checkpoint& ckpt, const std::string& munge_socket) {
    if (!ckpt.spec.delegated() || !ckpt.decided) return;
    const std::string problem = seal_problem(ckpt, *ckpt.decided, munge_socket);
    if (!problem.empty())
        throw Error(ErrorKind::Untrusted, "the decision at " + ckpt.spec.id.str() +
                                              " is not one its reviewers made through hawfd: " + problem);
}

}  // namespace hawf
