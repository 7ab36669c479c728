#include "container.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

#include "error.hpp"
#include "fsutil.hpp"

namespace hawf {
namespace {

using Lookup = std::function<std::optional<std::string>(const std::string&)>;

// VALUE of a comma-separated list variable with ENTRIES appended, each once.
std::string with_entries(std::optional<std::string> value, const std::vector<std::string>& entries) {
    std::string list = value.value_or("");
    for (const auto& entry : entries) {
        const std::string padded = "," + list + ",";
        if (padded.find("," + entry + ",") != std::string::npos) continue;
        list += (list.empty() ? "" : ",") + entry;
    }
    return list;
}

}  // namespace

std::vector<Bind> container_binds(const Environment& env) {
    std::vector<Bind> binds;
    for (const auto& entry : env) {
        const std::string& name = entry.first;
        const std::string& value = entry.second;
        const bool writable = name == "HAWF_CHECKPOINT_DIR";
        if (!writable && name != "HAWF_AFTER_DIR" && name != "HAWF_DECISION_FILE") continue;
        if (value.empty() || value[0] != '/') continue;
        const bool seen = std::any_of(binds.begin(), binds.end(), [&](const Bind& b) { return b.path == value; });
        if (!seen) binds.push_back({value, writable});
    }
    return binds;
}

Environment apptainer_environment(const Environment& env, const std::vector<Bind>& binds, const Lookup& current) {
    Environment out;
    for (const auto& [name, value] : env) {
        if (name.rfind("HAWF_", 0) != 0) continue;
        out.emplace_back("APPTAINERENV_" + name, value);
        out.emplace_back("SINGULARITYENV_" + name, value);
    }
    // src[:dst[:ro|rw]]; a path holding ':' or ',' cannot be said in this list (never a spool path).
    std::vector<std::string> entries;
    for (const auto& b : binds)
        if (b.path.find_first_of(":,") == std::string::npos)
            entries.push_back(b.path + ":" + b.path + (b.writable ? ":rw" : ":ro"));
    if (!entries.empty())
        for (const char* var : {"APPTAINER_BINDPATH", "SINGULARITY_BINDPATH"})
            out.emplace_back(var, with_entries(current(var), entries));
    return out;
}

nlohmann::json amend_oci_config(nlohmann::json config, const Environment& env, const std::vector<Bind>& binds) {
    if (!config.is_object()) throw Error(ErrorKind::Usage, "the OCI configuration is not a JSON object");
    nlohmann::json& process = config["process"];
    if (process.is_null()) process = nlohmann::json::object();
    if (!process.is_object()) throw Error(ErrorKind::Usage, "the OCI configuration's \"process\" is not an object");
    nlohmann::json& vars = process["env"];
    if (vars.is_null()) vars = nlohmann::json::array();
    if (!vars.is_array()) throw Error(ErrorKind::Usage, "the OCI configuration's \"process.env\" is not a list");
    for (const auto& variable : env) {
        const std::string& name = variable.first;
        const std::string entry = name + "=" + variable.second;
        auto same = std::find_if(vars.begin(), vars.end(), [&](const nlohmann::json& v) {
            return v.is_string() && v.get<std::string>().rfind(name + "=", 0) == 0;
        });
        if (same != vars.end()) *same = entry;
        else vars.push_back(entry);
    }
    nlohmann::json& mounts = config["mounts"];
    if (mounts.is_null()) mounts = nlohmann::json::array();
    if (!mounts.is_array()) throw Error(ErrorKind::Usage, "the OCI configuration's \"mounts\" is not a list");
    for (const auto& b : binds) {
        const bool mounted = std::any_of(mounts.begin(), mounts.end(), [&](const nlohmann::json& m) {
            return m.is_object() && m.value("destination", "") == b.path;
        });
        if (mounted) continue;
        mounts.push_back({{"destination", b.path},
                          {"type", "none"},
                          {"source", b.path},
                          {"options", {"rbind", "nosuid", "nodev", b.writable ? "rw" : "ro"}}});
    }
    return config;
}

bool amend_oci_config_file(const std::string& path, uid_t writer, const Environment& env) {
    const std::size_t slash = path.rfind('/');
    const std::string dir_path = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const Fd dir(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) throw system_error("cannot open " + dir_path, errno);
    const std::optional<std::string> text = read_file(dir.get(), name, Trust{writer}, path, 4 << 20);
    if (!text) return false;
    const nlohmann::json config = parse_json(*text);
    nlohmann::json amended = amend_oci_config(config, env, {});
    Environment process_env;  // what the task will see, theirs and ENV
    for (const auto& entry : amended["process"]["env"]) {
        if (!entry.is_string()) continue;
        const std::string s = entry.get<std::string>();
        const auto eq = s.find('=');
        if (eq != std::string::npos) process_env.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
    amended = amend_oci_config(std::move(amended), {}, container_binds(process_env));
    if (amended != config) replace_file(dir.get(), name, amended.dump(), path);
    return true;
}

}  // namespace hawf
