// The part of the plugin loaded in srun, sbatch and salloc, running as the user on
// the submit host: it refuses bad --hawf-* values before anything is queued.
#pragma once

#include <cstddef>
#include <string>

#include "host.hpp"
#include "request.hpp"

namespace hawf::plugin {

// Set by srun in the step's environment when the step itself carries the
// checkpoint (not a step inheriting its batch job's checkpoint).
constexpr const char* step_marker_env = "HAWF_STEP_CHECKPOINT";

// Set in the job's (or step's) environment when it is submitted with --hawf-then:
// the reference ("<token>/<name>", see Spool::save_script) of the copy of the script
// taken then, which is what the follow-up runs.
constexpr const char* then_script_env = "HAWF_THEN_SCRIPT";

// One option as it is parsed: 0, or -1 after one error line (the command exits).
int submit_option(Host& host, Request& request, Opt id, const char* value);

// All options are in: check their combination and the config; copy the --hawf-then
// script into the spool (then_script_env); mark an srun step.
// Does nothing (and reads nothing) when no --hawf-* option was given.
int submit_post_opt(Host& host, const Request& request, const std::string& conf_path);

}  // namespace hawf::plugin
