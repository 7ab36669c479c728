// hawf talks to slurmctld only through Slurm's own commands — sbatch, scontrol,
// scancel, squeue — run directly (fork/exec with an argument vector, never a shell). The
// same code serves the tools and the plugin's dropped child in slurmstepd (where
// linking libslurm would clash with slurmstepd's own copy), authenticates as the
// calling user through munge like any user command, and behaves exactly as the
// commands a user or admin would type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace hawf {

struct CommandResult {
    int status = -1;  // wait status
    std::string out, err;
    bool ok() const;
    std::string message() const;  // the command's own first error line
};

// Runs ARGV (argv[0] looked up in PATH) in CWD ("" = current), with ENV
// ("NAME=value" entries; nullptr = this process's environment). The command gets
// exactly fds 0 (/dev/null), 1 and 2 (pipes): nothing else of this process leaks
// into it. Kills it after TIMEOUT_S seconds. Never throws for a failing command;
// throws Error(System) if it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd = "",
                          const std::vector<std::string>* env = nullptr, int timeout_s = 60);

// A job as slurmctld knows it, from squeue fields no user can put text into (a job
// name or submit line can read "JobState=RUNNING"; a numeric uid cannot).
struct JobInfo {
    uid_t uid = 0;             // the job's user
    std::string state;         // PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, REQUEUE_HOLD, ...
    std::string reason;        // why it waits or ended: JobHeldUser, Dependency, BeginTime, None, ...
    bool held = false;         // pending with priority 0: held by its user or an admin
    std::int64_t eligible = 0;  // its begin time (seconds since the epoch), 0 if none
};

class Slurm {
public:
    // BINDIR: where sbatch/scontrol/scancel are; "" = search PATH.
    explicit Slurm(std::string bindir = "") : bindir_(std::move(bindir)) {}

    // sbatch --parsable ARGS... SCRIPT in CWD with ENV; returns the job id.
    std::string submit(const std::vector<std::string>& args, const std::string& script, const std::string& cwd,
                       const std::vector<std::string>* env = nullptr) const;
    void release(const std::string& job) const;
    void hold(const std::string& job) const;
    void cancel(const std::string& job) const;
    // scontrol update JobId=JOB KEY=VALUE...
    void update(const std::string& job, const std::vector<std::string>& assignments) const;
    // scancel --signal=SIG --full: every step and the batch shell.
    void signal(const std::string& job, const std::string& sig) const;
    // The job as slurmctld knows it, or nullopt if it no longer knows the job ("Invalid
    // job id"). JOB may be an array job ("28": its first task line; all share the user)
    // or one task ("28_1"). Throws Error(System) if slurmctld cannot be asked.
    std::optional<JobInfo> job(const std::string& job) const;

private:
    std::string tool(const char* name) const;
    void run_or_throw(const std::vector<std::string>& argv) const;
    std::string bindir_;
};


}  // namespace hawf
