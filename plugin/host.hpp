// The seam between the plugin's logic and Slurm: everything the logic needs from
// SPANK, as an interface. hawf_spank.cpp implements it over spank.h; the unit
// tests implement it with GoogleMock. No Slurm header is included here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hawf::plugin {

enum class Where {
    Submit,    // srun, sbatch, salloc on the login node, as the user
    Stepd,     // slurmstepd on a compute node, as root
    Elsewhere  // slurmd, job script context: hawf does nothing there
};
enum class Client { Srun, Sbatch, Salloc, None };

// Slurm's step id of the batch script (SLURM_BATCH_SCRIPT in slurm.h).
constexpr std::uint32_t batch_step_id = 0xfffffffb;

struct StepIds {
    std::uint32_t job_id = 0;
    std::uint32_t step_id = 0;
    std::uint32_t array_job_id = 0;  // 0 unless an array task
    std::uint32_t array_task_id = 0;
};

struct JobUser {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

class Host {
public:
    virtual ~Host() = default;
    virtual Where where() const = 0;
    virtual Client client() const = 0;
    virtual StepIds step() const = 0;             // Stepd only
    virtual std::uint32_t node_id() const = 0;    // Stepd only: 0 on the step's first node
    virtual std::uint32_t node_count() const = 0; // Stepd only: nodes of the job
    virtual JobUser user() const = 0;             // Stepd only
    virtual int task_exit_status() const = 0;     // in task_exit only: the wait status
    virtual std::vector<std::string> job_env() const = 0;  // Stepd only: "NAME=value" entries
    // The job's environment in slurmstepd, the process environment in srun/sbatch.
    virtual std::optional<std::string> getenv(const std::string& name) const = 0;
    virtual void setenv(const std::string& name, const std::string& value) = 0;
    virtual void error(const std::string& line) = 0;  // shown to the user
    // Stepd only: the OCI runtime configuration (config.json) of a step that runs in
    // Slurm's native container (srun --container) where Slurm wrote it before the
    // SPANK callbacks (22.05: in slurmstepd's working directory), so hawf must add its
    // variables and binds there; none otherwise (newer releases pass the step's
    // environment themselves and write the file later: hawf-oci-run binds there).
    virtual std::optional<std::string> oci_config() const = 0;
    // The Slurm release the plugin was built for, and so runs in (Slurm loads a plugin
    // only into its own major.minor): SLURM_VERSION_NUMBER, e.g. 0x160508 for 22.05.8.
    virtual std::uint32_t slurm_version() const = 0;
};

}  // namespace hawf::plugin
