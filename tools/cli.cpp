#include "cli.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>

#include "display.hpp"
#include "error.hpp"
#include "hawfd_client.hpp"

namespace hawf::cli {

int run(const char* prog, const std::function<int()>& body) {
    try {
        return body();
    } catch (const Error& e) {
        std::cerr << prog << ": " << shown(e.what()) << "\n";
        return e.kind() == ErrorKind::Usage ? exit_usage : exit_error;
    } catch (const std::exception& e) {
        std::cerr << prog << ": internal error: " << shown(e.what()) << "\n";
        return exit_error;
    }
}

void usage_error(const std::string& message) { throw Error(ErrorKind::Usage, message); }

void print_version(const char* prog) {
    std::cout << prog << " " << HAWF_VERSION << std::endl;
    std::exit(exit_ok);
}

Context load_context() {
    Config config = load_config(config_path_from_env());
    Spool spool = spool_of(config);
    return Context{std::move(config), std::move(spool), Slurm()};
}

namespace {

std::optional<uid_t> named_user(const std::string& user_flag) {
    if (user_flag.empty()) return std::nullopt;
    struct passwd* pw = getpwnam(user_flag.c_str());
    if (!pw) usage_error("unknown user " + quoted_text(user_flag) + " for --user");
    return pw->pw_uid;
}

}  // namespace

uid_t owner_of(const Context& ctx, const CheckpointId& id, const std::string& user_flag) {
    return find_owner(ctx.slurm, id, getuid(), named_user(user_flag));
}

Route route(const Context& ctx, const CheckpointId& id, const std::string& user_flag) {
    if (!ctx.config.hawfd_configured()) {
        const uid_t owner = owner_of(ctx, id, user_flag);
        return {owner, load_checkpoint(ctx, owner, id), false};
    }
    // A reviewer names the owner of a job Slurm has forgotten as root would.
    const uid_t caller = getuid();
    const std::optional<uid_t> named = named_user(user_flag);
    const uid_t owner = find_owner(ctx.slurm, id, named ? 0 : caller, named);
    if (caller != 0 && caller != owner) return {owner, std::nullopt, true};
    try {
        Checkpoint ckpt = load_checkpoint(ctx, owner, id);
        const bool delegated = ckpt.spec.delegated();
        return {owner, std::move(ckpt), delegated};
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound || !user_flag.empty() || caller == 0) throw;
        throw Error(ErrorKind::NotFound,
                    std::string(e.what()) + " (if you review another user's checkpoint, give --user=OWNER)");
    }
}

nlohmann::json ask_hawfd(const Context& ctx, const nlohmann::json& op) {
    nlohmann::json answer = hawfd_request(ctx.config, op, std::chrono::seconds(60));
    answer.erase("ok");
    return answer;
}

std::vector<FollowUpChange> changes_from_json(const nlohmann::json& list) {
    std::vector<FollowUpChange> changes;
    for (const auto& j : list)
        changes.push_back({j.value("job", ""), parse_followup_action(j.value("action", "")), j.value("at", ""),
                           j.value("error", ""), j.value("unsure", false)});
    return changes;
}

Checkpoint load_checkpoint(const Context& ctx, uid_t owner, const CheckpointId& id) {
    check_may_read(id, owner, getuid());
    const AsOwner as_owner(owner);
    return ctx.spool.load(owner, id);
}

AsOwner::AsOwner(uid_t owner) {
    if (geteuid() != 0 || owner == 0) return;
    struct passwd* pw = getpwuid(owner);
    gid_t gid = pw ? pw->pw_gid : static_cast<gid_t>(owner);
    gid_t groups[] = {gid};
    if (setgroups(1, groups) != 0 || setegid(gid) != 0 || seteuid(owner) != 0)
        throw system_error("cannot act as uid " + std::to_string(owner), errno);
    switched_ = true;
}

AsOwner::~AsOwner() {
    // Back to root (the real and saved uid never changed); failing that, stop.
    if (switched_ && (seteuid(0) != 0 || setegid(0) != 0 || setgroups(0, nullptr) != 0)) std::abort();
}

// Records are checked to be UTF-8, but names a user gives files in a checkpoint dir
// need not be: those bytes become U+FFFD instead of failing the whole output.
void print_json(const nlohmann::json& json) {
    std::cout << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool report(const std::vector<FollowUpChange>& changes, bool quiet) {
    bool ok = true;
    for (const auto& c : changes) {
        if (!c.error.empty()) {
            // Unsure: Slurm did not answer, and the error says the change may have been made.
            std::cerr << "hawf: " << (c.unsure ? "" : "follow-up " + c.job + " not " + c.action_text() + ": ")
                      << shown(c.error) << "\n";
            ok = false;
        } else if (!quiet) {
            std::cout << "follow-up " << c.job << " " << c.action_text() << "\n";
        }
    }
    return ok;
}

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace hawf::cli
