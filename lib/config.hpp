// hawf.yaml, read by the plugin and by the tools. Unknown keys and bad values are
// errors naming the file and line, so a typo never silently changes behaviour.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "record.hpp"

namespace hawf {

constexpr const char* default_config_path = HAWF_DEFAULT_CONF;

// hawfd, the service through which reviewers decide (optional: owner mode needs none).
struct HawfdConfig {
    std::string listen;                                      // HOST:PORT hawfd binds; "" = not set
    std::string address;                                     // HOST:PORT the tools connect to; "" = no hawfd
    std::string state = "/var/lib/hawf";                     // hawfd's own durable state
    std::string munge_socket;                                // "" = libmunge's default
};

// Notifications (notify: in hawf.yaml), sent by hawfd: mail and chat webhooks. The
// tools and the plugin need only the channel names (--hawf-notify is checked against
// them at submission); URLs and passwords are hawfd's alone: a hook's secret URL can
// sit in a root-only url_file instead of the world-readable hawf.yaml.
struct WebhookConfig {
    std::string name;      // the channel name jobs give to --hawf-notify
    std::string url;       // http(s)://..., or "" when url_file is given
    std::string url_file;  // an absolute path holding the URL (read by hawfd)
    std::string format = "json";  // slack | mattermost | json
};
struct SmtpConfig {
    std::string url;                    // smtp://HOST:PORT or smtps://HOST:PORT; "" = no mail
    std::string from;                   // the sender address
    std::string domain;                 // USER@domain when a job gives no --mail-user
    std::string starttls = "optional";  // smtp:// only: optional | required | off
    std::string user, password_file;    // SMTP AUTH, optional
};
struct NotifyConfig {
    SmtpConfig smtp;
    std::vector<WebhookConfig> webhooks;
    std::vector<std::string> events = {"pending", "reminder", "decided", "timeout", "failed"};
    std::vector<std::int64_t> remind_before_s;  // a reminder this long before each deadline
    std::vector<std::string> default_channels;  // of a job without --hawf-notify (default: mail if smtp is set)
    std::int64_t timeout_s = 20;                // one attempt to send
    std::int64_t retry_for_s = 86400;           // then a message is given up (hawf doctor reports it)
    std::int64_t rescan_s = 600;                // how often hawfd reads every user's pending index

    bool configured() const { return !smtp.url.empty() || !webhooks.empty(); }
    bool wants(const std::string& event) const;
    const WebhookConfig* webhook(const std::string& name) const;
    std::vector<std::string> channels() const;  // "mail" (with smtp) and the webhook names
};

// Refuses (Error Usage, naming the value and what is allowed) a --hawf-notify list
// naming a channel the config does not offer; "none" alone is always allowed.
void check_notify_channels(const NotifyConfig& notify, const std::vector<std::string>& channels,
                           const std::string& config_path);

// A site policy (policies: in hawf.yaml): the checkpoints of the jobs it matches need
// QUORUM distinct approvals from these reviewers whatever the job says (a requirement
// of its own, see CheckpointSpec::Requirement).
struct Policy {
    // Globs (fnmatch); "" matches anything; every one given must match.
    std::string partition, account, qos, checkpoint;
    std::vector<std::string> reviewers;  // at least one: users and @groups
    std::uint32_t quorum = 1;
    bool owner_may_decide = true;
    std::string where;                   // "/etc/hawf/hawf.yaml:12", named in messages
};

// The job as slurmctld knows it: what policies match on.
struct JobFacts {
    std::string partition, account, qos;
};

// Appends to SPEC.required (its checkpoint name is matched) one requirement per policy
// matching JOB, in config order: the policy's reviewers, its quorum and where it is;
// owner_may_decide false if any policy says so. Nothing is merged: the job's own
// reviewers and quorum stay its own requirement, and a decision needs every one met,
// so a job's options can add a requirement but never weaken a policy's.
void apply_policies(const std::vector<Policy>& policies, const JobFacts& job, CheckpointSpec& spec);

struct Config {
    std::string path;                                        // where it was read from
    bool found = false;                                      // false: built-in defaults
    std::string spool = "/var/spool/hawf";
    std::vector<std::string> default_options = {"approve", "reject"};
    Limits limits;
    std::int64_t poll_interval_s = 2;                        // hawf-await's re-check period
    HawfdConfig hawfd;
    std::vector<Policy> policies;                            // need hawfd.address (refused without)
    NotifyConfig notify;                                     // needs hawfd.address (refused without)
    // No Slurm (hawf submit --local): jobs are this machine's processes of their user,
    // kept in this directory of theirs (local_jobs.hpp); "" = Slurm's.
    std::string local_jobs;

    bool hawfd_configured() const { return !hawfd.address.empty(); }
};

// A TCP endpoint as hawf.yaml writes it: "HOST:PORT", an IPv6 address in brackets
// ("[::1]:7477"). HOST is a name or an address, PORT 1-65535.
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
};
// Throws Error(Usage) naming WHAT for anything else.
HostPort parse_host_port(const std::string& text, const std::string& what);

// Reads PATH; a missing file gives the defaults (found = false). Throws Error(Config)
// for the first mistake; with ERRORS (hawf doctor) it collects one line for each
// top-level key in error and each rule across keys broken, and returns what it
// could read (YAML that does not parse still throws).
Config load_config(const std::string& path, std::vector<std::string>* errors = nullptr);

// The path the tools use: $HAWF_CONF if set, else default_config_path.
std::string config_path_from_env();

}  // namespace hawf
