#include "notices.hpp"

#include <algorithm>
#include <ctime>

#include "display.hpp"
#include "validate.hpp"

namespace hawf::hawfd {
namespace {

using nlohmann::json;

constexpr std::size_t report_lines = 15;      // what fits a phone's screen
constexpr std::size_t report_line_bytes = 200;

// The seq of the last event of one of TYPES (0 if none).
std::uint64_t last_of(const Checkpoint& ckpt, std::initializer_list<EventType> types) {
    for (auto ev = ckpt.history.rbegin(); ev != ckpt.history.rend(); ++ev)
        if (std::find(types.begin(), types.end(), ev->type) != types.end()) return ev->seq;
    return 0;
}

std::string key_of(const Checkpoint& ckpt, const std::string& event, std::uint64_t seq) {
    return std::to_string(ckpt.spec.owner_uid) + "." + ckpt.spec.id.job_id + "." + ckpt.spec.id.name + "." + event +
           "." + std::to_string(seq);
}

// "2026-12-02 14:00:00 UTC"
std::string when(std::int64_t t) {
    std::string s = format_time(t);
    std::replace(s.begin(), s.end(), 'T', ' ');
    if (!s.empty() && s.back() == 'Z') s.replace(s.size() - 1, 1, " UTC");
    return s;
}

// How a step ended, as Slurm says it.
// At most MAX bytes of TEXT, never cutting a UTF-8 character in two.
std::string cut(const std::string& text, std::size_t max) {
    if (text.size() <= max) return text;
    std::size_t end = max;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end) + "...";
}

std::string params_text(const CheckpointSpec& spec) {
    std::vector<std::string> list;
    for (const auto& p : spec.params) list.push_back(p.key + " (" + p.type_text() + ")");
    return joined(list);
}

std::string reviewers_text(const CheckpointSpec& spec) {
    std::vector<std::string> parts;
    if (!spec.reviewers.empty())
        parts.push_back(joined(spec.reviewers) + " (" + std::to_string(spec.quorum) + " must agree)");
    for (const auto& r : spec.required)
        parts.push_back(joined(r.reviewers) + " (" + std::to_string(r.quorum) + ", site policy)");
    return joined(parts, "; ");
}

// The command a reviewer types: the first option, each parameter to fill in.
std::string decide_command(const CheckpointSpec& spec) {
    std::string command = "hawf-decide " + spec.id.str() + " " + spec.options.front();
    for (const auto& p : spec.params) command += " --set " + p.key + "=VALUE";
    return command;
}

void add_report(std::vector<std::string>& lines, const std::string& report) {
    if (report.empty()) return;
    const std::string text = shown_text(report);
    std::vector<std::string> report_rows;
    std::size_t start = 0;
    while (start < text.size() && report_rows.size() <= report_lines) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        report_rows.push_back(cut(text.substr(start, end - start), report_line_bytes));
        start = end + 1;
    }
    const bool more = report_rows.size() > report_lines || start < text.size();
    if (report_rows.size() > report_lines) report_rows.pop_back();
    lines.push_back("Report (report.md" + std::string(more ? ", first lines" : "") + "):");
    for (const auto& row : report_rows) lines.push_back("  | " + row);
}

// Slack and Mattermost read markup and mentions in text: the escapes Slack asks for
// (&, <, >) and no backticks, so the code block the text sits in cannot be left.
std::string defused(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '`') out += '\'';
        else out += c;
    }
    return out;
}

// A header's value: printable ASCII only (names are validated; this is the last guard).
std::string header_safe(const std::string& text) {
    std::string out;
    for (char c : text) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

std::string rfc5322_date(std::int64_t t) {
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t time = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&time, &tm);
    char text[64];
    std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return text;
}

}  // namespace

std::vector<Notice> notices_for(const Checkpoint& ckpt, const NotifyConfig& notify) {
    std::vector<Notice> out;
    const auto add = [&](const std::string& event, const std::string& key, std::int64_t due = 0) {
        if (notify.wants(event)) out.push_back({event, key, due});
    };
    switch (ckpt.state) {
        case State::Pending: {
            const std::uint64_t seq = last_of(ckpt, {EventType::Pending, EventType::Revoked});
            add("pending", key_of(ckpt, "pending", seq));
            if (const std::int64_t deadline = ckpt.deadline())
                for (const std::int64_t before : notify.remind_before_s)
                    if (deadline - before > ckpt.pending_since)
                        add("reminder", key_of(ckpt, "reminder-" + std::to_string(before) + "s", seq), deadline - before);
            break;
        }
        case State::Decided:
        case State::Applied: {
            const std::string event = ckpt.decided->via == Via::Timeout ? "timeout" : "decided";
            add(event, key_of(ckpt, event, ckpt.decided->seq));
            break;
        }
        case State::Failed: add("failed", key_of(ckpt, "failed", last_of(ckpt, {EventType::Failed}))); break;
        case State::Expected:
        case State::Running: break;
    }
    return out;
}

std::vector<std::string> channels_for(const CheckpointSpec& spec, const NotifyConfig& notify,
                                      std::vector<std::string>* dropped) {
    const std::vector<std::string>& asked = spec.notify.empty() ? notify.default_channels : spec.notify;
    std::vector<std::string> channels;
    const std::vector<std::string> offered = notify.channels();
    for (const auto& c : asked) {
        if (c == "none") return {};
        if (std::find(offered.begin(), offered.end(), c) != offered.end()) channels.push_back(c);
        else if (dropped) dropped->push_back(c);
    }
    return channels;
}

Message render(const Notice& notice, const Checkpoint& ckpt, const std::string& report, std::int64_t now) {
    const CheckpointSpec& spec = ckpt.spec;
    const std::string id = spec.id.str(), owner = spec.owner;
    Message m;
    std::vector<std::string> lines;
    const auto describe_pending = [&] {
        lines.push_back("Options: " + joined(spec.options));
        if (!spec.params.empty()) lines.push_back("Parameters: " + params_text(spec));
        if (const std::int64_t deadline = ckpt.deadline())
            lines.push_back("Deadline: " + when(deadline) + " (in " + format_duration(std::max<std::int64_t>(deadline - now, 0)) +
                            "), then the default: " + spec.default_choice);
        if (spec.delegated()) lines.push_back("Reviewers: " + reviewers_text(spec));
        add_report(lines, report);
        lines.push_back("");
        lines.push_back("To decide, on a login node:");
        lines.push_back("  " + decide_command(spec));
        lines.push_back("  (choices: " + joined(spec.options) + "; hawf show " + id + " shows everything)");
    };
    if (notice.event == "pending") {
        m.subject = "[hawf] " + id + " of " + owner + " waits for a decision";
        lines.push_back("Checkpoint " + id + " of " + owner + " waits for a decision.");
        describe_pending();
    } else if (notice.event == "reminder") {
        m.subject = "[hawf] reminder: " + id + " of " + owner + " still waits for a decision";
        lines.push_back("Reminder: checkpoint " + id + " of " + owner + " still waits for a decision; without one, " +
                        spec.default_choice + " is taken at " + when(ckpt.deadline()) + ".");
        describe_pending();
    } else if (notice.event == "decided" || notice.event == "timeout") {
        const Decision& d = *ckpt.decision();
        m.subject = "[hawf] " + id + " of " + owner + ": " + d.choice +
                    (notice.event == "timeout" ? " (the default, not decided in time)" : "");
        lines.push_back(notice.event == "timeout"
                            ? "Checkpoint " + id + " of " + owner + " was not decided by its deadline: the default " +
                                  d.choice + " was taken."
                            : "Checkpoint " + id + " of " + owner + " was decided: " + d.choice + ", by " +
                                  shown(ckpt.decided_by()) + ".");
        for (const auto& [key, value] : d.params) lines.push_back("  " + key + " = " + shown(value));
        if (!d.comment.empty()) lines.push_back("Comment: " + shown(d.comment));
        lines.push_back("Decided at " + when(ckpt.decided->at) + ".");
    } else {
        const Event* failed = nullptr;
        for (const auto& ev : ckpt.history)
            if (ev.type == EventType::Failed) failed = &ev;
        m.subject = "[hawf] " + id + " of " + owner + " failed";
        lines.push_back("Checkpoint " + id + " of " + owner + " failed: its step ended with " +
                        (failed ? exit_text(failed->exit_status) : std::string("an error")) +
                        "; no decision is asked for.");
        add_report(lines, report);
    }
    m.subject = header_safe(m.subject);
    m.text = joined(lines, "\n") + "\n";
    return m;
}

std::string mail_message(const Message& message, const std::string& from, const std::vector<std::string>& recipients,
                         const std::string& key, const std::string& host, std::int64_t now) {
    std::string mail;
    const auto header = [&](const std::string& name, const std::string& value) {
        mail += name + ": " + header_safe(value) + "\r\n";
    };
    header("From", from);
    header("To", joined(recipients));
    header("Subject", message.subject);
    header("Date", rfc5322_date(now));
    header("Message-ID", "<" + key + "@" + host + ">");
    header("X-Hawf-Event-Id", key);
    header("Auto-Submitted", "auto-generated");
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=utf-8");
    header("Content-Transfer-Encoding", "8bit");
    mail += "\r\n";
    std::size_t start = 0;
    while (start < message.text.size()) {
        const std::size_t end = std::min(message.text.find('\n', start), message.text.size());
        mail += cut(message.text.substr(start, end - start), 990) + "\r\n";  // SMTP's 998-byte line limit
        start = end + 1;
    }
    return mail;
}

json webhook_body(const std::string& format, const Notice& notice, const Message& message, const json& show,
                  std::int64_t now) {
    if (format == "json")
        return {{"event", {{"type", notice.event}, {"key", notice.key}, {"at", format_time(now)}}},
                {"text", message.text},
                {"checkpoint", show}};
    // slack, mattermost: the subject as the headline, the rest as preformatted text.
    return {{"text", "*" + defused(message.subject) + "*\n```\n" + defused(message.text) + "```"}};
}

}  // namespace hawf::hawfd
