// Tasks in containers: what makes a checkpoint's directory and a follow-up's decision
// reach a task that runs in Slurm's native OCI container (srun --container), under
// Apptainer/Singularity or under pyxis/enroot, at the paths its HAWF_* variables
// name. Each runtime gets the same two things, in its own terms: the variables, and
// bind mounts of the paths they name (the same path inside as outside).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record.hpp"

namespace hawf {

// A host path a task's variables name, mounted at the same path in its container.
struct Bind {
    std::string path;
    bool writable = false;  // the checkpoint's directory, where the step leaves its report
};

// The binds ENV (a task's HAWF_* variables) calls for: HAWF_CHECKPOINT_DIR
// (writable), HAWF_AFTER_DIR and HAWF_DECISION_FILE (read-only). Only absolute
// paths; each once.
std::vector<Bind> container_binds(const Environment& env);

// Apptainer/Singularity: APPTAINERENV_X and SINGULARITYENV_X for each HAWF_X of ENV
// (they pass even with --cleanenv), and APPTAINER_BINDPATH / SINGULARITY_BINDPATH
// with BINDS added to the value CURRENT gives (the job's own, kept first).
Environment apptainer_environment(const Environment& env, const std::vector<Bind>& binds,
                                  const std::function<std::optional<std::string>(const std::string&)>& current);

// An OCI runtime configuration (a bundle's config.json) with ENV set in
// process.env (replacing a variable of the same name) and BINDS mounted, unless a
// mount already has that destination. Error(Usage) for one that is not an object
// or whose process.env or mounts are not lists.
nlohmann::json amend_oci_config(nlohmann::json config, const Environment& env, const std::vector<Bind>& binds);

// The bundle configuration file PATH (a config.json that WRITER owns) with ENV set in
// its process.env and then the binds its process.env calls for (container_binds),
// replaced atomically if that changes it: what the plugin does where Slurm wrote the
// file before the SPANK callbacks, and hawf-oci-run where Slurm writes it after.
// Returns false, writing nothing, if there is no such file.
bool amend_oci_config_file(const std::string& path, uid_t writer, const Environment& env);

}  // namespace hawf
