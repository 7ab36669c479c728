// Flow files (hawf-flow(5)): one YAML file describing a chain of Slurm jobs, its
// stages, their checkpoints and the branches, joins and bounded loops between them,
// for `hawf submit`. Everything is checked before anything is submitted; every
// mistake is told as FILE:LINE: what is wrong and what is allowed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record.hpp"

namespace hawf {

class Spool;
class Slurm;
struct Actor;

// A stage's checkpoint: what --hawf-checkpoint and its companions would say.
struct FlowCheckpoint {
    std::string name;
    std::vector<std::string> options;  // empty: the site's default options
    std::vector<ParamSpec> params;
    std::int64_t timeout_s = 0;        // 0: none
    std::string default_choice;
    std::vector<std::string> reviewers;
};

// What a stage waits for: another stage's job (ended with exit 0), or a decision
// at another stage's checkpoint with one of ON.
struct FlowAfter {
    std::string stage;
    std::string checkpoint;  // empty: the stage's job ending with exit 0

    std::string str() const { return checkpoint.empty() ? stage : stage + "." + checkpoint; }  // as in the file
};

struct FlowStage {
    std::string name;
    std::size_t line = 0;
    std::string script;              // a batch script, relative to the flow file's directory
    std::string run;                 // or a command line, run by /bin/sh in the job
    std::vector<std::string> sbatch;  // options given to sbatch (--time=1:00:00, ...)
    std::optional<FlowCheckpoint> checkpoint;
    std::vector<FlowAfter> after;    // at most one of them a checkpoint
    std::vector<std::string> on;     // the choices at that checkpoint that start this stage
    // repeat: {max: N, on: [...]}: the stage runs again, as a follow-up of its own
    // checkpoint, while its round's decision is in repeat_on, at most N rounds in all.
    std::uint32_t repeat_max = 0;
    std::vector<std::string> repeat_on;

    const FlowAfter* after_checkpoint() const;
};

struct Flow {
    std::string path;  // the file, as given
    std::string dir;   // its directory: where scripts are found and jobs run
    std::string name;
    std::vector<FlowStage> stages;  // in an order where each comes after what it waits for

    const FlowStage* stage(const std::string& stage_name) const;
    // The stages that wait for stage NAME, directly or through others, in order.
    std::vector<const FlowStage*> downstream(const std::string& stage_name) const;
};

// What hawf submit made of a flow, kept in the owner's tree (Spool::save_flow_file,
// SPOOL/<uid>/flows/):
//   <id>                    the record: the flow's id (the job id of its first stage),
//                           each stage's job and checkpoint, and what a loop needs to
//                           submit a stage again
//   <id>.round.<k>.<stage>  what round k (2, 3, ...) of repeating STAGE submitted when
//                           it started: the next round, the stages after it again
//   job.<job>               {flow, stage, round}: JOB is that round of a loop
// Each written once; a round's file is also what makes submitting it again (a
// requeued round) a no-op.
struct FlowRecord {
    struct Stage {
        std::string name;  // "train"; a loop's later rounds "train@2", with the stages after it
        std::string job;
        std::string checkpoint;          // "4321:eval", "" if none
        std::vector<std::string> after;  // as in the file: "train", "train.eval" ("train@2.eval")
        std::vector<std::string> on;
        // A stage a loop submits again (the repeating stage, those after it): how.
        std::vector<std::string> args;  // sbatch options, hawf's --hawf-* for its checkpoint among them
        std::string script;             // as recorded (absolute)
        std::string snapshot;           // the copy sbatch reads (Spool::save_script's reference)
        std::uint32_t repeat_max = 0;
        std::vector<std::string> repeat_on;

        bool resubmittable() const { return !snapshot.empty(); }
    };
    std::string id, name, file;
    std::int64_t submitted_at = 0;
    std::vector<Stage> stages;  // with every round submitted so far (load_flow_record)

    const Stage* stage(const std::string& stage_name) const;
};
nlohmann::json to_json(const FlowRecord& record);
// Checked as strictly as a flow file: read back from the owner's tree.
FlowRecord flow_record_from_json(const nlohmann::json& j);
// OWNER's flow ID with its rounds so far; nullopt if OWNER has no flow ID.
std::optional<FlowRecord> load_flow_record(const Spool& spool, uid_t owner, const std::string& id);
// The ids of OWNER's flows.
std::vector<std::string> flow_ids(const Spool& spool, uid_t owner);

// Where OWNER's checkpoints sit in their flows: "4321:eval" -> {"flow": "4321", "stage":
// "train"}, from the flow records (O(flows)); a record that fails its checks is skipped.
std::map<std::string, nlohmann::json> flows_of_checkpoints(const Spool& spool, uid_t owner);

// Why OPTION may not be among a stage's sbatch options (hawf sets it for the chain,
// or it would change what a stage is); "" if it may.
std::string refused_sbatch_option(const std::string& option);

// Reads and checks the flow file PATH (a checkpoint without options: has
// DEFAULT_OPTIONS, hawf.yaml's). Every mistake found is in ERRORS (FILE:LINE: ...);
// with none, the flow. A file that is not YAML stops at its first error. Error(Usage)
// if it cannot be read at all.
Flow load_flow(const std::string& path, const std::vector<std::string>& default_options,
               std::vector<std::string>& errors);

// Submits every stage of FLOW to Slurm at once, as OWNER, in order: a stage after a
// checkpoint as its held follow-up (released or cancelled by the decision), the
// others with afterok on the stages they wait for; a repeating stage's first round,
// and its second held for the first round's decision (continue_flow does the rest).
// Each job is named FLOW.STAGE unless the stage names it. Records the flow and returns it; if
// Slurm refuses one, cancels those submitted before and throws.
FlowRecord submit_flow(const Spool& spool, const Slurm& slurm, const Flow& flow, uid_t owner, const Actor& actor);

// Follow-up JOB of OWNER just started with its decision (start_followup). If it is
// round k of a flow's loop, submits round k+1 (below repeat.max) held for this round's
// checkpoint, and the stages after the loop again, for this round: the previous
// round's were cancelled by the decision that started this one. ENV: the
// environment sbatch runs with (the job's own; nullptr: this process's). Nothing for
// another job, or for a round that did this before (requeued). If Slurm refuses one,
// cancels those it submitted and throws.
void continue_flow(const Spool& spool, const Slurm& slurm, uid_t owner, const std::string& job,
                   const std::vector<std::string>* env, const Actor& actor);

}  // namespace hawf
