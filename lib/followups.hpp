// Keeps the follow-up jobs waiting in Slurm in line with their checkpoint. The
// spool holds the truth (the decision, the follow-ups' job ids and choices); these
// functions only tell slurmctld, and may safely run again.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "actions.hpp"
#include "record.hpp"
#include "slurm.hpp"

namespace hawf {

enum class FollowUpAction { Released, Cancelled, Held, Eligible, AlreadyEnded };
struct FollowUpChange {
    std::string job;
    FollowUpAction action = FollowUpAction::Released;
    std::string at;       // Eligible: the begin time set, local time as Slurm takes it
    std::string error;    // what Slurm refused, or why it is not known whether it was done; "" if done
    bool unsure = false;  // Slurm did not answer: the change may or may not have been made (error says so)

    // "released", "cancelled", "held", "eligible at <at>", "already ended": for people.
    std::string action_text() const;
};
// The action's name in JSON ("eligible": its time is "at") and back; Error(Untrusted)
// for another name.
std::string to_string(FollowUpAction action);
FollowUpAction parse_followup_action(const std::string& name);

// A Slurm command that fails need not have failed: slurmctld carries out a request
// that timed out (it was busy or paused) when it gets to it, and a reply can be lost.
// So after a failure hawf asks Slurm (squeue) what became of the job, and while
// Slurm does not answer it keeps asking, and repeats the (idempotent) command, with
// growing pauses from FIRST up to TOTAL in all.
struct Patience {
    std::chrono::milliseconds total{30000};
    std::chrono::milliseconds first{500};
};

// For a decided (or applied) checkpoint: releases, with begin time now, the
// follow-ups the choice is for and cancels the others. For a pending one (after a
// revoke): holds them again, or with a deadline moves their begin time back to it.
// For a failed one: cancels them all (an srun step can fail in a job that succeeds).
// SKIP names a follow-up to leave alone (the one that is starting).
std::vector<FollowUpChange> sync_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& skip = "",
                                           const Patience& patience = {});
// The same for several checkpoints (a bulk decision) at once: plain releases and
// cancels of their follow-ups go to Slurm in one command each, a follow-up array's
// tasks as one range ("scontrol release 4301_[1-1000]": one request to slurmctld).
std::vector<FollowUpChange> sync_followups(const Slurm& slurm, const std::vector<Checkpoint>& ckpts,
                                           const Patience& patience = {});

// A checkpoint with a timeout just became pending: its follow-ups become eligible at
// the deadline, so the first to start takes the default unless someone decides.
// ONLY: just that follow-up (one registered late), "" for all. Not for a delegated
// checkpoint: hawfd takes its default (sealed) and releases its follow-ups.
std::vector<FollowUpChange> schedule_deadline(const Slurm& slurm, const Checkpoint& ckpt, const std::string& only = "",
                                              const Patience& patience = {});

// hawf-decide --time/--partition/--nodes: applies ASSIGNMENTS ("TimeLimit=1:00:00")
// to the follow-ups CHOICE would release (those still queued), before anything is
// released, and returns what changed, one line per follow-up ("follow-up 43 reshaped:
// TimeLimit UNLIMITED -> 5:00"). All or nothing: Slurm may apply part of what it
// refuses (NumNodes=5 in a 2-node partition sets NumNodes, NumCPUs and NumTasks, then
// refuses), so when it refuses any part for any follow-up, every follow-up changed
// gets its fields back as squeue showed them before, and it throws Error(System)
// naming the job, what Slurm refused, and that all is as it was (or what a follow-up
// is left with, if Slurm refuses to put it back).
std::vector<std::string> reshape_followups(const Slurm& slurm, const Checkpoint& ckpt, const std::string& choice,
                                           const std::vector<std::string>& assignments);

// A decision in owner mode, as hawf-decide asks for it.
struct DecideRequest {
    std::optional<Decision> decision;     // none: revoke the decision in force
    DecideMode mode = DecideMode::Decide;  // or amend it
    std::vector<std::string> reshape;     // "TimeLimit=1:00:00": first, to what the choice releases
};
// decide_and_sync in halves, for a bulk decision that tells Slurm once for all
// (sync_followups of several checkpoints between them): records REQUEST...
Checkpoint record_decision(const Spool& spool, uid_t owner, const CheckpointId& id, const DecideRequest& request,
                           const Actor& actor, const Limits& limits);
// ...and signals CKPT's job if it is running and asked for that (--hawf-signal);
// returns the signal sent, "" if none.
std::string signal_decided(const Slurm& slurm, const Checkpoint& ckpt, const DecideRequest& request);
// What deciding did: the checkpoint then, what Slurm did to its follow-ups, and the
// signal sent to its still running job (--hawf-signal; "" if none).
struct DecideOutcome {
    Checkpoint ckpt;
    std::vector<FollowUpChange> changes;
    std::string signalled;
};
// Before deciding REQUEST at BEFORE (as loaded) as ACTOR: refuses an ACTOR who may not
// decide, and with a reshape what decide() would refuse; then reshapes the follow-ups
// the choice releases (reshape_followups: all or nothing) and returns what it changed.
// Runs as the caller (root's scontrol may do more than the owner's).
std::vector<std::string> prepare_decision(const Slurm& slurm, const Checkpoint& before, const DecideRequest& request,
                                          uid_t actor, const Limits& limits);
// Records REQUEST at OWNER's checkpoint ID, releases or cancels (holds again, after a
// revoke) its follow-ups, and signals its job if it is running and asked for that.
// Runs as the owner (the spool's files are theirs).
DecideOutcome decide_and_sync(const Spool& spool, const Slurm& slurm, uid_t owner, const CheckpointId& id,
                              const DecideRequest& request, const Actor& actor, const Limits& limits);

// HAWF_AFTER, HAWF_AFTER_DIR (what the checkpoint's step left), HAWF_DECISION,
// HAWF_DECIDED_BY, HAWF_COMMENT, HAWF_PARAM_<KEY> and, if DECISION_FILE is given,
// HAWF_DECISION_FILE, for a decided checkpoint.
Environment decision_environment(const Checkpoint& ckpt, const std::string& files_dir,
                                 const std::string& decision_file = "");

// Follow-up JOB of checkpoint ID is starting (in its job, as its user). Past the
// deadline with no decision, records the default (and releases or cancels the other
// follow-ups accordingly). Marks the decision applied, writes the decision file,
// and returns the environment; throws Error(Conflict) with the reason if this job
// must not run: decided for a choice this follow-up is not for, the checkpoint
// failed, or not decided yet (then it first goes back to held: back_to_held).
// A delegated checkpoint's decision must be hawfd's and verify (munged at
// MUNGE_SOCKET, "" = default): Error(Untrusted) otherwise, before anything is written.
// With REQUIRE_SEALED_SPEC (hawfd is configured) the checkpoint's spec must carry
// root's seal and verify (verify_spec), in owner mode too, also before anything is
// written: an owner could otherwise rewrite a delegated spec into an owner-mode one.
Environment start_followup(const Spool& spool, const Slurm& slurm, uid_t owner, const CheckpointId& id,
                           const std::string& job, std::int64_t now, const std::string& munge_socket = "",
                           bool require_sealed_spec = false);

// Follow-up JOB of checkpoint ID started but must wait (its user released it by hand
// before the decision; WHY says what): puts it back in the queue, held, for the
// decision to release as before (scontrol requeuehold, as the job's user; its script
// is killed), and throws Error(Conflict) saying it went back to held waiting for ID,
// or why it could not. UNTIL_THE_DEADLINE (ID's deadline is under a minute away): not
// held but requeued (scontrol requeue), to start again after it and take the default.
[[noreturn]] void back_to_held(const Slurm& slurm, const std::string& job, const CheckpointId& id,
                               const std::string& why, bool until_the_deadline = false);

// Submits a follow-up of checkpoint ID of OWNER, the one rule for both hawf-await
// --then and the plugin's --hawf-then: `sbatch --hold --dependency=afterok:JOB
// --kill-on-invalid-dep=yes --requeue --hawf-after=ID --comment="hawf: waiting for ID" EXTRA...
// SCRIPT` (READ: the file sbatch reads; SCRIPT is what the record names), in CWD with
// ENV (null: the caller's), and
// registers it for the choices ON. If the checkpoint refuses it (decided meanwhile),
// the job is cancelled, since nothing would ever release it, and the error says so.
// Returns the checkpoint with it; JOB receives its id.
struct FollowUpSubmission {
    std::string script;                // as recorded (absolute)
    std::string read;                  // what sbatch reads (the snapshot), "" = script
    std::vector<std::string> on;       // choices that release it; empty: the first option
    std::string cwd;
    const std::vector<std::string>* env = nullptr;
    std::vector<std::string> extra;    // further sbatch options
    std::vector<std::string> also_after;  // further jobs it waits for to end with exit 0 (a flow's join)
};
Checkpoint submit_followup(const Spool& spool, const Slurm& slurm, const CheckpointId& id, uid_t owner,
                           const FollowUpSubmission& what, const Actor& actor, std::string* job = nullptr);

// --hawf-then on an array job, for its task whose checkpoint CKPT ("4242_7:eval") just
// opened: the array's tasks share one follow-up array per script in WHAT, whose task T
// waits for 4242_T:eval (`--array=<the array's tasks> --dependency=aftercorr:4242
// --hawf-after=4242_*:eval`, otherwise as submit_followup). The first task to get here
// submits them (Spool::claim_array_followups) and publishes their ids; every task
// registers its own task of each ("4301_7"), waiting up to WAIT for them to be
// published. Returns the checkpoint with them.
Checkpoint submit_array_followups(const Spool& spool, const Slurm& slurm, const Checkpoint& ckpt,
                                  const std::vector<FollowUpSubmission>& what, const Actor& actor,
                                  std::chrono::milliseconds wait = std::chrono::seconds(60));

// SEEN (as the caller loaded it) past its deadline with no decision: records its
// default (as the calling user, by "timeout") and releases or cancels its follow-ups
// accordingly, leaving SKIP alone (the one that is starting). First writer wins: a
// decision made meanwhile stays. Nothing for a delegated checkpoint (hawfd takes its
// default, sealed). Returns the checkpoint as it is then (SEEN when no default was
// due); CHANGES receives what Slurm did.
Checkpoint take_default_and_sync(const Spool& spool, const Slurm& slurm, const Checkpoint& seen, std::int64_t now,
                                 const std::string& skip = "",
                                 std::vector<FollowUpChange>* changes = nullptr);

// "released 43, cancelled 44" for people; "" when there were no follow-ups.
std::string describe(const std::vector<FollowUpChange>& changes);

}  // namespace hawf
