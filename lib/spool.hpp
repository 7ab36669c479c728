// The spool: where checkpoints live on the shared filesystem.
//
//   SPOOL/                                     root, 1777 (sticky, like /tmp)
//   SPOOL/<uid>/                               the user's own tree, 0700, owner uid
//   SPOOL/<uid>/ckpt/<jobid>/<name>/log/       events 00000001, 00000002, ... (immutable)
//   SPOOL/<uid>/ckpt/<jobid>/<name>/files/     HAWF_CHECKPOINT_DIR; hawf writes decision.json in it
//   SPOOL/<uid>/ckpt/<jobid>/<name>/delivered/ the decision each follow-up started with
//   SPOOL/<uid>/pending/<jobid>:<name>         index of pending checkpoints (empty files)
//   SPOOL/<uid>/scripts/<token>/<name>         --hawf-then script snapshots (save_script)
//   SPOOL/<uid>/arrays/<job>/<name>/           an array's follow-up arrays (claim_array_followups)
//   SPOOL/<uid>/flows/<name>                   what hawf submit made of a flow (save_flow_file)
//   SPOOL/<uid>/.trash/                        removed checkpoints being deleted
//
// Everything under SPOOL/<uid> must be owned by <uid> and not group/world-writable,
// so only that user (or root acting as them) can have written it. It is private:
// SPOOL/<uid> is 0700 (an older 0755 tree is tightened on its owner's next write) and
// what hawf creates in it is 0700 (directories) or 0600 (records), so only the owner
// and root read a checkpoint's history and files. Only a canonical decimal uid names
// a tree ("01001" or "4294968297" name no one). The pending index
// makes listing a user's pending checkpoints cost O(their pending); it is a hint that
// is always a superset of the truth (added before the pending event and again after
// it, removed after the deciding event) and each entry is checked against the log
// when listed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fsutil.hpp"
#include "record.hpp"

namespace hawf {

// A checkpoint's directory in its owner's tree, relative to SPOOL/<uid>: "ckpt/<jobid>/<name>".
std::string checkpoint_dir(const CheckpointId& id);
// The decision's file in a checkpoint's files/ (Spool::write_decision_view).
inline constexpr char decision_view_name[] = "decision.json";
// The file of event SEQ in a checkpoint's log/: "00000001", "00000002", ...
std::string seq_name(std::uint64_t seq);

class Spool {
public:
    // LIMITS (hawf.yaml's) bound what is read and what may be added: append and load
    // hold a checkpoint's events and an event's size to them; callers hold a tree's
    // checkpoints to limits().max_checkpoints.
    explicit Spool(std::string root, Limits limits = Limits{}) : root_(std::move(root)), limits_(std::move(limits)) {}
    const std::string& root() const { return root_; }
    const Limits& limits() const { return limits_; }

    // Writes EVENT as number event.seq of checkpoint ID of OWNER (the caller must run
    // as OWNER). Creates the checkpoint's directories for the first event.
    // Returns false, changing nothing, if that number is already taken.
    bool append(uid_t owner, const CheckpointId& id, const Event& event) const;

    // Throws Error(NotFound) if OWNER has no checkpoint ID.
    Checkpoint load(uid_t owner, const CheckpointId& id) const;
    // Loads OWNER's checkpoints one after another with SPOOL/<uid>/ckpt opened once for
    // all of them, not once each: what a listing of thousands uses. load(ID) is
    // Spool::load(OWNER, ID) (the caller runs as OWNER). It refers to this Spool and
    // holds one descriptor.
    class Reader {
    public:
        Checkpoint load(const CheckpointId& id);

    private:
        friend class Spool;
        Reader(const Spool& spool, uid_t owner) : spool_(spool), owner_(owner) {}
        const Spool& spool_;
        uid_t owner_;
        Fd ckpt_;
    };
    Reader reader(uid_t owner) const { return Reader(*this, owner); }
    bool exists(uid_t owner, const CheckpointId& id) const;

    // The directory a marked step writes its report into; created by make_files_dir.
    std::string files_dir(uid_t owner, const CheckpointId& id) const;
    void make_files_dir(uid_t owner, const CheckpointId& id) const;
    Fd open_files_dir(uid_t owner, const CheckpointId& id) const;  // empty Fd if missing

    // files/decision.json: the checkpoint's decision as JSON (none: the file is removed),
    // replaced atomically, so a task polls for it without hawf tools (in a container,
    // say). A view of the log, kept by every event that changes the decision.
    void write_decision_view(uid_t owner, const CheckpointId& id, const std::optional<std::string>& json) const;

    // The decision as follow-up JOB received it (HAWF_DECISION_FILE); written once.
    std::string write_delivery(uid_t owner, const CheckpointId& id, const std::string& job,
                               const std::string& json) const;

    // Removes the checkpoint with its log and files (hawf gc), and its job's
    // directory once empty. It disappears at once (renamed into .trash), then is
    // deleted; what an interruption leaves in .trash is for clean.
    void remove(uid_t owner, const CheckpointId& id) const;

    // Finishes what interrupted writers and removals left in OWNER's tree: empties
    // .trash and removes create_file's temp files last modified before STALE_BEFORE
    // (unix seconds) in the checkpoints' log/ and delivered/ and in pending/, and
    // checkpoints without a record (their opener killed) last changed before then;
    // and removes --hawf-then script snapshots taken before SCRIPTS_BEFORE.
    // O(the user's tree), a constant number of descriptors.
    void clean(uid_t owner, std::int64_t stale_before, std::int64_t scripts_before) const;

    void set_pending(uid_t owner, const CheckpointId& id, bool pending) const;
    std::vector<CheckpointId> pending_ids(uid_t owner) const;  // from the index
    std::vector<CheckpointId> all_ids(uid_t owner) const;       // walks the whole tree
    // Those of the jobs whose ids JOB_WANTED accepts (opens only their directories).
    std::vector<CheckpointId> ids_of_jobs(uid_t owner, const std::function<bool(const std::string&)>& job_wanted) const;
    // Users with a tree: entries named by a canonical uid and owned by it. The tree
    // is not checked further: open it to find out (one bad tree throws for its user only).
    std::vector<uid_t> owners() const;

    // A --hawf-then script as it was at submission (as OWNER), like sbatch's copy of
    // a batch script: SPOOL/<uid>/scripts/<token>/<name>, token 32 random hex digits,
    // 0700/0600. NAME must be a valid name. Returns the reference "<token>/<name>".
    std::string save_script(uid_t owner, const std::string& name, const std::string& content) const;
    // save_script of the file PATH as sbatch would read it now (relative to the current
    // directory, following symlinks), named as it is where that is a valid name, at
    // most max_script_bytes. Error(Usage) saying WHAT could not read it, and why.
    std::string snapshot_script(uid_t owner, const std::string& path, const std::string& what) const;
    static constexpr std::size_t max_script_bytes = 4 << 20;  // Slurm's default max_script_size
    // The absolute path of OWNER's snapshot REF, after checking REF strictly and every
    // directory and the file on the way (owned by OWNER, no symlink, a regular file).
    // Throws Error(Usage) for a malformed REF, NotFound, or Untrusted.
    std::string script_path(uid_t owner, const std::string& ref) const;

    // --hawf-then on an array job: one follow-up array for all its tasks, submitted by
    // the first task to open its checkpoint NAME. SPOOL/<uid>/arrays/<array job>/<name>/
    // holds `claim` (the task that submits it: the first claim wins) and `followups`
    // (what it submitted, JSON, written once). As OWNER; removed by clean() with the
    // script snapshots.
    // Claims it for TASK unless a task did; returns the task that holds the claim.
    std::string claim_array_followups(uid_t owner, const std::string& array_job, const std::string& name,
                                      const std::string& task) const;
    // Error(Conflict) if they were published already.
    void publish_array_followups(uid_t owner, const std::string& array_job, const std::string& name,
                                 const std::string& json) const;
    std::optional<std::string> array_followups(uid_t owner, const std::string& array_job,
                                               const std::string& name) const;

    // What hawf submit made of flows (flow.hpp says what each file is):
    // SPOOL/<uid>/flows/NAME, each written once, as OWNER. False if NAME exists already.
    bool save_flow_file(uid_t owner, const std::string& name, const std::string& json) const;
    std::optional<std::string> flow_file(uid_t owner, const std::string& name) const;
    std::vector<std::string> flow_files(uid_t owner) const;

    // Throws unless the spool root is a safe directory; returns its fd.
    Fd open_root() const;

private:
    // CREATE (writing, as OWNER or root) also makes the tree and tightens it to 0700.
    Fd open_user(uid_t owner, bool create) const;
    // SPOOL/<uid>/ckpt, and a checkpoint's directory in it (or CKPT, that directory's fd).
    Fd open_ckpt(uid_t owner, bool create) const;
    Fd open_checkpoint(uid_t owner, const CheckpointId& id, bool create) const;
    Fd open_checkpoint_at(int ckpt, uid_t owner, const CheckpointId& id, bool create) const;
    // SPOOL/<uid>/REL, whose last component is under DIR, checked (or made, with CREATE) as OWNER's.
    Fd open_sub(int dir, const std::string& rel, uid_t owner, bool create) const;
    // SPOOL/<uid>/arrays/<array job>/<name>.
    Fd open_array(uid_t owner, const std::string& array_job, const std::string& name, bool create) const;
    std::string path(uid_t owner, const std::string& rest = "") const;

    std::string root_;
    Limits limits_;
};

struct Config;
// The spool hawf.yaml names, held to its limits.
Spool spool_of(const Config& config);

}  // namespace hawf
