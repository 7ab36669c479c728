#include "owner.hpp"

#include <unistd.h>

#include <iostream>
#include <iterator>

#include "actions.hpp"
#include "display.hpp"
#include "hawfd_client.hpp"
#include "review.hpp"
#include "slurm.hpp"
#include "spool.hpp"
#include "views.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;

constexpr std::size_t max_verb_bytes = 1 << 20;
constexpr int verb_timeout_s = 60;

json events_of(const Checkpoint& ckpt) {
    json events = json::array();
    for (const auto& ev : ckpt.history) events.push_back(to_json(ev));
    return {{"events", std::move(events)}};
}

Decision decision_of(const json& j) {
    return {j.at("choice").get<std::string>(), j.at("params").get<std::map<std::string, std::string>>(),
            j.at("comment").get<std::string>()};
}

Actor actor_of(const json& j) {
    return {j.at("user").get<std::string>(), j.at("uid").get<uid_t>(), Via::Hawfd, j.at("host").get<std::string>()};
}

// OWNER's pending delegated checkpoints REVIEWER may approve (what `hawf ls` lists
// for a reviewer), past limits.max_checkpoints none; ones that fail their checks are
// skipped: they are the owner's problem, not the reviewer's.
json reviewable(const Spool& spool, uid_t owner, uid_t reviewer) {
    json list = json::array();
    std::vector<CheckpointId> ids = spool.pending_ids(owner);
    if (ids.size() > spool.limits().max_checkpoints) ids.resize(spool.limits().max_checkpoints);
    for (const auto& id : ids) {
        try {
            const Checkpoint ckpt = spool.load(owner, id);
            if (ckpt.state != State::Pending || !ckpt.spec.delegated()) continue;
            check_may_approve(ckpt.spec, reviewer);
            list.push_back(events_of(ckpt));
        } catch (const Error&) {
        }
    }
    return {{"checkpoints", std::move(list)}};
}

}  // namespace

json owner_verb(const Config& config, const json& request) {
    const uid_t owner = request.at("owner").get<uid_t>();
    if (getuid() != owner || geteuid() != owner)
        throw Error(ErrorKind::Denied, "hawfd --as-owner must run as the owner it acts for (uid " +
                                           std::to_string(owner) + "), not uid " + std::to_string(getuid()));
    const Spool spool = spool_of(config);
    const std::string verb = request.at("verb").get<std::string>();
    if (verb == "reviewable") return reviewable(spool, owner, request.at("reviewer").get<uid_t>());
    if (verb == "pending") {
        std::vector<CheckpointId> ids = spool.pending_ids(owner);
        if (ids.size() > spool.limits().max_checkpoints) ids.resize(spool.limits().max_checkpoints);
        json list = json::array();
        for (const auto& id : ids) list.push_back(id.str());
        return {{"checkpoints", std::move(list)}};
    }
    const CheckpointId id = parse_checkpoint_id(request.at("checkpoint").get<std::string>());
    if (verb == "load") return events_of(spool.load(owner, id));
    if (verb == "approve")
        return events_of(approve(spool, owner, id, decision_of(request.at("decision")), actor_of(request.at("actor")),
                                 request.at("credential").get<std::string>(), config.limits));
    if (verb == "withdraw")
        return events_of(withdraw(spool, owner, id, actor_of(request.at("actor")),
                                  request.at("credential").get<std::string>()));
    if (verb == "record-quorum") {
        const json& q = request.at("quorum");
        const Quorum quorum{decision_of(q.at("decision")), q.at("approvals").get<std::vector<std::uint64_t>>()};
        return events_of(record_quorum(spool, owner, id, quorum, request.at("seal").get<std::string>(),
                                       actor_of(request.at("actor"))));
    }
    if (verb == "take-default") {
        Actor timeout = current_actor(Via::Timeout);
        timeout.user = "timeout";
        return events_of(take_default(spool, owner, id, request.at("now").get<std::int64_t>(), timeout,
                                      request.value("seal", "")));
    }
    if (verb == "read")
        return {{"data", encode_base64(checkpoint_file(spool, owner, id, request.at("file").get<std::string>()))}};
    if (verb == "files") {
        std::string report;
        json files = checkpoint_files(spool, owner, id, &report);
        return {{"files", std::move(files)}, {"report", report}};
    }
    throw Error(ErrorKind::Usage, "unknown verb " + quoted_text(verb));
}

int as_owner_main(const std::string& conf_path) {
    json answer;
    try {
        std::string input;
        char buf[65536];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;) {
            input.append(buf, n);
            if (input.size() > max_verb_bytes) throw Error(ErrorKind::Usage, "the verb is too large");
        }
        answer = owner_verb(load_config(conf_path), json::parse(input));
        answer["ok"] = true;
    } catch (const Error& e) {
        answer = {{"ok", false}, {"error", e.what()}, {"kind", error_kind_name(e.kind())}};
    } catch (const std::exception& e) {
        answer = {{"ok", false}, {"error", std::string("internal error: ") + e.what()}, {"kind", "system"}};
    }
    std::cout << answer.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return std::cout.flush() ? 0 : 1;
}

json ChildOwnerAccess::run(uid_t owner, const json& request) const {
    const RunAs as = run_as_user(owner);
    const std::string input = request.dump(-1, ' ', false, json::error_handler_t::strict);
    // The child needs nothing of hawfd's environment: its config comes by --conf.
    const std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    const CommandResult r =
        run_command({hawfd_path_, "--as-owner", "--conf=" + conf_path_}, "/", &env, verb_timeout_s, &input, &as);
    const json answer = parse_json(r.out);
    if (!r.ok() || !answer.is_object() || !answer.contains("ok"))
        throw Error(ErrorKind::System, "acting as uid " + std::to_string(owner) + " failed: " + r.message());
    if (answer["ok"] != true)
        throw Error(error_kind_from_name(answer.value("kind", "")), answer.value("error", "refused"));
    return answer;
}

Checkpoint OwnerAccess::load(uid_t owner, const CheckpointId& id) const { return call(owner, id, {{"verb", "load"}}); }

json OwnerAccess::ask(uid_t owner, const CheckpointId& id, json request) const {
    request["owner"] = owner;
    request["checkpoint"] = id.str();
    return run(owner, request);
}

Checkpoint OwnerAccess::call(uid_t owner, const CheckpointId& id, json request) const {
    Checkpoint ckpt = checkpoint_of(ask(owner, id, std::move(request)).at("events"));
    // What the owner's tree says must be the checkpoint asked for.
    if (!(ckpt.spec.id == id) || ckpt.spec.owner_uid != owner)
        throw Error(ErrorKind::Untrusted, "the record of " + id.str() + " in uid " + std::to_string(owner) +
                                              "'s tree is for another checkpoint");
    return ckpt;
}

Checkpoint checkpoint_of(const json& events) {
    if (!events.is_array()) throw Error(ErrorKind::Untrusted, "the owner's answer holds no events");
    std::vector<Event> list;
    for (const auto& j : events) list.push_back(event_from_json(j));
    return fold(std::move(list));
}

}  // namespace hawf::hawfd
