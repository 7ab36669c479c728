#include "record.hpp"

#include <ctime>

#include "error.hpp"

namespace hawf {
namespace {

using nlohmann::json;

Error corrupt(const std::string& message) { return Error(ErrorKind::Untrusted, "invalid record: " + message); }

const std::pair<EventType, const char*> event_names[] = {
    {EventType::Opened, "opened"},   {EventType::Pending, "pending"}, {EventType::Failed, "failed"},
    {EventType::Decided, "decided"}, {EventType::Amended, "amended"}, {EventType::Revoked, "revoked"},
    {EventType::Applied, "applied"}, {EventType::NodeEnded, "node-ended"}, {EventType::Reopened, "reopened"},
    {EventType::FollowUpAdded, "follow-up"},
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
template <typename T>
T field_or(const json& j, const char* key, T fallback) {
    return j.contains(key) ? field<T>(j, key) : fallback;
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

void CheckpointSpec::check() const {
    auto allowed = [&] {
        std::string s;
        for (const auto& o : options) s += (s.empty() ? "" : ",") + o;
        return s;
    };
    if (timeout_s > 0 && default_choice.empty())
        throw Error(ErrorKind::Usage, "--hawf-timeout needs --hawf-default=CHOICE (one of " + allowed() + ")");
    if (!default_choice.empty() && timeout_s == 0)
        throw Error(ErrorKind::Usage, "--hawf-default needs --hawf-timeout=DURATION (e.g. 24h)");
    if (!default_choice.empty() && !has_option(default_choice))
        throw Error(ErrorKind::Usage, "default choice \"" + default_choice + "\" is not among the options: use one of " + allowed());
    for (const auto& t : then)
        for (const auto& c : t.on)
            if (!has_option(c))
                throw Error(ErrorKind::Usage, "--hawf-then choice \"" + c + "\" is not among the options: use one of " + allowed());
}

void check_decision(const CheckpointSpec& spec, const Decision& d, const Limits& limits) {
    if (!spec.has_option(d.choice)) {
        std::string allowed;
        for (const auto& o : spec.options) allowed += (allowed.empty() ? "" : ",") + o;
        throw Error(ErrorKind::Usage, "bad choice \"" + d.choice + "\" for " + spec.id.str() + ": use one of " + allowed);
    }
    for (const auto& [key, value] : d.params) {
        const ParamSpec* p = spec.param(key);
        if (!p) {
            std::string declared;
            for (const auto& q : spec.params) declared += (declared.empty() ? "" : ", ") + q.key + ":" + q.type_text();
            throw Error(ErrorKind::Usage, "unknown parameter \"" + key + "\" for " + spec.id.str() +
                                              ": declared are " + (declared.empty() ? "none" : declared));
        }
        check_param_value(*p, value, limits.max_param_bytes);
    }
    if (d.comment.size() > limits.max_comment_bytes)
        throw Error(ErrorKind::Usage, "comment is " + std::to_string(d.comment.size()) + " bytes: at most " +
                                          std::to_string(limits.max_comment_bytes) + " allowed");
    check_utf8(d.comment, "comment");
}

std::string to_string(EventType type) {
    for (const auto& [t, name] : event_names)
        if (t == type) return name;
    return "?";
}

std::string to_string(State state) {
    for (const auto& [s, name] : state_names)
        if (s == state) return name;
    return "?";
}

State parse_state(const std::string& text) {
    for (const auto& [s, name] : state_names)
        if (text == name) return s;
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
    }
    return std::nullopt;
}

Checkpoint fold(std::vector<Event> events) {
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
        if (ev.type == EventType::Decided || ev.type == EventType::Amended) {
            if (!ev.decision) throw corrupt("decision event without a decision");
            recheck([&] { check_decision(ckpt.spec, *ev.decision, Limits{1 << 20, 1 << 24}); });
            ckpt.decided = ev;
        }
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
    return {{"checkpoint", spec.id.str()}, {"owner_uid", spec.owner_uid}, {"owner", spec.owner},
            {"scope", spec.scope},         {"options", spec.options},     {"params", params},
            {"timeout_s", spec.timeout_s}, {"default", spec.default_choice}, {"then", then},
            {"signal", spec.signal}};
}

CheckpointSpec spec_from_json(const json& j) {
    CheckpointSpec spec;
    recheck([&] {
        spec.id = parse_checkpoint_id(field<std::string>(j, "checkpoint"));
        spec.owner_uid = field<uid_t>(j, "owner_uid");
        spec.owner = field<std::string>(j, "owner");
        spec.scope = field<std::string>(j, "scope");
        std::string options;
        for (const auto& o : field<std::vector<std::string>>(j, "options")) options += (options.empty() ? "" : ",") + o;
        spec.options = parse_choices(options);
        for (const auto& p : field<json>(j, "params"))
            spec.params.push_back(parse_param_spec(field<std::string>(p, "key") + ":" + field<std::string>(p, "type")));
        spec.timeout_s = field<std::int64_t>(j, "timeout_s");
        spec.default_choice = field<std::string>(j, "default");
        for (const auto& t : field<json>(j, "then"))
            spec.then.push_back({field<std::string>(t, "script"), field<std::vector<std::string>>(t, "on")});
        spec.check();
    });
    if (spec.scope != "step" && spec.scope != "job" && spec.scope != "inline")
        throw corrupt("bad scope \"" + spec.scope + "\": expected step, job or inline");
    spec.signal = field_or<std::string>(j, "signal", "");
    if (!spec.signal.empty()) recheck([&] { check_signal(spec.signal); });
    return spec;
}

json to_json(const Decision& d) {
    return {{"choice", d.choice}, {"params", d.params}, {"comment", d.comment}};
}

json to_json(const Event& ev) {
    json j = {{"v", 1},      {"seq", ev.seq}, {"event", to_string(ev.type)}, {"at", format_time(ev.at)},
              {"by", ev.by}, {"by_uid", ev.by_uid}, {"via", ev.via},     {"host", ev.host}};
    if (ev.spec) j["spec"] = to_json(*ev.spec);
    if (ev.decision) j["decision"] = to_json(*ev.decision);
    if (ev.type == EventType::Failed || ev.type == EventType::NodeEnded) j["exit_status"] = ev.exit_status;
    if (ev.type == EventType::NodeEnded) j["node"] = ev.node;
    if (ev.followup)
        j["follow_up"] = {{"checkpoint", ev.followup->of.str()}, {"owner_uid", ev.followup->owner_uid},
                          {"job", ev.followup->job}, {"script", ev.followup->script}, {"on", ev.followup->on}};
    if (ev.type == EventType::Applied) j["job"] = ev.job;
    return j;
}

Event event_from_json(const json& j) {
    if (!j.is_object()) throw corrupt("not a JSON object");
    if (field<int>(j, "v") != 1) throw corrupt("unknown record version");
    Event ev;
    ev.seq = field<std::uint64_t>(j, "seq");
    std::string type = field<std::string>(j, "event");
    bool known = false;
    for (const auto& [t, name] : event_names)
        if (type == name) ev.type = t, known = true;
    if (!known) throw corrupt("unknown event \"" + type + "\"");
    ev.at = parse_time(field<std::string>(j, "at"));
    ev.by = field<std::string>(j, "by");
    ev.by_uid = field<uid_t>(j, "by_uid");
    ev.via = field<std::string>(j, "via");
    ev.host = field<std::string>(j, "host");
    if (ev.type == EventType::Opened) ev.spec = spec_from_json(field<json>(j, "spec"));
    if (ev.type == EventType::Decided || ev.type == EventType::Amended) {
        const json d = field<json>(j, "decision");
        ev.decision = Decision{field<std::string>(d, "choice"),
                               field<std::map<std::string, std::string>>(d, "params"),
                               field<std::string>(d, "comment")};
    }
    if (ev.type == EventType::Failed || ev.type == EventType::NodeEnded) ev.exit_status = field<int>(j, "exit_status");
    if (ev.type == EventType::NodeEnded) ev.node = field<std::uint32_t>(j, "node");
    if (ev.type == EventType::FollowUpAdded) {
        const json f = field<json>(j, "follow_up");
        FollowUp up;
        recheck([&] {
            up.of = parse_checkpoint_id(field<std::string>(f, "checkpoint"));
            up.owner_uid = field<uid_t>(f, "owner_uid");
            up.job = field<std::string>(f, "job");
            check_job_id(up.job);
            up.script = field<std::string>(f, "script");
            check_utf8(up.script, "follow-up script");
            up.on = field<std::vector<std::string>>(f, "on");
            for (const auto& c : up.on) check_name(c, "choice");
        });
        ev.followup = up;
    }
    if (ev.type == EventType::Applied) {
        ev.job = field<std::string>(j, "job");
        recheck([&] { check_job_id(ev.job); });
    }
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

json decision_json(const Checkpoint& ckpt) {
    const Decision* d = ckpt.decision();
    if (!d) return nullptr;
    json j = to_json(*d);
    j["checkpoint"] = ckpt.spec.id.str();
    j["decided_by"] = ckpt.decided->by;
    j["via"] = ckpt.decided->via;
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
    if (!end || *end != '\0') throw corrupt("bad time \"" + text + "\"");
    return timegm(&tm);
}

}  // namespace hawf
