// What hawfd's ops work with: its configuration, Slurm (as root: a Slurm operator),
// the owners' trees (only through OwnerAccess) and the journal of work it owes.
#pragma once

#include <chrono>
#include <string>

#include "config.hpp"
#include "followups.hpp"
#include "journal.hpp"
#include "owner.hpp"
#include "slurm.hpp"
#include "spool.hpp"

namespace hawf::hawfd {

class Notifier;
class Outbox;

struct Service {
    Config config;
    Spool spool;                        // its root is listed (which users have a tree); trees are read via owners
    Slurm slurm;
    const OwnerAccess* owners = nullptr;
    const Journal* journal = nullptr;
    Notifier* notifier = nullptr;       // follows pending checkpoints (set once it runs)
    const Outbox* outbox = nullptr;     // notify: configured
    std::string host;                   // recorded in the events hawfd writes
    // How long a request waits for Slurm to release or cancel follow-ups before it
    // answers; what is not done by then the journal retries.
    Patience patience{std::chrono::milliseconds(5000), std::chrono::milliseconds(500)};

    const std::string& munge_socket() const { return config.hawfd.munge_socket; }
};

}  // namespace hawf::hawfd
