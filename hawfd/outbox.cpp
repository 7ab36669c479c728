#include "outbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>

#include "display.hpp"
#include "error.hpp"
#include "server.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t keep_s = 30 * 86400;            // sent/ and failed/ entries
constexpr std::size_t max_entry_bytes = 4 << 20;
constexpr std::size_t max_failed_shown = 100;          // hawf doctor lists these, counts the rest
constexpr std::chrono::seconds first_retry{2}, last_retry{300};

// The wait before attempt N+1: doubling from first_retry, at most last_retry.
std::chrono::seconds backoff(int attempts) {
    std::chrono::seconds wait = first_retry;
    for (int i = 1; i < attempts && wait < last_retry; ++i) wait *= 2;
    return std::min(wait, last_retry);
}

// An id as hawfd makes them (notices.hpp's key, a channel name): never a path.
bool plain_id(const std::string& id) {
    return !id.empty() && id.size() <= 200 && id[0] != '.' &&
           id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
               std::string::npos;
}

OutboxEntry entry_from_json(const json& j) {
    OutboxEntry e;
    e.id = j.at("id").get<std::string>();
    e.owner = j.at("owner").get<uid_t>();
    e.checkpoint = j.at("checkpoint").get<std::string>();
    e.event = j.at("event").get<std::string>();
    e.channel = j.at("channel").get<std::string>();
    e.body = j.at("body").get<std::string>();
    e.recipients = j.at("recipients").get<std::vector<std::string>>();
    e.created = j.at("created").get<std::int64_t>();
    if (!plain_id(e.id)) throw Error(ErrorKind::Untrusted, "bad id");
    return e;
}

bool exists(int dir, const std::string& name) {
    struct stat st;
    return fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

std::string secret_file(const std::string& path) {
    const std::optional<std::string> text = read_file(AT_FDCWD, path, Trust{0}, path, 64 * 1024);
    if (!text) throw Error(ErrorKind::NotFound, path + " does not exist");
    std::string value = *text;
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r' || value.back() == ' ')) value.pop_back();
    return value;
}

}  // namespace

Outbox::Outbox(const std::string& state, const NotifyConfig& notify) : notify_(notify), path_(state) {
    const Fd state_dir = open_dir(AT_FDCWD, state, Trust{0}, state);
    if (!state_dir) throw Error(ErrorKind::NotFound, "hawfd.state " + state + " does not exist");
    outbox_ = make_dir(state_dir.get(), "outbox", Trust{0}, state + "/outbox");
    sent_ = make_dir(state_dir.get(), "sent", Trust{0}, state + "/sent");
    failed_ = make_dir(state_dir.get(), "failed", Trust{0}, state + "/failed");
    remove_stale_temps(outbox_.get(), std::time(nullptr), path_ + "/outbox");  // no writer runs yet
    remove_stale_temps(failed_.get(), std::time(nullptr), path_ + "/failed");
    for (const auto& name : list_dir(outbox_.get())) {
        try {
            const std::optional<std::string> text =
                read_file(outbox_.get(), name, Trust{0}, path_ + "/outbox/" + name, max_entry_bytes);
            if (!text) continue;
            const OutboxEntry entry = entry_from_json(json::parse(*text));
            if (entry.id != name) throw Error(ErrorKind::Untrusted, "its id is " + entry.id);
            // Sent or given up already: hawfd was killed before it removed the file.
            if (exists(sent_.get(), name) || exists(failed_.get(), name)) {
                remove_file(outbox_.get(), name, path_ + "/outbox/" + name);
                continue;
            }
            queue_[name] = Queued{entry, 0, Clock::now()};
        } catch (const std::exception& e) {
            log_line("outbox: ignoring " + shown(name) + ": " + shown(e.what()));
        }
    }
    if (!queue_.empty()) log_line("outbox: " + std::to_string(queue_.size()) + " notifications to send");
    prune(std::time(nullptr));
    sender_ = std::make_unique<Sender>([this](const Outgoing& o, const SendResult& r) { done(o.key, r); });
    thread_ = std::thread([this] { run(); });
}

Outbox::~Outbox() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    sender_.reset();  // abandons what is in flight: still in outbox/ for the next start
}

json Outbox::to_json(const OutboxEntry& e) const {
    return {{"id", e.id},       {"owner", e.owner}, {"checkpoint", e.checkpoint}, {"event", e.event},
            {"channel", e.channel}, {"body", e.body}, {"recipients", e.recipients}, {"created", e.created}};
}

namespace {
// What is written to outbox/ and failed/: a server's error may be any bytes.
std::string file_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

bool Outbox::known(const std::string& id) const {
    if (!plain_id(id)) return false;
    const std::lock_guard<std::mutex> lock(mutex_);
    return queue_.count(id) || exists(sent_.get(), id) || exists(failed_.get(), id);
}

bool Outbox::add(const OutboxEntry& entry) {
    if (!plain_id(entry.id)) throw Error(ErrorKind::Usage, "bad outbox id " + quoted_text(entry.id));
    const std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.count(entry.id) || exists(sent_.get(), entry.id) || exists(failed_.get(), entry.id)) return false;
    if (!create_file(outbox_.get(), entry.id, file_text(to_json(entry)), path_ + "/outbox/" + entry.id)) return false;
    queue_[entry.id] = Queued{entry, 0, Clock::now()};
    changed_ = true;
    wake_.notify_all();
    return true;
}

Outgoing Outbox::outgoing(const OutboxEntry& entry) const {
    Outgoing o;
    o.key = entry.id;
    o.body = entry.body;
    o.timeout = std::chrono::seconds(notify_.timeout_s);
    if (entry.channel == "mail") {
        if (notify_.smtp.url.empty()) throw Error(ErrorKind::Config, "mail is no longer configured (notify.smtp)");
        o.kind = Outgoing::Kind::Mail;
        o.url = notify_.smtp.url;
        o.from = notify_.smtp.from;
        o.recipients = entry.recipients;
        o.user = notify_.smtp.user;
        if (!notify_.smtp.password_file.empty()) o.password = secret_file(notify_.smtp.password_file);
        o.starttls = notify_.smtp.starttls == "required" ? Outgoing::StartTls::Required
                     : notify_.smtp.starttls == "off"    ? Outgoing::StartTls::Off
                                                         : Outgoing::StartTls::Optional;
        return o;
    }
    const WebhookConfig* hook = notify_.webhook(entry.channel);
    if (!hook) throw Error(ErrorKind::Config, "the webhook " + quoted_text(entry.channel) + " is no longer configured");
    o.kind = Outgoing::Kind::Webhook;
    o.url = hook->url.empty() ? secret_file(hook->url_file) : hook->url;
    return o;
}

void Outbox::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    std::int64_t pruned = std::time(nullptr);
    while (!stopping_) {
        const auto now = Clock::now();
        auto next = now + std::chrono::hours(1);
        std::vector<std::string> due;
        for (auto& [id, q] : queue_) {
            if (q.in_flight) continue;
            if (q.next <= now) due.push_back(id);
            else next = std::min(next, q.next);
        }
        for (const auto& id : due) {
            Queued& q = queue_.at(id);
            try {
                Outgoing o = outgoing(q.entry);
                q.in_flight = true;
                ++q.attempts;
                sender_->send(std::move(o));
            } catch (const Error& e) {
                const OutboxEntry entry = q.entry;
                queue_.erase(id);
                give_up(entry, e.what());
            }
        }
        if (std::time(nullptr) - pruned > 86400) prune(pruned = std::time(nullptr));
        // Until the next retry is due, or the queue changed (added, or a result that
        // sets a retry earlier than NEXT).
        wake_.wait_until(lock, next, [&] { return stopping_ || changed_; });
        changed_ = false;
    }
}

void Outbox::done(const std::string& id, const SendResult& result) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = queue_.find(id);
    if (it == queue_.end()) return;
    Queued& q = it->second;
    q.in_flight = false;
    const std::string what = q.entry.event + " of " + q.entry.checkpoint + " (uid " + std::to_string(q.entry.owner) +
                             ") to " + q.entry.channel;
    try {
        if (result.ok) {
            move_entry(outbox_.get(), id, sent_.get(), id, path_ + "/sent/" + id);
            log_line("notify: sent " + what + " (" + id + ")");
            queue_.erase(it);
        } else if (result.permanent || std::time(nullptr) - q.entry.created >= notify_.retry_for_s) {
            const OutboxEntry entry = q.entry;
            queue_.erase(it);
            give_up(entry, result.error);
        } else {
            q.next = Clock::now() + backoff(q.attempts);
            log_line("notify: cannot send " + what + " yet (attempt " + std::to_string(q.attempts) +
                     "): " + shown(result.error));
        }
    } catch (const std::exception& e) {  // the file could not be moved: it is sent again later
        q.next = Clock::now() + last_retry;
        log_line("notify: " + id + ": " + shown(e.what()));
    }
    changed_ = true;
    wake_.notify_all();
}

// Called with the lock held, ENTRY already out of the queue.
void Outbox::give_up(const OutboxEntry& entry, const std::string& error) {
    json j = to_json(entry);
    j["error"] = error;
    j["given_up"] = format_time(std::time(nullptr));
    try {
        create_file(failed_.get(), entry.id, file_text(j), path_ + "/failed/" + entry.id);
        remove_file(outbox_.get(), entry.id, path_ + "/outbox/" + entry.id);
    } catch (const std::exception& e) {
        log_line("notify: " + entry.id + ": " + shown(e.what()));
    }
    log_line("notify: gave up " + entry.event + " of " + entry.checkpoint + " (uid " + std::to_string(entry.owner) +
             ") to " + entry.channel + " (" + entry.id + "): " + shown(error));
}

json Outbox::status(uid_t owner) const {
    std::size_t queued = 0;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [id, q] : queue_) queued += owner == 0 || q.entry.owner == owner;
    }
    // failed/ is read without the lock (only ever added to, each file whole): a long
    // list never holds up sending.
    json failed = json::array();
    std::size_t more = 0;
    for (const auto& name : list_dir(failed_.get())) {
        try {
            const std::optional<std::string> text =
                read_file(failed_.get(), name, Trust{0}, path_ + "/failed/" + name, max_entry_bytes);
            if (!text) continue;
            const json j = json::parse(*text);
            if (owner != 0 && j.at("owner").get<uid_t>() != owner) continue;
            if (failed.size() >= max_failed_shown) {
                ++more;
                continue;
            }
            failed.push_back({{"id", name}, {"checkpoint", j.at("checkpoint")}, {"channel", j.at("channel")},
                              {"event", j.at("event")}, {"error", j.at("error")}, {"at", j.at("given_up")}});
        } catch (const std::exception&) {
        }
    }
    return {{"queued", queued}, {"failed", failed}, {"more_failed", more}};
}

void Outbox::prune(std::int64_t now) {
    for (const auto& [dir, sub] : {std::pair<const Fd*, const char*>{&sent_, "/sent/"}, {&failed_, "/failed/"}})
        for (const auto& name : list_dir(dir->get())) {
            struct stat st;
            if (fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime < now - keep_s)
                try {
                    remove_file(dir->get(), name, path_ + sub + name);
                } catch (const Error& e) {
                    log_line("notify: " + shown(e.what()));
                }
        }
}

}  // namespace hawf::hawfd
