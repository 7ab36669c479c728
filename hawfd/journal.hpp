// The checkpoints hawfd owes work: a quorum to record, follow-ups to release or
// cancel (STATE/finalize); and the pending checkpoints it watches for notices and
// deadlines (STATE/watch, the same kind of entries). An entry is made durable before that work starts and removed once Slurm
// has done all of it, so hawfd killed at any instant, or a slurmctld that is down,
// loses nothing: hawfd retries every entry at start and periodically. Each step is
// idempotent (the spool's exclusive events, sync_followups), so a retry never
// doubles a decision or a release.
//   STATE/finalize/<uid>:<jobid>:<name>   empty files, root's, 0600
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "fsutil.hpp"
#include "validate.hpp"

namespace hawf::hawfd {

class Journal {
public:
    // STATE is hawfd.state (root's, checked at start); NAME (finalize, watch) is created in it.
    explicit Journal(const std::string& state, const std::string& name = "finalize");

    void add(uid_t owner, const CheckpointId& id) const;     // durable when it returns
    void remove(uid_t owner, const CheckpointId& id) const;
    std::vector<std::pair<uid_t, CheckpointId>> entries() const;

private:
    std::string path_;
    Fd dir_;
};

}  // namespace hawf::hawfd
