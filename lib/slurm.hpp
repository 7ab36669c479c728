// hawf talks to slurmctld only through Slurm's own commands — sbatch, scontrol,
// scancel — run directly (fork/exec with an argument vector, never a shell). The
// same code serves the tools and the plugin's dropped child in slurmstepd (where
// linking libslurm would clash with slurmstepd's own copy), authenticates as the
// calling user through munge like any user command, and behaves exactly as the
// commands a user or admin would type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hawf {

struct CommandResult {
    int status = -1;  // wait status
    std::string out, err;
    bool ok() const;
    std::string message() const;  // the command's own first error line
};

// Runs ARGV (argv[0] looked up in PATH) in CWD ("" = current), with ENV
// ("NAME=value" entries; nullptr = this process's environment). Kills it after
// TIMEOUT_S seconds. Never throws for a failing command; throws Error(System) if
// it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd = "",
                          const std::vector<std::string>* env = nullptr, int timeout_s = 60);

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
    // scontrol show job -o: its fields, or nullopt if Slurm no longer knows the job.
    std::optional<std::map<std::string, std::string>> show(const std::string& job) const;

private:
    std::string tool(const char* name) const;
    void run_or_throw(const std::vector<std::string>& argv) const;
    std::string bindir_;
};


}  // namespace hawf
