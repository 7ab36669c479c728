#include "cli.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>

#include "error.hpp"

namespace hawf::cli {

int run(const char* prog, const std::function<int()>& body) {
    try {
        return body();
    } catch (const Error& e) {
        std::cerr << prog << ": " << e.what() << "\n";
        return e.kind() == ErrorKind::Usage ? exit_usage : exit_error;
    } catch (const std::exception& e) {
        std::cerr << prog << ": internal error: " << e.what() << "\n";
        return exit_error;
    }
}

void usage_error(const std::string& message) { throw Error(ErrorKind::Usage, message); }

Context load_context() {
    Config config = load_config(config_path_from_env());
    Spool spool(config.spool);
    return Context{std::move(config), std::move(spool), Slurm()};
}

uid_t owner_of(const Context& ctx, const CheckpointId& id, const std::string& user_flag) {
    if (user_flag.empty()) return find_owner(ctx.spool, id, getuid());
    struct passwd* pw = getpwnam(user_flag.c_str());
    if (!pw) usage_error("unknown user \"" + user_flag + "\" for --user");
    return pw->pw_uid;
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

void print_json(const nlohmann::json& json) { std::cout << json.dump(2) << "\n"; }

bool report(const std::vector<FollowUpChange>& changes, bool quiet) {
    bool ok = true;
    for (const auto& c : changes) {
        if (!c.error.empty()) {
            std::cerr << "hawf: follow-up " << c.job << " not " << c.action << ": " << c.error << "\n";
            ok = false;
        } else if (!quiet) {
            std::cout << "follow-up " << c.job << " " << c.action << "\n";
        }
    }
    return ok;
}

nlohmann::json to_json(const std::vector<FollowUpChange>& changes) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& c : changes) {
        nlohmann::json j = {{"job", c.job}, {"action", c.action}};
        if (!c.error.empty()) j["error"] = c.error;
        list.push_back(j);
    }
    return list;
}

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace hawf::cli
