// hawf talks to slurmctld only through Slurm's own commands — sbatch, scontrol,
// scancel, squeue — run directly (fork/exec with an argument vector, never a shell). The
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

#include <sys/types.h>

namespace hawf {

struct CommandResult {
    int status = -1;  // wait status
    std::string out, err;
    bool ok() const;
    std::string message() const;  // the command's own first error line
};

// What a failed Slurm command's message says, classified once here (Slurm's own
// English texts, stable across 22.05-26.05): the job has ended or is unknown
// (nothing left to hold, cancel or release), slurmctld gave no answer (it may or may
// not have done it: ask again), or a real refusal.
enum class SlurmFailure { JobGone, NoAnswer, Refused };
SlurmFailure classify_failure(const std::string& message);

// Who a command runs as when root starts it for a user (hawfd acting as a
// checkpoint's owner): the child drops fully, supplementary groups, gid, then uid,
// before exec, and cannot regain root.
struct RunAs {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};
// UID's primary group and groups from the user database; Error(NotFound) if UID has no
// passwd entry.
RunAs run_as_user(uid_t uid);

// Runs ARGV (argv[0] looked up in PATH) in CWD ("" = current), with ENV
// ("NAME=value" entries; nullptr = this process's environment). The command gets
// exactly fds 0 (INPUT, or /dev/null when INPUT is nullptr), 1 and 2 (pipes):
// nothing else of this process leaks into it. AS: the identity it runs as (nullptr:
// this process's). Kills it after TIMEOUT_S seconds. Only async-signal-safe calls
// between fork and exec, so threaded callers may use it. Never throws for a failing
// command; throws Error(System) if it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd = "",
                          const std::vector<std::string>* env = nullptr, int timeout_s = 60,
                          const std::string* input = nullptr, const RunAs* as = nullptr);

// A job as slurmctld knows it, from squeue fields no user can put text into (a job
// name or submit line can read "JobState=RUNNING"; a numeric uid cannot).
struct JobInfo {
    uid_t uid = 0;             // the job's user
    std::string state;         // PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, REQUEUE_HOLD, ...
    std::string reason;        // why it waits or ended: JobHeldUser, Dependency, BeginTime, None, ...
    bool held = false;         // pending with priority 0: held by its user or an admin
    std::int64_t eligible = 0;  // its begin time (seconds since the epoch), 0 if none
    // Where it sits in an array: the array's job id and its task ("4242", "8"), or for
    // an array's queued remainder its tasks ("3-40"); both "" for a job of its own.
    std::string array_job, array_task;
    // What site policies match on (hawf.yaml policies:).
    std::string partition;     // "prod"; a pending job submitted to several lists them ("prod,debug")
    std::string qos;           // "" where Slurm has none (no accounting)
    std::string account;       // "" without accounting; free text where associations are not enforced

    // Whether the job may still run (queued, held, running, requeued), not ended.
    bool active() const;
    // JOB as it was asked for (Slurm::job) names a whole array (its array job id).
    bool names_array(const std::string& job) const { return !array_task.empty() && array_job == job; }
    // ...or one task by its own job id ("4250" for "4242_8"): "4242_8", else "".
    std::string task_id(const std::string& job) const {
        return array_task.empty() || array_job == job ? "" : array_job + "_" + array_task;
    }
};

// What hawf-decide --time/--partition/--nodes change of a pending job, as squeue shows
// it, keyed by the name scontrol update takes: TimeLimit, Partition, NumNodes ("2" or
// "1-2"), NumCPUs, NumTasks. Slurm changes NumCPUs and NumTasks along with NumNodes
// (also when it then refuses the node count), so they are kept too.
using JobShape = std::map<std::string, std::string>;

// JOBS as the words of one scontrol release or scancel: the tasks of an array
// together as "4301_[1-5,9]", other jobs as they are, in the order first seen.
std::vector<std::string> job_ranges(const std::vector<std::string>& jobs);

// What hawf asks of the batch system. This class asks Slurm; LocalSlurm
// (local_jobs.hpp) answers the same calls from this machine's processes, for a flow
// run without Slurm (hawf submit --local).
class Slurm {
public:
    // BINDIR: where sbatch/scontrol/scancel are; "" = search PATH.
    explicit Slurm(std::string bindir = "") : bindir_(std::move(bindir)) {}
    virtual ~Slurm() = default;

    // sbatch --parsable ARGS... SCRIPT in CWD with ENV; returns the job id.
    virtual std::string submit(const std::vector<std::string>& args, const std::string& script, const std::string& cwd,
                       const std::vector<std::string>* env = nullptr) const;
    virtual void release(const std::string& job) const;
    virtual void hold(const std::string& job) const;
    virtual void cancel(const std::string& job) const;
    // The same for several jobs in one command, tasks of one array as one range
    // ("4301_[1-5,9]": slurmctld takes the range in one request); JOBS not empty.
    virtual void release(const std::vector<std::string>& jobs) const;
    virtual void hold(const std::vector<std::string>& jobs) const;
    virtual void cancel(const std::vector<std::string>& jobs) const;
    // scontrol requeuehold: a running batch job back to the queue, held (its script is
    // killed). Needs a requeueable job (sbatch --requeue or JobRequeue=1); a user may do
    // it to their own jobs.
    virtual void requeue_hold(const std::string& job) const;
    // scontrol requeue: the same, not held; Slurm starts it again no sooner than its
    // credential lifetime later (AuthInfo cred_expire, 120 s by default).
    virtual void requeue(const std::string& job) const;
    // scontrol update JobId=JOB KEY=VALUE...
    virtual void update(const std::string& job, const std::vector<std::string>& assignments) const;
    // scancel --signal=SIG --full: every step and the batch shell with its children;
    // for SIG@batch (check_signal) --batch: the batch shell alone.
    virtual void signal(const std::string& job, const std::string& sig) const;
    // The job as slurmctld knows it, or nullopt if it no longer knows the job ("Invalid
    // job id"). JOB may be an array job ("28": its first task line; all share the user)
    // or one task ("28_1"). Throws Error(System) if slurmctld cannot be asked.
    virtual std::optional<JobInfo> job(const std::string& job) const;
    // The job's --mail-user, "" if it has none or Slurm forgot the job. scontrol shows
    // it only for a job with a --mail-type, on a line of its own after the user's
    // SubmitLine: only a line that starts with it counts, and the last one. The value
    // is the job user's own text: check it before use.
    virtual std::string mail_user(const std::string& job) const;
    // The tasks of array job ARRAY_JOB that Slurm knows (queued, running, or ended
    // within MinJobAge), sorted; none if it knows none. Throws Error(System) if
    // slurmctld cannot be asked.
    virtual std::vector<std::uint32_t> array_task_ids(const std::string& array_job) const;
    // The job's shape, or nullopt if it has ended or Slurm forgot it. Throws
    // Error(System) if slurmctld cannot be asked.
    virtual std::optional<JobShape> shape(const std::string& job) const;

private:
    std::string tool(const char* name) const;
    void run_or_throw(const std::vector<std::string>& argv) const;
    // squeue's line for JOB in FORMAT (--Format), "" if it lists none; nullopt if
    // Slurm no longer knows JOB. Throws Error(System) if slurmctld cannot be asked.
    std::optional<std::string> squeue_line(const std::string& job, const std::string& format) const;
    // Every line of it (EXTRA: more squeue options).
    std::optional<std::vector<std::string>> squeue_lines(const std::string& job, const std::string& format,
                                                         const std::vector<std::string>& extra = {}) const;
    std::string bindir_;
};


}  // namespace hawf
