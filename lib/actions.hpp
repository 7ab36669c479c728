// The state changes of a checkpoint, shared by the plugin and the tools. Each one
// reads the log, checks the transition, and appends one event with the next
// number; link(2) makes that number exclusive, so of two racing writers exactly
// one wins and the other re-reads and gets a clear Conflict.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "record.hpp"
#include "review.hpp"
#include "slurm.hpp"
#include "spool.hpp"

namespace hawf {

// Who causes an event, and through what.
struct Actor {
    std::string user;
    uid_t uid = 0;
    Via via = Via::Cli;
    std::string host;
};
// The calling process's real user, via VIA.
Actor current_actor(Via via);

// Opens a checkpoint in state running and creates its files dir. Opening it again
// with the same spec is a no-op while it runs (another node of the step) and
// reopens it when it failed (a requeued job); anything else conflicts. A spec past
// the spool's limits is refused.
Checkpoint open_checkpoint(const Spool& spool, const CheckpointSpec& spec, const Actor& actor);

// Refuses (Error Denied) a new checkpoint of OWNER past the spool's max_checkpoints.
// It walks the owner's tree: called once, where a checkpoint is asked for (sbatch/srun,
// hawf-await --open), not again in slurmstepd when the job opens it.
void check_room_for_checkpoint(const Spool& spool, uid_t owner);

// Node NODE of a step on NODE_COUNT nodes ended with WAIT_STATUS (its first non-zero
// task status). When every node has ended, the checkpoint becomes pending if all
// exited 0, failed otherwise; whichever node sees that writes it.
Checkpoint end_checkpoint(const Spool& spool, uid_t owner, const CheckpointId& id, int wait_status,
                          const Actor& actor, std::uint32_t node = 0, std::uint32_t node_count = 1);

enum class DecideMode { Decide, Amend };
// What decide() refuses of DECISION at checkpoint C by ACTOR (who may, what, when),
// for a caller that must refuse before it changes anything else.
void check_decidable(const Checkpoint& c, const Decision& decision, DecideMode mode, uid_t actor,
                     const Limits& limits);
Checkpoint decide(const Spool& spool, uid_t owner, const CheckpointId& id, const Decision& decision,
                  DecideMode mode, const Actor& actor, const Limits& limits);
Checkpoint revoke(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor);

// Registers a follow-up job; allowed until the checkpoint is decided, also before
// its job has opened it. Adding the same job again changes nothing.
Checkpoint add_followup(const Spool& spool, const FollowUp& followup, const Actor& actor);

// If the checkpoint is pending and its deadline has passed at NOW, records its
// default choice (decided_by "timeout"). Racing a human, the first writer wins;
// either way the checkpoint returned holds exactly one decision. A delegated
// checkpoint's default is hawfd's to take: only with SEAL, hawfd's credential over
// default_seal_payload (review.hpp), else Error(Conflict).
Checkpoint take_default(const Spool& spool, uid_t owner, const CheckpointId& id, std::int64_t now,
                        const Actor& actor, const std::string& seal = "");
// The decision take_default records for CKPT: its default, with the reason.
Decision default_decision(const CheckpointSpec& spec);

// The follow-up JOB started with the decision: it can no longer be amended or revoked.
// Throws Error(Conflict), writing nothing, if no decision is in force (revoked) or
// JOB is a registered follow-up that the decision in force does not release.
Checkpoint mark_applied(const Spool& spool, uid_t owner, const CheckpointId& id, const std::string& job,
                        const Actor& actor);

// Whose checkpoint ID is, for a caller with uid CALLER: the user of its job as Slurm
// knows it, never whoever has a directory of that name in the spool. For a job Slurm
// has forgotten: NAMED (--user) if given, else the caller; root must name the owner.
// A NAMED owner that contradicts Slurm, or names someone else for a non-root
// caller, is refused.
uid_t find_owner(const Slurm& slurm, const CheckpointId& id, uid_t caller, std::optional<uid_t> named = {});
// The same for JOB_ID as Slurm answered about it (JOB; none: Slurm has forgotten it).
uid_t owner_of_job(const std::optional<JobInfo>& job, const std::string& job_id, uid_t caller,
                   std::optional<uid_t> named = {});

// Delegated mode, as hawfd does it once it has checked the reviewer (check_may_approve)
// and their request's credential, which the event keeps. Each refuses (Conflict)
// unless the checkpoint is pending and delegated.
// ACTOR's approval of DECISION (checked against the spec), replacing theirs if any.
Checkpoint approve(const Spool& spool, uid_t owner, const CheckpointId& id, const Decision& decision,
                   const Actor& actor, const std::string& credential, const Limits& limits);
// Withdraws ACTOR's approval; Conflict if they have none in force.
Checkpoint withdraw(const Spool& spool, uid_t owner, const CheckpointId& id, const Actor& actor,
                    const std::string& credential);
// Records QUORUM as the decision (a Decided event via hawfd carrying SEAL, hawfd's
// credential over decision_seal_payload). Conflict unless the approvals QUORUM names
// are all still in force and by themselves reach exactly QUORUM (one was withdrawn
// meanwhile). Which approvals count is hawfd's to say: it leaves out those whose
// credentials do not verify (an owner can write any event into their own tree). If that decision is
// already in force (a retry after a crash), returns the checkpoint unchanged.
Checkpoint record_quorum(const Spool& spool, uid_t owner, const CheckpointId& id, const Quorum& quorum,
                         const std::string& seal, const Actor& actor);

// Owner mode: only the owner and root may change a checkpoint; a delegated one is
// refused to everyone here (Denied: its reviewers decide through hawfd)...
void check_may_decide(const CheckpointSpec& spec, uid_t caller);
// ...or see it: what a job left and its history are private.
void check_may_read(const CheckpointId& id, uid_t owner, uid_t caller);

// "alice" for a uid, or the number if it has no name.
std::string user_name(uid_t uid);

}  // namespace hawf
