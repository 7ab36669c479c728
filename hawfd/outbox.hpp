// hawfd's outbox: every notification is a file here before it is sent, so hawfd
// killed at any instant, or a mail relay or webhook that is down, loses nothing.
//   STATE/outbox/<id>   waiting to be sent (JSON; id = the notice's key + "." + channel)
//   STATE/sent/<id>     sent; kept 30 days so a second look at the same event sends nothing
//   STATE/failed/<id>   given up after notify.retry_for, with the last error (hawf doctor)
// Sending is at least once: an id is the message's idempotency key (the webhook's
// X-Hawf-Event-Id header, the mail's Message-ID), so a receiver can drop a repeat
// (hawfd killed between sending and moving the file to sent/).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "fsutil.hpp"
#include "sender.hpp"

namespace hawf::hawfd {

struct OutboxEntry {
    std::string id;          // "<notice key>.<channel>": file name and idempotency key
    uid_t owner = 0;         // whose checkpoint (hawf doctor shows a user their own)
    std::string checkpoint;  // "JOB:NAME"
    std::string event;       // pending, reminder, decided, timeout, failed
    std::string channel;     // "mail" or a webhook's name (its URL is looked up when sending)
    std::string body;        // mail: the whole message; webhook: the JSON body
    std::vector<std::string> recipients;  // mail
    std::int64_t created = 0;             // unix seconds: retried until created + retry_for
};

class Outbox {
public:
    // STATE is hawfd.state (root's, checked at start); the three directories are made
    // in it, what is queued is loaded and sent at once.
    Outbox(const std::string& state, const NotifyConfig& notify);
    ~Outbox();  // stops sending; what is queued stays for the next start
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // Queues ENTRY (durable when it returns) unless a message of that id is queued,
    // sent or given up already; returns whether it was queued.
    bool add(const OutboxEntry& entry);
    // Whether a message of ID is queued, sent or given up: then add() would not queue
    // it, so nothing need be rendered for it (a restart looks at every watched checkpoint).
    bool known(const std::string& id) const;

    // For hawf doctor: {"queued": N, "failed": [{"id","checkpoint","channel","event","error","at"}],
    // "more_failed": M} (the first 100 listed), of OWNER's checkpoints, or of everyone's for root (0).
    nlohmann::json status(uid_t owner) const;

private:
    struct Queued {
        OutboxEntry entry;
        int attempts = 0;
        std::chrono::steady_clock::time_point next;
        bool in_flight = false;
    };
    void run();
    Outgoing outgoing(const OutboxEntry& entry) const;  // throws Error for a channel gone or unreadable
    void done(const std::string& id, const SendResult& result);
    void give_up(const OutboxEntry& entry, const std::string& error);
    void prune(std::int64_t now);
    nlohmann::json to_json(const OutboxEntry& entry) const;

    const NotifyConfig& notify_;
    std::string path_;
    Fd outbox_, sent_, failed_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::string, Queued> queue_;
    bool stopping_ = false;
    bool changed_ = false;  // the queue changed since run() last looked
    std::unique_ptr<Sender> sender_;
    std::thread thread_;
};

}  // namespace hawf::hawfd
