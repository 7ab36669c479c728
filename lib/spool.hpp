// The spool: where checkpoints live on the shared filesystem.
//
//   SPOOL/                                 root, 1777 (sticky, like /tmp)
//   SPOOL/<uid>/                           the user's own tree, 0755, owner uid
//   SPOOL/<uid>/ckpt/<jobid>/<name>/log/   events 00000001, 00000002, ... (immutable)
//   SPOOL/<uid>/ckpt/<jobid>/<name>/files/ HAWF_CHECKPOINT_DIR
//   SPOOL/<uid>/pending/<jobid>:<name>     index of pending checkpoints (empty files)
//
// Everything under SPOOL/<uid> must be owned by <uid> and not group/world-writable,
// so only that user (or root acting as them) can have written it. The pending index
// makes listing a user's pending checkpoints cost O(their pending); it is a hint that
// is always a superset of the truth (added before the pending event, removed after
// the deciding event) and each entry is checked against the log when listed.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fsutil.hpp"
#include "record.hpp"

namespace hawf {

class Spool {
public:
    explicit Spool(std::string root) : root_(std::move(root)) {}
    const std::string& root() const { return root_; }

    // Writes EVENT as number event.seq of checkpoint ID of OWNER (the caller must run
    // as OWNER). Creates the checkpoint's directories for the first event.
    // Returns false, changing nothing, if that number is already taken.
    bool append(uid_t owner, const CheckpointId& id, const Event& event) const;

    // Throws Error(NotFound) if OWNER has no checkpoint ID.
    Checkpoint load(uid_t owner, const CheckpointId& id) const;
    bool exists(uid_t owner, const CheckpointId& id) const;

    // The directory a marked step writes its report into; created by make_files_dir.
    std::string files_dir(uid_t owner, const CheckpointId& id) const;
    void make_files_dir(uid_t owner, const CheckpointId& id) const;
    Fd open_files_dir(uid_t owner, const CheckpointId& id) const;  // empty Fd if missing

    // The decision as follow-up JOB received it (HAWF_DECISION_FILE); written once.
    std::string write_delivery(uid_t owner, const CheckpointId& id, const std::string& job,
                               const std::string& json) const;

    // Removes the checkpoint with its log and files (hawf gc), and its job's
    // directory once empty.
    void remove(uid_t owner, const CheckpointId& id) const;

    void set_pending(uid_t owner, const CheckpointId& id, bool pending) const;
    std::vector<CheckpointId> pending_ids(uid_t owner) const;  // from the index
    std::vector<CheckpointId> all_ids(uid_t owner) const;       // walks the whole tree
    std::vector<uid_t> owners() const;                          // users with a tree
    std::vector<uid_t> owners_of(const CheckpointId& id) const;

    // Throws unless the spool root is a safe directory; returns its fd.
    Fd open_root() const;

private:
    Fd open_user(uid_t owner, bool create) const;
    Fd open_checkpoint(uid_t owner, const CheckpointId& id, bool create) const;
    std::string path(uid_t owner, const std::string& rest = "") const;

    std::string root_;
};

}  // namespace hawf
