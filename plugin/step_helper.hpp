// hawf-step-helper: the work slurmstepd asks of hawf, in a process of its own.
// slurmstepd forks, drops the child to the job's user (or, for `seal` only, makes it
// root again), and execs the helper: no library code runs between fork and exec in
// slurmstepd, which has threads (see run_as_user.hpp). The helper reads one JSON
// request on stdin and writes one typed answer on stdout (encode_answer).
//
//   seal     (root) the checkpoint's spec from the job's options, the config and the
//            site policies, sealed with root's munge credential: hawfd configured
//   open     (user) open the checkpoint (the sealed spec, or one made from the
//            options) and submit its --hawf-then follow-up: {"dir", "error"?}
//   deliver  (user) a follow-up's decision: the environment to export
//   end      (user) end the checkpoint with the step's status, sync its follow-ups
//   oci      (user) add the step's variables and binds to its native container's config.json
#pragma once

#include <string>

namespace hawf::plugin {

// Runs VERB on REQUEST (JSON) here, as whoever runs it, and returns its answer;
// throws Error. The helper's main calls it; unit tests call it in-process.
std::string run_step_verb(const std::string& verb, const std::string& request);

}  // namespace hawf::plugin
