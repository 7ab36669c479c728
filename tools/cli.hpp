// What every hawf command shares: the error-to-exit-status mapping, loading the
// configuration and spool, acting as a checkpoint's owner, and output helpers.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "actions.hpp"
#include "config.hpp"
#include "followups.hpp"
#include "slurm.hpp"
#include "spool.hpp"
#include "views.hpp"

namespace hawf::cli {

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_pending = 75;  // EX_TEMPFAIL: not decided yet

// Runs BODY, turning an escaping Error into one "PROG: message" line on stderr
// and the exit status its kind calls for.
int run(const char* prog, const std::function<int()>& body);

[[noreturn]] void usage_error(const std::string& message);

// --version: prints "PROG VERSION" and exits 0.
[[noreturn]] void print_version(const char* prog);

struct Context {
    Config config;
    Spool spool;
    std::unique_ptr<Slurm> slurm;  // Slurm's commands, or with local_jobs this machine's (slurm_of)
};
Context load_context();

// --local, anywhere in ARGV before "--" (taken out of it): the tools work on this user's runs
// without Slurm (hawf submit --local), through the config local_config() makes, which
// HAWF_CONF then names for this process and what it starts.
void take_local_flag(int& argc, char** argv);

// A checkpoint a command names, and whose it is: the user of its job as Slurm
// knows it (see find_owner; for a job Slurm has forgotten, --user or the caller).
struct Selected {
    uid_t owner = 0;
    CheckpointId id;
};
// The checkpoints TEXTS name, each once (parse_checkpoint_selection, USER_FLAG: --user, "" when
// not given), in the order given: "4242:eval" of a job; of an array job, or
// "4242_*:eval", every task's that its owner's tree holds (listed for the owner or
// root only); of an array task's own job id ("4250:eval"), that task's ("4242_8:eval").
std::vector<Selected> select(const Context& ctx, const std::vector<std::string>& texts, const std::string& user_flag);
// The one checkpoint TEXT names: a usage error if it names several.
Selected select_one(const Context& ctx, const std::string& text, const std::string& user_flag);
// In a job: its checkpoints' job id, "4242" or for an array task "4242_8"
// (SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID, not its own SLURM_JOB_ID); "" outside one.
std::string job_id_from_env();
// hawf-await without CKPT in a job: the one checkpoint of its job (of its array task).
Selected own_checkpoint(const Context& ctx);

// Where a command about a checkpoint is handled: here, for the caller's own
// checkpoint or (root) anyone's in owner mode; through hawfd for someone else's
// checkpoint or a delegated one (reviewers decide, and only hawfd can show a
// reviewer the owner's private tree). Without hawfd configured, always here.
struct Route {
    uid_t owner = 0;
    std::optional<Checkpoint> ckpt;  // loaded here (also when delegated: the owner may look)
    bool via_hawfd = false;
};
Route route(const Context& ctx, const Selected& selected, const std::string& user_flag);

// Sends OP to hawfd (config.hawfd) and returns its answer without "ok"; a refusal
// becomes the Error hawfd names.
nlohmann::json ask_hawfd(const Context& ctx, const nlohmann::json& op);

// The follow-up changes of a hawfd answer, for report().
std::vector<FollowUpChange> changes_from_json(const nlohmann::json& list);

// OWNER's checkpoint ID, for its owner or root (who reads it as the owner: on a
// root-squashed NFS spool only the owner can enter their private tree).
Checkpoint load_checkpoint(const Context& ctx, uid_t owner, const CheckpointId& id);

// Root writes a user's records as that user (effective ids) while this object
// lives, so every record stays owned by its checkpoint's owner, also on NFS with
// root squashed. For anyone else it does nothing.
class AsOwner {
public:
    explicit AsOwner(uid_t owner);
    ~AsOwner();
    AsOwner(const AsOwner&) = delete;
    AsOwner& operator=(const AsOwner&) = delete;

private:
    bool switched_ = false;
};

void print_json(const nlohmann::json& json);

// Prints what happened to the follow-ups (one line each Slurm refused, on stderr);
// returns false if Slurm refused any change.
bool report(const std::vector<FollowUpChange>& changes, bool quiet);

// Single-quoted for a POSIX shell; safe for any bytes.
std::string shell_quote(const std::string& text);

}  // namespace hawf::cli
