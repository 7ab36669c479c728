// What hawfd tells people about a checkpoint, and how it reads (no network, no
// files: unit-tested). A notice is owed by the checkpoint's state as its log says
// it, never by what a user sent: `pending` (with a reminder before the deadline for
// each of notify.remind_before), `decided` or `timeout` (the decision in force),
// `failed`. Each has a key unique to the event that caused it (its seq), so telling
// again after a crash or a second look is the same message under the same key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "record.hpp"

namespace hawf::hawfd {

struct Notice {
    std::string event;     // pending | reminder | decided | timeout | failed
    std::string key;       // "<uid>.<job>.<name>.<event>[-<offset>s].<seq>": file-name and Message-ID safe
    std::int64_t due = 0;  // when it is to be sent (unix seconds): at once, or a reminder's time
};

// The notices CKPT's current state calls for, among NOTIFY's events, in order; a
// reminder that would fall before the checkpoint became pending is left out.
std::vector<Notice> notices_for(const Checkpoint& ckpt, const NotifyConfig& notify);

// The channels a checkpoint's notices go to: its --hawf-notify, else the site's
// default; "none" and channels the config no longer offers give none (the latter
// are listed in DROPPED, for hawfd's log).
std::vector<std::string> channels_for(const CheckpointSpec& spec, const NotifyConfig& notify,
                                      std::vector<std::string>* dropped = nullptr);

// What a notice says, for a person on a phone: the checkpoint, owner, options and
// parameters, the deadline, the first lines of REPORT (the job's report.md) and the
// hawf-decide command to run. Every value a user controls is escaped (display.hpp).
struct Message {
    std::string subject;  // one line, from validated names only
    std::string text;     // plain text, lines joined with "\n"
};
Message render(const Notice& notice, const Checkpoint& ckpt, const std::string& report, std::int64_t now);

// A whole mail (RFC 5322, CRLF): From, To (RECIPIENTS), Subject, Date, Message-ID
// (<KEY.CHANNEL@HOST>), X-Hawf-Event-Id, Auto-Submitted, then MESSAGE's text.
std::string mail_message(const Message& message, const std::string& from, const std::vector<std::string>& recipients,
                         const std::string& key, const std::string& host, std::int64_t now);

// A webhook's JSON body in FORMAT: slack and mattermost {"text": ...} (the user's
// text inside a code block, mentions and markup defused), json {"event": {...},
// "checkpoint": SHOW}.
nlohmann::json webhook_body(const std::string& format, const Notice& notice, const Message& message,
                            const nlohmann::json& show, std::int64_t now);

}  // namespace hawf::hawfd
