// Flows without Slurm (hawf submit --local, hawf.yaml's local_jobs): a job is a
// process of its user on this machine. LocalSlurm answers the calls hawf makes of
// Slurm (submit, release, hold, cancel, StartTime, job) from files in a directory of
// the user's, and starts a job, once nothing holds it back, as a detached
// hawf-local-job, which does what slurmstepd and the plugin do in a cluster. There is
// no daemon: whatever frees a job starts it (a decision releasing it, the end of the
// job it waited for), and nothing runs while a checkpoint waits, except, for a
// checkpoint with a timeout, one sleeping process that starts its follow-ups at the
// deadline.
//
// DIR/<id>/ (0700): job.json (written once: what sbatch was given), script (the copy
// taken at submission), and one file per change: hold (while held), begin (its
// StartTime), started (the claim that starts it, once), pid, ended (its wait status),
// cancelled.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slurm.hpp"

namespace hawf {

struct Config;

// What a local job was submitted with (job.json).
struct LocalJob {
    std::string id, name, cwd;
    std::vector<std::string> env;    // "NAME=value": the submitter's environment
    std::vector<std::string> hawf;   // its --hawf-* options, for hawf-local-job
    std::vector<std::string> after;  // jobs it waits for to end with exit 0 (afterok)
    bool kill_on_invalid_dep = false;
    std::int64_t time_limit_s = 0;   // 0: none
    std::string output, error;       // as given (%j: the job id); "" = slurm-%j.out in cwd
};

class LocalSlurm : public Slurm {
public:
    // DIR: where the jobs are kept (created 0700); RUNNER: hawf-local-job, which is
    // started with --conf=CONF.
    LocalSlurm(std::string dir, std::string runner, std::string conf);

    // Honours --hold, --dependency=afterok:..., --kill-on-invalid-dep, --job-name,
    // --time, --output, --error, --chdir and the --hawf-* options, on the command line
    // or in the script's #SBATCH lines; ignores the others (local_sbatch_note).
    std::string submit(const std::vector<std::string>& args, const std::string& script, const std::string& cwd,
                       const std::vector<std::string>* env = nullptr) const override;
    void release(const std::string& job) const override;
    void hold(const std::string& job) const override;
    void cancel(const std::string& job) const override;
    void release(const std::vector<std::string>& jobs) const override;
    void hold(const std::vector<std::string>& jobs) const override;
    void cancel(const std::vector<std::string>& jobs) const override;
    // Error(Usage): a local job is not requeued.
    void requeue_hold(const std::string& job) const override;
    void requeue(const std::string& job) const override;
    // StartTime=now or a local time; Error(Usage) for anything else.
    void update(const std::string& job, const std::vector<std::string>& assignments) const override;
    void signal(const std::string& job, const std::string& sig) const override;
    std::optional<JobInfo> job(const std::string& job) const override;
    std::string mail_user(const std::string& job) const override;
    std::vector<std::uint32_t> array_task_ids(const std::string& array_job) const override;
    std::optional<JobShape> shape(const std::string& job) const override;

    // For hawf-local-job: what JOB was submitted with, and the path of its script.
    LocalJob load(const std::string& job) const;
    std::string script_path(const std::string& job) const;
    // JOB now runs as process group PGID; false if it was cancelled first.
    bool mark_running(const std::string& job, pid_t pgid) const;
    // JOB ended with wait STATUS: starts what waited for it, or cancels what now never
    // can (--kill-on-invalid-dep).
    void finished(const std::string& job, int status) const;
    // Starts JOB (a detached hawf-local-job) unless it is held, waits for its
    // StartTime or for jobs still to end, or was started or ended already.
    void start_if_free(const std::string& job) const;

private:
    std::string dir_, runner_, conf_;
};

// The jobs' interface CONFIG asks for: Slurm's, or with local_jobs this machine's.
std::unique_ptr<Slurm> slurm_of(const Config& config);

// An sbatch option a local run does not honour: one line saying so; "" if it does.
std::string local_sbatch_note(const std::string& option);

// Where hawf keeps a user's local runs: $XDG_STATE_HOME/hawf/local (or
// ~/.local/state/hawf/local), with hawf.yaml (spool and local_jobs there), written
// with the directories (0700) if missing. Returns the config's path.
std::string local_config();

}  // namespace hawf
