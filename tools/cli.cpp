#include "cli.hpp"

#include "local_jobs.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>

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
    std::unique_ptr<Slurm> slurm = slurm_of(config);
    return Context{std::move(config), std::move(spool), std::move(slurm)};
}

void take_local_flag(int& argc, char** argv) {
    int kept = 1;
    bool local = false;
    bool operands = false;  // after "--": taken as they are
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        operands = operands || a == "--";
        if (a == "--local" && !operands) local = true;
        else argv[kept++] = argv[i];
    }
    argv[kept] = nullptr;
    argc = kept;
    if (local && setenv("HAWF_CONF", local_config().c_str(), 1) != 0) throw system_error("cannot set HAWF_CONF", errno);
}

namespace {

std::optional<uid_t> named_user(const std::string& user_flag) {
    if (user_flag.empty()) return std::nullopt;
    struct passwd* pw = getpwnam(user_flag.c_str());
    if (!pw) usage_error("unknown user " + quoted_text(user_flag) + " for --user");
    return pw->pw_uid;
}

}  // namespace

namespace {

// Whose job JOB_ID (as Slurm answered, JOB) is. With hawfd, a reviewer names the
// owner of a job Slurm has forgotten as root would.
uid_t owner_from(const Context& ctx, const std::optional<JobInfo>& job, const std::string& job_id,
                 const std::string& user_flag) {
    const std::optional<uid_t> named = named_user(user_flag);
    const uid_t caller = ctx.config.hawfd_configured() && named ? 0 : getuid();
    return owner_of_job(job, job_id, caller, named);
}

bool may_read_tree(uid_t owner) { return getuid() == 0 || getuid() == owner; }

// Whether OWNER has checkpoint ID, found by its path (O(1) in the tree's size); false
// for a caller who may not read OWNER's tree.
bool has_checkpoint(const Context& ctx, uid_t owner, const CheckpointId& id) {
    if (!may_read_tree(owner)) return false;
    const AsOwner as_owner(owner);
    return ctx.spool.exists(owner, id);
}

// OWNER's checkpoints of array ARRAY_JOB's tasks and of job ARRAY_JOB itself; none
// for a caller who may not read OWNER's tree.
std::optional<std::vector<CheckpointId>> array_ids(const Context& ctx, uid_t owner, const std::string& array_job) {
    if (!may_read_tree(owner)) return std::nullopt;
    const AsOwner as_owner(owner);
    const std::string prefix = array_job + "_";
    return ctx.spool.ids_of_jobs(
        owner, [&](const std::string& job) { return job == array_job || job.rfind(prefix, 0) == 0; });
}

}  // namespace

std::vector<Selected> select(const Context& ctx, const std::vector<std::string>& texts, const std::string& user_flag) {
    std::vector<Selected> selected;
    std::set<std::string> seen;  // each checkpoint once, in the order first named
    const auto add = [&](uid_t owner, const CheckpointId& id) {
        if (seen.insert(id.str()).second) selected.push_back({owner, id});
    };
    for (const std::string& text : texts) {
        const CheckpointSelection selection = parse_checkpoint_selection(text);
        for (const JobSelector& js : selection.jobs) {
            const std::optional<JobInfo> job = ctx.slurm->job(js.job);
            const uid_t owner = owner_from(ctx, job, js.job, user_flag);
            const CheckpointId exact{js.job, selection.name};
            const char* own_job = std::getenv("SLURM_JOB_ID");
            if (!js.tasks.empty()) {
                for (const std::uint32_t task : js.tasks) add(owner, {js.job + "_" + std::to_string(task), selection.name});
            } else if (!js.all_tasks && own_job && js.job == own_job && std::getenv("SLURM_ARRAY_TASK_ID")) {
                // In an array task its own $SLURM_JOB_ID is that task, also where Slurm gave it
                // the array's job id (the last task to start has it).
                add(owner, {job_id_from_env(), selection.name});
            } else if (job && !job->task_id(js.job).empty()) {
                add(owner, {job->task_id(js.job), selection.name});
            } else if (const bool whole_array = js.all_tasks || (job && job->names_array(js.job)); !whole_array && job) {
                add(owner, exact);
            } else if (!whole_array && has_checkpoint(ctx, owner, exact)) {
                // A job Slurm has forgotten with this checkpoint was this job, not an array:
                // no listing of the owner's tree (O(their history)) for hawf show or hawf-decide.
                add(owner, exact);
            } else {
                // A whole array, or a job Slurm has forgotten (which may have been one): its owner's tree says.
                const std::optional<std::vector<CheckpointId>> ids = array_ids(ctx, owner, js.job);
                const std::string all = js.job + "_*:" + selection.name;
                if (!ids && whole_array)
                    throw Error(ErrorKind::Denied, "cannot list the tasks of array " + js.job + " (" + all +
                                                       "): only their owner and root can; name them, e.g. " + js.job +
                                                       "_[1-40]:" + selection.name);
                const std::vector<CheckpointId> tasks = ids ? array_tasks(*ids, js.job, selection.name)
                                                            : std::vector<CheckpointId>{};
                const bool is_job = ids && std::find(ids->begin(), ids->end(), exact) != ids->end();
                if (whole_array && tasks.empty())
                    throw Error(ErrorKind::NotFound, "no checkpoint " + all + ": no task of array " + js.job +
                                                         " has opened " + selection.name + " yet");
                if (is_job || tasks.empty()) add(owner, exact);
                else for (const CheckpointId& id : tasks) add(owner, id);
            }
        }
    }
    return selected;
}

Selected select_one(const Context& ctx, const std::string& text, const std::string& user_flag) {
    std::vector<Selected> selected = select(ctx, {text}, user_flag);
    if (selected.size() != 1)
        usage_error(quoted_text(text) + " names " + std::to_string(selected.size()) + " checkpoints (" +
                    selected.front().id.str() + ", ...): this command takes one");
    return selected.front();
}

std::string job_id_from_env() {
    const char* array_job = std::getenv("SLURM_ARRAY_JOB_ID");
    const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
    const char* job = std::getenv("SLURM_JOB_ID");
    const std::string job_id = array_job && task ? std::string(array_job) + "_" + task : job ? job : "";
    if (!job_id.empty()) check_job_id(job_id);
    return job_id;
}

Selected own_checkpoint(const Context& ctx) {
    const std::string job_id = job_id_from_env();
    if (job_id.empty()) usage_error("no CKPT given, and not in a Slurm job: name the checkpoint (JOBID:NAME)");
    const uid_t me = getuid();
    const std::vector<CheckpointId> ids =
        ctx.spool.ids_of_jobs(me, [&](const std::string& j) { return j == job_id; });
    if (ids.size() != 1)
        usage_error("no CKPT given, and job " + job_id +
                    (ids.empty() ? " has no checkpoint yet" : " has several (" + joined(ids, ", ", [](const CheckpointId& id) { return id.name; }) + ")") +
                    ": name it (" + job_id + ":NAME)");
    return {me, ids.front()};
}

Route route(const Context& ctx, const Selected& selected, const std::string& user_flag) {
    const auto& [owner, id] = selected;
    if (!ctx.config.hawfd_configured()) return {owner, load_checkpoint(ctx, owner, id), false};
    const uid_t caller = getuid();
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
