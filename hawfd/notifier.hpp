// How hawfd follows pending checkpoints: it tells people (notices.hpp, through the
// outbox) and takes the default at the deadline of an owner-mode checkpoint,
// whether it has follow-ups or not (first writer wins, as against a human).
//
// hawfd learns of a checkpoint from a nudge (the notify op: the plugin when a step
// ends, hawf-decide and hawf-await after they change one; cheap, never waited on by
// a job) and, in case a nudge was lost (hawfd down), from a rescan every
// notify.rescan of each user's pending index, which looks only at what differs from
// what it watches (a pending checkpoint it does not watch, a watched one no longer
// pending). Nudges go before such background work, one look at a time. A nudge says
// only "look at JOB:NAME of uid U": what is owed is read from the owner's log, as the
// owner (hawfd --as-owner), with the record format's strict checks. What it watches
// is durable (STATE/watch), so a restart looks again at each.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "journal.hpp"
#include "notices.hpp"
#include "outbox.hpp"
#include "service.hpp"

namespace hawf::hawfd {

class Notifier {
public:
    // OUTBOX null: no notify: in the config; deadlines are still kept.
    Notifier(const Service& service, Outbox* outbox);
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // Look at OWNER's checkpoint ID soon (returns at once).
    void nudge(uid_t owner, const CheckpointId& id);

private:
    using Key = std::pair<uid_t, std::string>;  // owner, "JOB:NAME"
    using Time = std::chrono::system_clock::time_point;
    void run();
    void look(uid_t owner, const CheckpointId& id);
    void unwatch(uid_t owner, const CheckpointId& id);
    void tell(const Notice& notice, const Checkpoint& ckpt, std::int64_t now);
    std::vector<std::string> recipients(const Checkpoint& ckpt);
    void rescan();

    const Service& service_;
    Outbox* outbox_;
    Journal watch_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::set<Key> nudged_;
    std::map<Key, Time> timers_;  // watched checkpoints with a reminder or deadline ahead
    bool stopping_ = false;
    // The notifier thread's own: what the watch journal holds, and what to look at
    // when nothing more urgent is due.
    std::set<Key> watched_;
    std::deque<Key> background_;
    std::map<std::string, std::string> mail_users_;  // job -> its --mail-user (notifier thread only)
    std::thread thread_;
};

}  // namespace hawf::hawfd
