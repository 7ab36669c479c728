// The part of the plugin in slurmstepd (root, on the compute node): it opens the
// checkpoint when the marked step starts (submitting its --hawf-then follow-up from
// the copy of the script taken at submission) and ends it when the step ends; in a
// follow-up job it delivers the decision. Every spool access happens in a child
// fully dropped to the job's user (run_as_user).
// No callback here ever fails in a way that drains a node: a failure to open is
// kept and raised in task_init, which fails only this job.
#pragma once

#include <optional>
#include <string>

#include "host.hpp"
#include "request.hpp"

namespace hawf::plugin {

class StepSide {
public:
    explicit StepSide(std::string conf_path) : conf_path_(std::move(conf_path)) {}

    void user_init(Host& host, const Request& request);
    int task_init(Host& host);
    void task_exit(Host& host);
    void exit(Host& host);

private:
    void start_followup_job(Host& host, const CheckpointId& after);
    void open(Host& host, const Request& request, const std::string& scope);

    std::string conf_path_;
    std::optional<CheckpointId> opened_;  // set when this stepd must end the checkpoint
    std::optional<std::string> failure_;  // why this job must not run (raised in task_init)
    int exit_status_ = 0;                 // first non-zero task wait status
};

}  // namespace hawf::plugin
