#include "notifier.hpp"

#include <algorithm>
#include <ctime>

#include "actions.hpp"
#include "display.hpp"
#include "ops.hpp"
#include "review.hpp"
#include "server.hpp"
#include "views.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr std::chrono::seconds retry_look{60};  // a checkpoint that could not be read
constexpr std::size_t max_cached_mail_users = 10000;

std::string what(uid_t owner, const CheckpointId& id) { return id.str() + " of uid " + std::to_string(owner); }

}  // namespace

Notifier::Notifier(const Service& service, Outbox* outbox)
    : service_(service), outbox_(outbox), watch_(service.config.hawfd.state, "watch") {
    // What was watched before a restart is looked at again (its timers, and a decision
    // made meanwhile), in the background: nudges go first.
    for (const auto& [owner, id] : watch_.entries()) {
        watched_.insert({owner, id.str()});
        background_.push_back({owner, id.str()});
    }
    thread_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Notifier::nudge(uid_t owner, const CheckpointId& id) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        nudged_.insert({owner, id.str()});
    }
    wake_.notify_all();
}

void Notifier::run() {
    const auto rescan_period = std::chrono::seconds(service_.config.notify.rescan_s);
    auto next_rescan = Clock::now();  // at start: pending checkpoints nobody nudged about
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        // Nudges and timers first, all of them; then one checkpoint of the background
        // (a restart, a rescan), so a nudge never waits behind a thousand looks.
        const auto now = Clock::now();
        std::set<Key> due;
        due.swap(nudged_);
        for (auto it = timers_.begin(); it != timers_.end();) {
            if (it->second <= now) {
                due.insert(it->first);
                it = timers_.erase(it);
            } else {
                ++it;
            }
        }
        const bool rescan_now = now >= next_rescan && background_.empty();
        lock.unlock();
        if (due.empty() && !background_.empty()) {
            due.insert(background_.front());
            background_.pop_front();
        }
        for (const auto& [owner, id] : due) {
            try {
                look(owner, parse_checkpoint_id(id));
            } catch (const std::exception& e) {
                log_line("watch: " + id + " of uid " + std::to_string(owner) + ": " + shown(e.what()));
            }
        }
        if (rescan_now) {
            rescan();
            next_rescan = Clock::now() + rescan_period;
        }
        lock.lock();
        if (!background_.empty()) continue;
        auto wake_at = next_rescan;
        for (const auto& [key, at] : timers_) wake_at = std::min(wake_at, at);
        wake_.wait_until(lock, wake_at, [&] { return stopping_ || !nudged_.empty(); });
    }
}

// What nudges missed: a pending checkpoint hawfd does not watch (it was down when the
// step ended), and a watched one no longer pending (decided while it was down). One
// child per user reads its pending index; nothing is looked at that is as known.
void Notifier::rescan() {
    std::set<Key> pending;
    for (uid_t owner : service_.spool.owners()) {
        try {
            const json answer = service_.owners->run(owner, {{"verb", "pending"}, {"owner", owner}});
            for (const auto& id : answer.at("checkpoints"))
                pending.insert({owner, parse_checkpoint_id(id.get<std::string>()).str()});
        } catch (const std::exception& e) {
            log_line("watch: skipping uid " + std::to_string(owner) + ": " + shown(e.what()));
        }
    }
    for (const Key& key : pending)
        if (!watched_.count(key)) background_.push_back(key);
    for (const Key& key : watched_)
        if (!pending.count(key)) background_.push_back(key);
}

// Everything owed to one checkpoint now: its default at the deadline, its notices,
// and when to look again.
void Notifier::look(uid_t owner, const CheckpointId& id) {
    Checkpoint ckpt;
    try {
        ckpt = service_.owners->load(owner, id);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NotFound) {
            unwatch(owner, id);
            return;
        }
        log_line("watch: cannot read " + what(owner, id) + ": " + shown(e.what()));
        const std::lock_guard<std::mutex> lock(mutex_);
        timers_[{owner, id.str()}] = Clock::now() + retry_look;
        return;
    }
    std::int64_t now = std::time(nullptr);
    // The deadline passed undecided: the default, as a follow-up or hawf-await would
    // take it (a delegated checkpoint's sealed by hawfd). The journal makes sure its
    // follow-ups are released or cancelled even if Slurm is down now.
    if (ckpt.state == State::Pending && ckpt.deadline() && now >= ckpt.deadline()) {
        const Finished done = take_default_at_deadline(service_, owner, id, now);
        ckpt = done.ckpt;
        const std::string changes = describe(done.changes);
        log_line("deadline of " + what(owner, id) + ": " + to_string(ckpt.state) +
                 (ckpt.decision() ? " " + ckpt.decision()->choice + " by " + shown(ckpt.decided_by()) : "") +
                 (changes.empty() ? "" : ", " + changes));
        now = std::time(nullptr);
    }
    std::int64_t next = 0;
    if (outbox_)
        for (const Notice& notice : notices_for(ckpt, service_.config.notify)) {
            if (notice.due > now) {
                next = next ? std::min(next, notice.due) : notice.due;
                continue;
            }
            try {
                tell(notice, ckpt, now);
            } catch (const std::exception& e) {
                log_line("notify: cannot queue " + notice.key + ": " + shown(e.what()));
            }
        }
    if (ckpt.state != State::Pending) {
        unwatch(owner, id);
        return;
    }
    if (watched_.insert({owner, id.str()}).second) watch_.add(owner, id);
    if (const std::int64_t deadline = ckpt.deadline()) next = next ? std::min(next, deadline) : deadline;
    if (next) {
        const std::lock_guard<std::mutex> lock(mutex_);
        timers_[{owner, id.str()}] = Clock::from_time_t(static_cast<std::time_t>(next));
    }
}

void Notifier::unwatch(uid_t owner, const CheckpointId& id) {
    if (watched_.erase({owner, id.str()})) watch_.remove(owner, id);
    const std::lock_guard<std::mutex> lock(mutex_);
    timers_.erase({owner, id.str()});
}

// NOTICE into the outbox, once per channel of the checkpoint.
void Notifier::tell(const Notice& notice, const Checkpoint& ckpt, std::int64_t now) {
    const NotifyConfig& notify = service_.config.notify;
    std::vector<std::string> dropped;
    std::vector<std::string> channels = channels_for(ckpt.spec, notify, &dropped);
    for (const auto& c : dropped)
        log_line("notify: " + ckpt.spec.id.str() + " asks for channel " + quoted_text(c) + ", which is not configured");
    // Already queued, sent or given up (a restart, a second nudge): nothing to render.
    channels.erase(std::remove_if(channels.begin(), channels.end(),
                                  [&](const std::string& c) { return outbox_->known(notice.key + "." + c); }),
                   channels.end());
    if (channels.empty()) return;
    const uid_t owner = ckpt.spec.owner_uid;
    const json files = service_.owners->ask(owner, ckpt.spec.id, {{"verb", "files"}});
    const std::string report = files.at("report").get<std::string>();
    const Message message = render(notice, ckpt, report, now);
    json show;  // the json format's body: the checkpoint as hawf show --json prints it
    for (const auto& channel : channels) {
        OutboxEntry entry{notice.key + "." + channel, owner, ckpt.spec.id.str(), notice.event, channel, "", {}, now};
        if (channel == "mail") {
            entry.recipients = recipients(ckpt);
            entry.body = mail_message(message, notify.smtp.from, entry.recipients, entry.id, service_.host, now);
        } else {
            const std::string& format = notify.webhook(channel)->format;
            if (format == "json" && show.is_null())
                show = show_json(ckpt, service_.spool.files_dir(owner, ckpt.spec.id), files.at("files"), report,
                                 followup_states(service_.slurm, ckpt));
            entry.body = webhook_body(format, notice, message, show, now).dump(-1, ' ', false,
                                                                               json::error_handler_t::replace);
        }
        if (outbox_->add(entry))
            log_line("notify: queued " + notice.event + " of " + ckpt.spec.id.str() + " to " + channel);
    }
}

// The owner (the job's --mail-user, else USER@domain) and, when the spec is the one
// hawf sealed, every reviewer (USER@domain).
std::vector<std::string> Notifier::recipients(const Checkpoint& ckpt) {
    const std::string& domain = service_.config.notify.smtp.domain;
    std::vector<std::string> to;
    const auto add = [&](const std::string& address) {
        if (std::find(to.begin(), to.end(), address) == to.end()) to.push_back(address);
    };
    const std::string& job = ckpt.spec.id.job_id;
    if (!mail_users_.count(job)) {
        if (mail_users_.size() >= max_cached_mail_users) mail_users_.clear();
        try {
            mail_users_[job] = service_.slurm.mail_user(job);
        } catch (const Error& e) {
            mail_users_[job] = "";
        }
    }
    const std::string& mail_user = mail_users_[job];
    if (!mail_user.empty() && !valid_mail_address(mail_user))
        log_line("notify: job " + job + " has --mail-user " + quoted_text(mail_user) + ", not a plain address: using " +
                 ckpt.spec.owner + "@" + domain);
    add(valid_mail_address(mail_user) ? mail_user : user_name(ckpt.spec.owner_uid) + "@" + domain);
    if (ckpt.spec.delegated()) try {
            verify_spec(ckpt.spec, service_.munge_socket());
            for (const uid_t uid : reviewer_uids(all_reviewers(ckpt.spec))) {
                const std::string name = user_name(uid);
                if (valid_mail_address(name + "@" + domain)) add(name + "@" + domain);
            }
        } catch (const Error& e) {
            log_line("notify: not telling the reviewers of " + ckpt.spec.id.str() + ": " + shown(e.what()));
        }
    return to;
}

}  // namespace hawf::hawfd
