// The part of the plugin in slurmstepd (root, on the compute node): it opens the
// checkpoint when the marked step starts (submitting its --hawf-then follow-up from
// the copy of the script taken at submission) and ends it when the step ends; in a
// follow-up job it delivers the decision. It does the work by asking
// hawf-step-helper (step_helper.hpp), which run_as_user runs fully dropped to the
// job's user; here only the requests are made and the answers read.
// No callback here ever fails in a way that drains a node, and none lets a job that
// asked for hawf run without it: every failure (opening, delivery, an answer the
// child did not finish) is kept and raised in task_init, which fails only this job
// with one "hawf:" line.
#pragma once

#include <optional>
#include <string>

#include "host.hpp"
#include "request.hpp"
#include "run_as_user.hpp"

namespace hawf::plugin {

class StepSide {
public:
    // RUNNER runs the helper as the job's user (helper_runner; unit tests may pass a stand-in).
    StepSide(std::string conf_path, Runner runner)
        : conf_path_(std::move(conf_path)), runner_(std::move(runner)) {}

    // Never throw: what fails is kept for task_init.
    void user_init(Host& host, const Request& request) noexcept;
    int task_init(Host& host);
    void task_exit(Host& host);
    void exit(Host& host);

private:
    void start_followup_job(Host& host, const FollowUpOf& after);
    void open(Host& host, const Request& request, Scope scope);
    // Sets ENV in the job's environment and keeps it for reach_containers.
    void export_vars(Host& host, const Environment& env);
    void reach_containers(Host& host);

    std::string conf_path_;
    Runner runner_;
    std::optional<CheckpointId> opened_;  // set when this stepd must end the checkpoint
    std::optional<std::string> failure_;  // why this job must not run (raised in task_init)
    Environment exported_;                // the HAWF_* variables this step's tasks get
    int exit_status_ = 0;                 // first non-zero task wait status
};

}  // namespace hawf::plugin
