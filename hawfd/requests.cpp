#include "requests.hpp"

#include "actions.hpp"
#include "display.hpp"
#include "hawfd_client.hpp"
#include "munge.hpp"
#include "ops.hpp"
#include "validate.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;

std::string known_ops() {
    return joined(op_table(), ", ", [](const auto& entry) { return entry.first; });
}

// The credential of the envelope {"v":1,"credential":"MUNGE:..."}.
std::string credential_of(const std::string& line) {
    const json envelope = parse_json(line);
    if (!envelope.is_object()) throw Error(ErrorKind::Usage, "the request is not a JSON object");
    for (const auto& [key, value] : envelope.items())
        if (key != "v" && key != "credential")
            throw Error(ErrorKind::Usage, "unknown request key " + quoted_text(key) + ": allowed are v, credential");
    if (!envelope.contains("v") || envelope["v"] != hawfd_protocol_version)
        throw Error(ErrorKind::Usage, "unsupported protocol version " +
                                          quoted_text(envelope.contains("v") ? envelope["v"].dump() : "(none)") +
                                          ": this hawfd speaks " + std::to_string(hawfd_protocol_version));
    if (!envelope.contains("credential") || !envelope["credential"].is_string())
        throw Error(ErrorKind::Usage, "the request has no munge credential");
    return envelope["credential"].get<std::string>();
}

// Munge vouches for uid and payload; a credential used before or past its TTL
// could be someone else's copy, so neither counts as a request.
void check_fresh(MungeStatus status) {
    if (status == MungeStatus::Expired)
        throw Error(ErrorKind::Denied, "the munge credential has expired: make a new request");
    if (status == MungeStatus::Replayed)
        throw Error(ErrorKind::Denied, "the munge credential was replayed: each is good for one request");
}

json error_answer(const Error& e) {
    return {{"ok", false}, {"error", e.what()}, {"kind", error_kind_name(e.kind())}};
}

}  // namespace

std::string answer_line(const json& answer) {
    return answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Outcome handle_request(const std::string& line, const std::string& peer, const Service& service) {
    std::string who = "uid=?", op_name;
    const auto log = [&](const std::string& outcome) {
        return shown(peer) + " " + who + " op=" + (op_name.empty() ? "?" : quoted_text(op_name)) + ": " + outcome;
    };
    try {
        const std::string sealed = credential_of(line);
        const MungeCredential credential = munge_decode(sealed, service.munge_socket());
        Request request{peer, sealed, credential.uid, credential.gid, user_name(credential.uid), {}};
        who = "uid=" + std::to_string(request.uid) + " (" + shown(request.user) + ")";
        // Authentic even when stale, so the log says what a replay was for.
        request.payload = parse_json(credential.payload);
        const bool has_op = request.payload.is_object() && request.payload.contains("op") &&
                            request.payload["op"].is_string();
        if (has_op) op_name = request.payload["op"].get<std::string>();
        check_fresh(credential.status);
        if (!has_op) throw Error(ErrorKind::Usage, "the credential's payload is not a JSON object with an \"op\"");
        const auto op = op_table().find(op_name);
        if (op == op_table().end())
            throw Error(ErrorKind::Usage, "unknown op " + quoted_text(op_name) + ": known are " + known_ops());
        json answer = {{"ok", true}};
        answer.update(op->second(service, request));
        return {answer, log("ok")};
    } catch (const Error& e) {
        return {error_answer(e), log("refused: " + shown(e.what()))};
    } catch (const std::exception& e) {
        // A bug, not the client's fault: the details go to the log only.
        return {error_answer(Error(ErrorKind::System, "hawfd failed on this request (see its log)")),
                log("internal error: " + shown(e.what()))};
    }
}

Outcome refuse(const std::string& peer, const Error& why) {
    return {error_answer(why), shown(peer) + " uid=? op=?: refused: " + shown(why.what())};
}

}  // namespace hawf::hawfd
