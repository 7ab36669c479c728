#include "record.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <ctime>
#include <functional>

#include "error.hpp"
#include "review.hpp"

namespace hawf {
namespace {

using nlohmann::json;

Error corrupt(const std::string& message) { return Error(ErrorKind::Untrusted, "invalid record: " + message); }

const std::pair<EventType, const char*> event_names[] = {
    {EventType::Opened, "opened"},   {EventType::Pending, "pending"}, {EventType::Failed, "failed"},
    {EventType::Decided, "decided"}, {EventType::Amended, "amended"}, {EventType::Revoked, "revoked"},
    {EventType::Applied, "applied"}, {EventType::NodeEnded, "node-ended"}, {EventType::Reopened, "reopened"},
    {EventType::FollowUpAdded, "follow-up"}, {EventType::Approved, "approved"}, {EventType::Withdrawn, "withdrawn"},
};
const std::pair<State, const char*> state_names[] = {
    {State::Expected, "expected"},
    {State::Running, "running"}, {State::Pending, "pending"}, {State::Decided, "decided"},
    {State::Applied, "applied"}, {State::Failed, "failed"},
};

// Typed field access that turns any mismatch into one clear Untrusted error.
template <typename T>
T field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) throw corrupt(std::string("missing field \"") + key + "\"");
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        throw corrupt(std::string("field \"") + key + "\" has the wrong type");
    }
}
// A member holding an object or array, by reference: nothing is copied.
const json& member(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) throw corrupt(std::string("missing field \"") + key + "\"");
    return *it;
}
template <typename T>
T field_or(const json& j, const char* key, T fallback) {
    return j.contains(key) ? field<T>(j, key) : fallback;
}

// A JSON integer from LO to HI, as T. nlohmann's get<> would read 3.7 as 3, true
// as 1 and -1 as 4294967295 for a uid_t: none of which the command line writes.
template <typename T>
T integer_value(const json& v, const std::string& key, std::int64_t lo, std::uint64_t hi) {
    bool ok = false;
    if (v.is_number_unsigned()) {
        const auto n = v.get<std::uint64_t>();
        ok = n <= hi && (lo <= 0 || n >= static_cast<std::uint64_t>(lo));
    } else if (v.is_number_integer()) {
        const auto n = v.get<std::int64_t>();
        ok = n >= lo && (n < 0 || static_cast<std::uint64_t>(n) <= hi);
    } else {
        throw corrupt("field \"" + key + "\" has the wrong type: expected a whole number");
    }
    if (!ok)
        throw corrupt("field \"" + key + "\" is " + v.dump() + ": expected " + std::to_string(lo) + " to " +
                      std::to_string(hi));
    return v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>()) : static_cast<T>(v.get<std::int64_t>());
}
template <typename T>
T integer(const json& j, const char* key, std::int64_t lo, std::uint64_t hi) {
    auto it = j.find(key);
    if (it == j.end()) throw corrupt(std::string("missing field \"") + key + "\"");
    return integer_value<T>(*it, key, lo, hi);
}

// A uid as stored: (uid_t)-1 is "no uid" to setresuid and chown, never a user.
constexpr std::uint64_t max_uid = static_cast<uid_t>(-1) - 1;
uid_t uid_field(const json& j, const char* key) { return integer<uid_t>(j, key, 0, max_uid); }

// Runs CHECK on the text of field KEY; a refusal names the field.
void check_field(const std::string& key, const std::function<void()>& check) {
    try {
        check();
    } catch (const Error& e) {
        throw corrupt("field \"" + key + "\": " + e.what());
    }
}

// What every event adds around its spec or decision (seq, time, actor, via, host):
// kept free in a record of max_record_bytes.
constexpr std::size_t envelope_bytes = 2048;

// The size of J as the spool writes it (bytes that are not UTF-8 counted, not thrown).
std::size_t json_bytes(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace).size(); }

// "MUNGE:" and base64 up to a closing ':', as libmunge writes a credential (not
// whether munge accepts it: that is verify_events').
bool looks_like_credential(const std::string& text) {
    const std::string prefix = "MUNGE:";
    if (text.size() > max_credential_bytes || text.size() < prefix.size() + 2 ||
        text.compare(0, prefix.size(), prefix) != 0 || text.back() != ':')
        return false;
    return std::all_of(text.begin() + prefix.size(), text.end() - 1, [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '=';
    });
}

// Revalidates user-typed text read back from disk, so a record can never carry
// what the command line would have refused.
template <typename F>
void recheck(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Untrusted) throw;
        throw corrupt(e.what());
    }
}

// "required": [{"reviewers": [...], "quorum": N, "policy": "FILE:LINE"}, ...], as
// to_json writes it (never empty, nothing else in a requirement); what the entries
// hold is CheckpointSpec::check's.
std::vector<CheckpointSpec::Requirement> requirements_from_json(const json& required) {
    if (!required.is_array() || required.empty()) throw corrupt("field \"required\" is not a list of requirements");
    if (required.size() > max_requirements)
        throw corrupt("field \"required\" has " + std::to_string(required.size()) + " requirements: at most " +
                      std::to_string(max_requirements));
    std::vector<CheckpointSpec::Requirement> out;
    for (const json& r : required) {
        if (!r.is_object()) throw corrupt("field \"required\" is not a list of requirements");
        CheckpointSpec::Requirement req;
        req.reviewers = field<std::vector<std::string>>(r, "reviewers");
        req.quorum = integer<std::uint32_t>(r, "quorum", 1, max_quorum);
        req.policy = field<std::string>(r, "policy");
        if (r.size() != 3) throw corrupt("field \"required\": a requirement has fields other than reviewers, "
                                         "quorum and policy");
        out.push_back(std::move(req));
    }
    return out;
}

}  // namespace

const ParamSpec* CheckpointSpec::param(const std::string& key) const {
    for (const auto& p : params)
        if (p.key == key) return &p;
    return nullptr;
}

bool CheckpointSpec::has_option(const std::string& choice) const {
    for (const auto& o : options)
        if (o == choice) return true;
    return false;
}

std::size_t credential_bytes(std::size_t payload_bytes) { return 7 + 4 * ((payload_bytes + 256 + 2) / 3); }

namespace {
// The bytes of the credential carrying WHAT of BYTES, with what a request or seal adds
// (the op, the checkpoint, up to 64 approvals); refused if hawfd could not take it.
std::size_t checked_credential_bytes(std::size_t bytes, const std::string& what) {
    const std::size_t credential = credential_bytes(bytes + 4096);
    if (credential > max_credential_bytes)
        throw Error(ErrorKind::Usage, what + " take " + std::to_string(bytes) +
                                          " bytes: too many for the munge credential that carries them to hawfd (" +
                                          std::to_string(credential) + " bytes, at most " +
                                          std::to_string(max_credential_bytes) + ")");
    return credential;
}
}  // namespace

void CheckpointSpec::check(const Limits& limits) const {
    auto allowed = [&] { return joined(options, ","); };
    if (options.size() > limits.max_options)
        throw Error(ErrorKind::Usage, "--hawf-options: " + std::to_string(options.size()) + " choices, " +
                                          at_most(limits.max_options, "max_options", limits));
    if (params.size() > limits.max_params)
        throw Error(ErrorKind::Usage, "--hawf-params: " + std::to_string(params.size()) + " parameters, " +
                                          at_most(limits.max_params, "max_params", limits));
    for (const auto& p : params)
        if (p.values.size() > limits.max_options)
            throw Error(ErrorKind::Usage, "--hawf-params: " + p.key + " has " + std::to_string(p.values.size()) +
                                              " enum values, " + at_most(limits.max_options, "max_options", limits));
    if (timeout_s > 0 && default_choice.empty())
        throw Error(ErrorKind::Usage, "--hawf-timeout needs --hawf-default=CHOICE (one of " + allowed() + ")");
    if (!default_choice.empty() && timeout_s == 0)
        throw Error(ErrorKind::Usage, "--hawf-default needs --hawf-timeout=DURATION (e.g. 24h)");
    if (!default_choice.empty() && !has_option(default_choice))
        throw Error(ErrorKind::Usage, "default choice " + quoted_text(default_choice) +
                                          " is not among the options: use one of " + allowed());
    for (const auto& t : then)
        for (const auto& c : t.on)
            if (!has_option(c))
                throw Error(ErrorKind::Usage, "--hawf-then choice " + quoted_text(c) +
                                                  " is not among the options: use one of " + allowed());
    check_reviewers(reviewers);
    parse_quorum(std::to_string(quorum));  // its range, and the one refusal for it
    // A policy's quorum is the policy's: the job's own quorum counts only its own reviewers.
    if (reviewers.empty() && quorum != 1)
        throw Error(ErrorKind::Usage, "--hawf-quorum=" + std::to_string(quorum) + " needs --hawf-reviewers: " +
                                          (required.empty() ? "alone, the owner decides"
                                                            : "a site policy's quorum counts only its own reviewers"));
    if (required.size() > max_requirements)
        throw Error(ErrorKind::Usage, std::to_string(required.size()) + " site policies apply to " + id.str() +
                                          ": at most " + std::to_string(max_requirements));
    for (const auto& r : required) {
        check_path(r.policy, "site policy");  // "FILE:LINE": named in messages, so printable and bounded
        const std::string policy = "the site policy at " + r.policy;
        if (r.reviewers.empty()) throw Error(ErrorKind::Usage, policy + " names no reviewers");
        try {
            check_reviewers(r.reviewers);
        } catch (const Error& e) {
            throw Error(ErrorKind::Usage, policy + ": " + e.what());
        }
        if (r.quorum < 1 || r.quorum > max_quorum)
            throw Error(ErrorKind::Usage, policy + " has quorum " + std::to_string(r.quorum) +
                                              ": use a whole number from 1 to " + std::to_string(max_quorum));
    }
    if (!notify.empty()) parse_notify_channels(joined(notify, ","));
    if (!delegated() && !owner_may_decide)
        throw Error(ErrorKind::Usage, "owner_may_decide: false needs reviewers: someone must be able to decide");
    // Checked last: the size of what was refused above is no news. Opened, it must be
    // readable; delegated, it is sent to hawfd and sealed in a munge credential too.
    const std::size_t spec_bytes = json_bytes(to_json(*this));
    std::size_t bytes = spec_bytes + envelope_bytes;
    if (delegated()) bytes += checked_credential_bytes(spec_bytes, "the checkpoint's options, parameters and follow-ups");
    if (bytes > limits.max_record_bytes)
        throw Error(ErrorKind::Usage, "the checkpoint's options, parameters and follow-ups take " +
                                          std::to_string(bytes) + " bytes, " +
                                          at_most(limits.max_record_bytes, "max_record_bytes", limits));
}

void check_decision(const CheckpointSpec& spec, const Decision& d, const Limits& limits) {
    if (!spec.has_option(d.choice))
        throw Error(ErrorKind::Usage, "bad choice " + quoted_text(d.choice) + " for " + spec.id.str() +
                                          ": use one of " + joined(spec.options, ","));
    for (const auto& [key, value] : d.params) {
        const ParamSpec* p = spec.param(key);
        if (!p) {
            const std::string declared =
                joined(spec.params, ", ", [](const ParamSpec& q) { return q.key + ":" + q.type_text(); });
            throw Error(ErrorKind::Usage, "unknown parameter " + quoted_text(key) + " for " + spec.id.str() +
                                              ": declared are " + (declared.empty() ? "none" : declared));
        }
        check_param_value(*p, value, limits.max_param_bytes);
    }
    if (d.comment.size() > limits.max_comment_bytes)
        throw Error(ErrorKind::Usage, "comment is " + std::to_string(d.comment.size()) + " bytes: at most " +
                                          std::to_string(limits.max_comment_bytes) + " allowed");
    check_utf8(d.comment, "comment");
    // Written, the decision must be readable: the reader refuses larger records. Through
    // hawfd, a reviewer's approval and hawfd's seal carry it again, in a munge credential.
    const std::size_t decision_bytes = json_bytes(to_json(d));
    std::size_t bytes = decision_bytes + envelope_bytes;
    if (spec.delegated()) bytes += checked_credential_bytes(decision_bytes, "the decision with its parameters and comment");
    if (bytes > limits.max_record_bytes)
        throw Error(ErrorKind::Usage, "the decision with its parameters and comment takes " + std::to_string(bytes) +
                                          " bytes, " + at_most(limits.max_record_bytes, "max_record_bytes", limits));
}

std::string to_string(EventType type) { return name_in(event_names, type); }

std::string to_string(State state) { return name_in(state_names, state); }

namespace {
const std::pair<Via, const char*> via_names[] = {
    {Via::Plugin, "plugin"}, {Via::Cli, "cli"}, {Via::Timeout, "timeout"}, {Via::Hawfd, "hawfd"}};
}  // namespace

std::string to_string(Via via) { return name_in(via_names, via); }

Via parse_via(const std::string& name) {
    if (const auto via = value_in(via_names, name)) return *via;
    throw corrupt("field \"via\" is " + quoted_text(name) + ": expected plugin, cli, timeout or hawfd");
}

namespace {
const std::pair<Scope, const char*> scope_names[] = {
    {Scope::Step, "step"}, {Scope::Job, "job"}, {Scope::Inline, "inline"}};
}  // namespace

std::string to_string(Scope scope) { return name_in(scope_names, scope); }

Scope parse_scope(const std::string& name) {
    if (const auto scope = value_in(scope_names, name)) return *scope;
    throw corrupt("bad scope " + quoted_text(name) + ": expected step, job or inline");
}

State parse_state(const std::string& text) {
    if (const auto state = value_in(state_names, text)) return *state;
    throw Error(ErrorKind::Usage, "bad state \"" + text + "\": use expected, running, pending, decided, applied or failed");
}

std::optional<State> transition(State from, EventType type) {
    switch (type) {
        case EventType::Opened: if (from == State::Expected) return State::Running; break;
        case EventType::FollowUpAdded:
            if (from == State::Expected || from == State::Running || from == State::Pending) return from;
            break;
        case EventType::Pending: if (from == State::Running) return State::Pending; break;
        case EventType::Failed: if (from == State::Running) return State::Failed; break;
        case EventType::Decided: if (from == State::Pending) return State::Decided; break;
        case EventType::Amended: if (from == State::Decided) return State::Decided; break;
        case EventType::Revoked: if (from == State::Decided) return State::Pending; break;
        case EventType::Applied: if (from == State::Decided) return State::Applied; break;
        case EventType::NodeEnded: if (from == State::Running) return State::Running; break;
        case EventType::Reopened: if (from == State::Failed) return State::Running; break;  // a requeued job
        case EventType::Approved:
        case EventType::Withdrawn: if (from == State::Pending) return State::Pending; break;
    }
    return std::nullopt;
}

namespace {

std::vector<Event>::iterator approval_of(Checkpoint& ckpt, uid_t uid) {
    return std::find_if(ckpt.approvals.begin(), ckpt.approvals.end(), [&](const Event& a) { return a.by_uid == uid; });
}

// An approval replaces the reviewer's earlier one (it moves to the end: the order
// approvals were given decides which choice reaches the quorum first); a withdrawal
// must take one back.
void fold_approval(Checkpoint& ckpt, const Event& ev) {
    const std::string what = to_string(ev.type) + " event " + std::to_string(ev.seq);
    if (!ckpt.spec.delegated()) throw corrupt(what + " in " + ckpt.spec.id.str() + ", which has no reviewers");
    if (ev.credential.empty()) throw corrupt(what + " without a credential");
    const auto earlier = approval_of(ckpt, ev.by_uid);
    if (ev.type == EventType::Withdrawn && earlier == ckpt.approvals.end())
        throw corrupt(what + ": uid " + std::to_string(ev.by_uid) + " has no approval in force");
    if (earlier != ckpt.approvals.end()) ckpt.approvals.erase(earlier);
    if (ev.type == EventType::Approved) ckpt.approvals.push_back(ev);
}

// A decision made by a quorum names approvals in force, of distinct reviewers, for
// exactly its choice and parameters, and at least as many as the largest quorum of
// its requirements.
//
// Structure only: whether the approvers are on the lists each requirement names
// (requirements_met, review.hpp) is not checked here. Group membership is NSS, as it
// is now on the host that reads: fold, the reader of every tree, must be a function
// of the record alone, or a reviewer leaving @safety would make every decision they
// took part in unreadable, and a host with other NSS data would read another history.
// The rule is applied where a decision is made: reached_quorum, which hawfd asks
// before sealing and record_quorum re-derives under the checkpoint's lock; hawfd's
// seal then binds the approvals, and delivery runs a follow-up only on that seal.
void check_quorum_decision(const Checkpoint& ckpt, const Event& ev) {
    const std::string what = "decision " + std::to_string(ev.seq) + " of " + ckpt.spec.id.str();
    if (!ckpt.spec.delegated()) throw corrupt(what + " names approvals, but it has no reviewers");
    std::vector<uid_t> uids;
    for (const std::uint64_t seq : ev.approvals) {
        const auto a = std::find_if(ckpt.approvals.begin(), ckpt.approvals.end(),
                                    [&](const Event& e) { return e.seq == seq; });
        if (a == ckpt.approvals.end())
            throw corrupt(what + " names event " + std::to_string(seq) + ", not an approval in force");
        if (std::find(uids.begin(), uids.end(), a->by_uid) != uids.end())
            throw corrupt(what + " counts uid " + std::to_string(a->by_uid) + " twice");
        if (a->decision->choice != ev.decision->choice || a->decision->params != ev.decision->params)
            throw corrupt(what + " differs from approval " + std::to_string(seq));
        uids.push_back(a->by_uid);
    }
    std::uint32_t needed = ckpt.spec.reviewers.empty() ? 0 : ckpt.spec.quorum;
    for (const auto& r : ckpt.spec.required) needed = std::max(needed, r.quorum);
    if (uids.size() < needed)
        throw corrupt(what + " has " + std::to_string(uids.size()) + " approvals, its quorum is " +
                      std::to_string(needed));
}

}  // namespace

Checkpoint fold(std::vector<Event> events) {
    const Limits ceilings = Limits::ceilings();
    check_event_count(events.size(), ceilings, ErrorKind::Untrusted);
    Checkpoint ckpt;
    if (!events.empty() && events[0].type == EventType::Opened && events[0].spec) {
        ckpt.spec = *events[0].spec;
        ckpt.state = State::Running;
    } else if (!events.empty() && events[0].type == EventType::FollowUpAdded && events[0].followup) {
        ckpt.spec.id = events[0].followup->of;  // the rest comes with "opened"
        ckpt.spec.owner_uid = events[0].followup->owner_uid;
        ckpt.state = State::Expected;
    } else {
        throw corrupt("history does not start with an \"opened\" or \"follow-up\" event");
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
        const Event& ev = events[i];
        if (ev.seq != i + 1) throw corrupt("event " + std::to_string(ev.seq) + " out of sequence");
        if (ev.type == EventType::FollowUpAdded) {
            if (!ev.followup) throw corrupt("follow-up event without a follow-up");
            const FollowUp& f = *ev.followup;
            if (!(f.of == ckpt.spec.id) || f.owner_uid != ckpt.spec.owner_uid || ckpt.followup(f.job))
                throw corrupt("follow-up " + f.job + " does not belong to " + ckpt.spec.id.str() + " or is there twice");
            ckpt.followups.push_back(f);
        }
        if (i == 0) continue;
        if (ev.type == EventType::Opened) {
            if (!ev.spec || !(ev.spec->id == ckpt.spec.id) || ev.spec->owner_uid != ckpt.spec.owner_uid)
                throw corrupt("\"opened\" event for another checkpoint");
            ckpt.spec = *ev.spec;
        }
        auto next = transition(ckpt.state, ev.type);
        if (!next)
            throw corrupt("event \"" + to_string(ev.type) + "\" not allowed in state " + to_string(ckpt.state));
        if (ev.type == EventType::Decided || ev.type == EventType::Amended || ev.type == EventType::Approved) {
            if (!ev.decision) throw corrupt("decision event without a decision");
            recheck([&] { check_decision(ckpt.spec, *ev.decision, ceilings); });
        }
        if (ev.type == EventType::Approved || ev.type == EventType::Withdrawn) fold_approval(ckpt, ev);
        if (ev.type == EventType::Decided && !ev.approvals.empty()) check_quorum_decision(ckpt, ev);
        if (ev.type == EventType::Decided || ev.type == EventType::Amended) ckpt.decided = ev;
        if (ev.type == EventType::Revoked) ckpt.decided.reset();
        if (ev.type == EventType::Pending) ckpt.pending_since = ev.at;
        if (ev.type == EventType::NodeEnded) ckpt.nodes_ended[ev.node] = ev.exit_status;
        if (ev.type == EventType::Reopened) ckpt.nodes_ended.clear();
        ckpt.state = *next;
    }
    ckpt.history = std::move(events);
    return ckpt;
}

json to_json(const CheckpointSpec& spec) {
    json params = json::array();
    for (const auto& p : spec.params) params.push_back({{"key", p.key}, {"type", p.type_text()}});
    json then = json::array();
    for (const auto& t : spec.then) then.push_back({{"script", t.script}, {"on", t.on}});
    json j = {{"checkpoint", spec.id.str()}, {"owner_uid", spec.owner_uid}, {"owner", spec.owner},
              {"scope", to_string(spec.scope)},         {"options", spec.options},     {"params", params},
              {"timeout_s", spec.timeout_s}, {"default", spec.default_choice}, {"then", then},
              {"signal", spec.signal}};
    // Only when delegated: owner-mode records stay as they always were; "required"
    // only when a site policy applies, so the records of a job's own reviewers too.
    if (spec.delegated()) {
        j["reviewers"] = spec.reviewers;
        j["quorum"] = spec.quorum;
        j["owner_may_decide"] = spec.owner_may_decide;
    }
    if (!spec.required.empty()) {
        json required = json::array();
        for (const auto& r : spec.required)
            required.push_back({{"reviewers", r.reviewers}, {"quorum", r.quorum}, {"policy", r.policy}});
        j["required"] = std::move(required);
    }
    if (!spec.notify.empty()) j["notify"] = spec.notify;
    if (!spec.seal.empty()) j["seal"] = spec.seal;
    return j;
}

CheckpointSpec spec_from_json(const json& j) {
    CheckpointSpec spec;
    recheck([&] {
        spec.id = parse_checkpoint_id(field<std::string>(j, "checkpoint"));
        spec.owner_uid = uid_field(j, "owner_uid");
        spec.owner = field<std::string>(j, "owner");
        check_field("owner", [&] { check_user_name(spec.owner); });
        spec.scope = parse_scope(field<std::string>(j, "scope"));
        // One by one first: joined, "a,b" would pass as two options.
        const auto options = field<std::vector<std::string>>(j, "options");
        for (const auto& o : options) check_name(o, "choice in options");
        spec.options = parse_choices(joined(options, ","));
        // As the command line has them: "key:type,..." refuses keys declared twice.
        std::string params;
        for (const auto& p : member(j, "params")) {
            const ParamSpec one = parse_param_spec(field<std::string>(p, "key") + ":" + field<std::string>(p, "type"));
            params += (params.empty() ? "" : ",") + one.key + ":" + one.type_text();
        }
        if (!params.empty()) spec.params = parse_param_specs(params);
        spec.timeout_s = integer<std::int64_t>(j, "timeout_s", 0, max_duration_s);
        spec.default_choice = field<std::string>(j, "default");
        for (const auto& t : member(j, "then")) {
            ThenSpec then{field<std::string>(t, "script"), field<std::vector<std::string>>(t, "on")};
            check_field("then", [&] { check_path(then.script, "script path"); });
            for (const auto& c : then.on) check_name(c, "--hawf-then choice");
            if (!then.on.empty()) then.on = parse_choices(joined(then.on, ","), "--hawf-then choices");
            spec.then.push_back(then);
        }
        // Written together, and only for a delegated spec: none or all, with reviewers
        // (the job's own, empty only when site policies require others).
        if (j.contains("reviewers") || j.contains("quorum") || j.contains("owner_may_decide") ||
            j.contains("required")) {
            spec.reviewers = field<std::vector<std::string>>(j, "reviewers");
            spec.quorum = integer<std::uint32_t>(j, "quorum", 1, max_quorum);
            spec.owner_may_decide = field<bool>(j, "owner_may_decide");
            if (j.contains("required")) spec.required = requirements_from_json(member(j, "required"));
            if (spec.reviewers.empty() && spec.required.empty()) throw corrupt("field \"reviewers\" is empty");
        }
        if (j.contains("notify")) {
            // One by one first: joined, "a,b" would pass as two channels.
            const auto channels = field<std::vector<std::string>>(j, "notify");
            for (const auto& c : channels) check_name(c, "channel in notify");
            spec.notify = parse_notify_channels(joined(channels, ","));
        }
        spec.check(Limits::ceilings());
    });
    spec.signal = field_or<std::string>(j, "signal", "");
    if (!spec.signal.empty()) recheck([&] { check_signal(spec.signal); });
    // Written only when there is one: present, it is a credential (whether it
    // verifies is review.hpp's verify_spec).
    if (j.contains("seal")) {
        spec.seal = field<std::string>(j, "seal");
        if (!looks_like_credential(spec.seal))
            throw corrupt("field \"seal\" is " + quoted_text(spec.seal) + ": not a munge credential");
    }
    return spec;
}

json to_json(const Decision& d) {
    return {{"choice", d.choice}, {"params", d.params}, {"comment", d.comment}};
}

json to_json(const Event& ev) {
    json j = {{"v", 1},      {"seq", ev.seq}, {"event", to_string(ev.type)}, {"at", format_time(ev.at)},
              {"by", ev.by}, {"by_uid", ev.by_uid}, {"via", to_string(ev.via)},     {"host", ev.host}};
    if (ev.spec) j["spec"] = to_json(*ev.spec);
    if (ev.decision) j["decision"] = to_json(*ev.decision);
    if (ev.type == EventType::Failed || ev.type == EventType::NodeEnded) j["exit_status"] = ev.exit_status;
    if (ev.type == EventType::NodeEnded) j["node"] = ev.node;
    if (ev.followup)
        j["follow_up"] = {{"checkpoint", ev.followup->of.str()}, {"owner_uid", ev.followup->owner_uid},
                          {"job", ev.followup->job}, {"script", ev.followup->script}, {"on", ev.followup->on}};
    if (ev.type == EventType::Applied) j["job"] = ev.job;
    if (!ev.credential.empty()) j["credential"] = ev.credential;
    if (!ev.approvals.empty()) j["approvals"] = ev.approvals;
    return j;
}

void check_event_fields(const Event& ev) {
    check_field("by", [&] {
        if (ev.via != Via::Timeout) return check_user_name(ev.by);
        if (ev.by != "timeout")
            throw Error(ErrorKind::Usage, "bad actor " + quoted_text(ev.by) + " via timeout: use \"timeout\"");
    });
    if (ev.by_uid > max_uid) throw corrupt("field \"by_uid\" is " + std::to_string(ev.by_uid) + ": not a uid");
    check_field("host", [&] { check_host_name(ev.host); });
    if (ev.spec) {
        check_field("owner", [&] { check_user_name(ev.spec->owner); });
        if (ev.spec->owner_uid > max_uid) throw corrupt("field \"owner_uid\": not a uid");
        for (const auto& t : ev.spec->then) check_field("then", [&] { check_path(t.script, "script path"); });
        if (!ev.spec->seal.empty() && !looks_like_credential(ev.spec->seal))
            throw corrupt("field \"seal\" is " + quoted_text(ev.spec->seal) + ": not a munge credential");
    }
    if (ev.followup) {
        if (ev.followup->owner_uid > max_uid) throw corrupt("field \"owner_uid\": not a uid");
        check_field("script", [&] { check_path(ev.followup->script, "follow-up script"); });
    }
    if (!ev.credential.empty()) {
        if (ev.type != EventType::Approved && ev.type != EventType::Withdrawn && ev.type != EventType::Decided)
            throw corrupt("a credential in a \"" + to_string(ev.type) + "\" event");
        if (!looks_like_credential(ev.credential))
            throw corrupt("field \"credential\" is " + quoted_text(ev.credential) + ": not a munge credential");
    }
    if (!ev.approvals.empty() && ev.type != EventType::Decided)
        throw corrupt("approvals in a \"" + to_string(ev.type) + "\" event");
}

Event event_from_json(const json& j) {
    if (!j.is_object()) throw corrupt("not a JSON object");
    if (integer<std::int64_t>(j, "v", INT64_MIN, INT64_MAX) != 1) throw corrupt("unknown record version");
    Event ev;
    ev.seq = integer<std::uint64_t>(j, "seq", 1, UINT64_MAX);
    const std::string type = field<std::string>(j, "event");
    const std::optional<EventType> known = value_in(event_names, type);
    if (!known) throw corrupt("unknown event " + quoted_text(type));
    ev.type = *known;
    ev.at = parse_time(field<std::string>(j, "at"));
    ev.by = field<std::string>(j, "by");
    ev.by_uid = uid_field(j, "by_uid");
    ev.via = parse_via(field<std::string>(j, "via"));
    ev.host = field<std::string>(j, "host");
    if (ev.type == EventType::Opened) ev.spec = spec_from_json(member(j, "spec"));
    if (ev.type == EventType::Decided || ev.type == EventType::Amended || ev.type == EventType::Approved) {
        const json& d = member(j, "decision");
        ev.decision = Decision{field<std::string>(d, "choice"),
                               field<std::map<std::string, std::string>>(d, "params"),
                               field<std::string>(d, "comment")};
    }
    if (ev.type == EventType::Failed || ev.type == EventType::NodeEnded)
        ev.exit_status = integer<int>(j, "exit_status", INT_MIN, INT_MAX);
    if (ev.type == EventType::NodeEnded) ev.node = integer<std::uint32_t>(j, "node", 0, UINT32_MAX);
    if (ev.type == EventType::FollowUpAdded) {
        const json& f = member(j, "follow_up");
        FollowUp up;
        recheck([&] {
            up.of = parse_checkpoint_id(field<std::string>(f, "checkpoint"));
            up.owner_uid = uid_field(f, "owner_uid");
            up.job = field<std::string>(f, "job");
            check_job_id(up.job);
            up.script = field<std::string>(f, "script");
            up.on = field<std::vector<std::string>>(f, "on");
            for (const auto& c : up.on) check_name(c, "choice");
        });
        ev.followup = up;
    }
    if (ev.type == EventType::Applied) {
        ev.job = field<std::string>(j, "job");
        recheck([&] { check_job_id(ev.job); });
    }
    // Written only when there is one: present, they must not be empty.
    if (j.contains("credential")) {
        ev.credential = field<std::string>(j, "credential");
        if (ev.credential.empty()) throw corrupt("field \"credential\" is empty");
    }
    if (j.contains("approvals")) {
        const json& approvals = member(j, "approvals");
        if (!approvals.is_array() || approvals.empty())
            throw corrupt("field \"approvals\" is not a list of event numbers");
        for (const json& seq : approvals)
            ev.approvals.push_back(integer_value<std::uint64_t>(seq, "approvals", 1, UINT64_MAX));
    }
    check_event_fields(ev);
    return ev;
}

std::vector<std::string> Checkpoint::releasing_choices(const FollowUp& f) const {
    if (!f.on.empty()) return f.on;
    if (spec.options.empty()) return {};
    return {spec.options.front()};
}

const FollowUp* Checkpoint::followup(const std::string& job) const {
    for (const auto& f : followups)
        if (f.job == job) return &f;
    return nullptr;
}

namespace {

// The Approved events in CKPT's history that DECIDED names, in its order (fold has
// checked that each is one).
std::vector<const Event*> approvals_of(const Checkpoint& ckpt, const Event& decided) {
    std::vector<const Event*> found;
    for (const std::uint64_t seq : decided.approvals) {
        const auto it = std::find_if(ckpt.history.begin(), ckpt.history.end(),
                                     [&](const Event& e) { return e.seq == seq && e.type == EventType::Approved; });
        if (it != ckpt.history.end()) found.push_back(&*it);
    }
    return found;
}

}  // namespace

std::string Checkpoint::decided_by() const {
    if (!decided) return "";
    if (decided->approvals.empty()) return decided->by;
    return joined(approvals_of(*this, *decided), ",", [](const Event* a) { return a->by; });
}

namespace {
// Whether the brackets of TEXT (outside its strings) nest at most MAX deep.
bool nests_within(std::string_view text, int max) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return false;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return true;
}
}  // namespace

json parse_json(std::string_view text) {
    if (!nests_within(text, max_json_depth)) return json(json::value_t::discarded);
    return json::parse(text, nullptr, false);
}

json typed_params(const CheckpointSpec& spec, const std::map<std::string, std::string>& params) {
    json typed = json::object();
    for (const auto& entry : params) {
        const std::string& key = entry.first;  // a structured binding cannot be captured in C++17
        const std::string& value = entry.second;
        typed[key] = value;
        const auto declared = std::find_if(spec.params.begin(), spec.params.end(),
                                           [&](const ParamSpec& p) { return p.key == key; });
        if (declared == spec.params.end()) continue;
        try {
            if (declared->type == ParamType::Bool) typed[key] = value == "true";
            else if (declared->type == ParamType::Int) typed[key] = std::stoll(value);
            else if (declared->type == ParamType::Float && std::isfinite(std::stod(value))) typed[key] = std::stod(value);
        } catch (const std::logic_error&) {  // out of range: stays text
        }
    }
    return typed;
}

json decision_json(const Checkpoint& ckpt) {
    const Decision* d = ckpt.decision();
    if (!d) return nullptr;
    json j = to_json(*d);
    j["params"] = typed_params(ckpt.spec, d->params);
    j["checkpoint"] = ckpt.spec.id.str();
    j["decided_by"] = ckpt.decided_by();
    if (!ckpt.decided->approvals.empty()) {
        j["approved_by"] = json::array();
        for (const Event* a : approvals_of(ckpt, *ckpt.decided)) j["approved_by"].push_back(a->by);
    }
    j["via"] = to_string(ckpt.decided->via);
    j["decided_at"] = format_time(ckpt.decided->at);
    j["state"] = to_string(ckpt.state);
    return j;
}

namespace {

std::string format_with(std::int64_t unix_seconds, bool utc) {
    std::time_t t = unix_seconds;
    std::tm tm{};
    if (utc) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}

}  // namespace

std::string format_time(std::int64_t unix_seconds) { return format_with(unix_seconds, true); }
std::string format_local_time(std::int64_t unix_seconds) { return format_with(unix_seconds, false); }

std::int64_t parse_time(const std::string& text) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    // Only what format_time writes: strptime also skips spaces and normalises Feb 30.
    const std::int64_t t = end && *end == '\0' ? timegm(&tm) : 0;
    if (!end || *end != '\0' || format_time(t) != text) throw corrupt("bad time " + quoted_text(text));
    return t;
}

}  // namespace hawf
