#include "config.hpp"

#include <arpa/inet.h>
#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <cstring>
#include <memory>
#include <set>

#include "error.hpp"
#include "review.hpp"
#include "yaml_tree.hpp"

namespace hawf {
namespace {

using yaml::Parser;
using yaml::Value;

std::string absolute_path(const std::string& value, const std::string& what) {
    if (value.empty() || value[0] != '/')
        throw Error(ErrorKind::Usage, "bad " + what + " \"" + value + "\": use an absolute path");
    return value;
}

}  // namespace

HostPort parse_host_port(const std::string& text, const std::string& what) {
    const auto bad = [&] {
        return Error(ErrorKind::Usage, what + ": bad address " + quoted_text(text) +
                                           ": use HOST:PORT (e.g. svc1:7477, 0.0.0.0:7477, [::]:7477)");
    };
    HostPort endpoint;
    std::string port;
    if (!text.empty() && text[0] == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || text.compare(close, 2, "]:") != 0) throw bad();
        endpoint.host = text.substr(1, close - 1);
        in6_addr address;  // all of it an address: inet_pton would stop at a NUL byte
        if (endpoint.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos ||
            inet_pton(AF_INET6, endpoint.host.c_str(), &address) != 1)
            throw bad();
        port = text.substr(close + 2);
    } else {
        // A DNS name or an IPv4 address; an IPv6 address needs its brackets.
        const std::size_t colon = text.find(':');
        if (colon == std::string::npos) throw bad();
        endpoint.host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (endpoint.host.empty() || endpoint.host.size() > 253 ||
            endpoint.host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                std::string::npos)
            throw bad();
    }
    if (port.empty() || port.size() > 5 || port[0] == '0' || port.find_first_not_of("0123456789") != std::string::npos)
        throw bad();
    const unsigned long number = std::stoul(port);
    if (number > 65535) throw bad();
    endpoint.port = static_cast<std::uint16_t>(number);
    return endpoint;
}

std::string config_path_from_env() {
    const char* env = std::getenv("HAWF_CONF");
    return env && *env ? env : default_config_path;
}

Config load_config(const std::string& path, std::vector<std::string>* errors) {
    // Each mistake: thrown, or with ERRORS noted, and reading goes on.
    const auto mistake = [&](const Error& e) {
        if (!errors) throw e;
        errors->push_back(e.what());
    };
    Config config;
    config.path = path;
    config.limits.source = path;  // also for the defaults of a missing file: where to set them
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "re"), std::fclose);
    if (!file) {
        if (errno == ENOENT) return config;
        throw Error(ErrorKind::Config, "cannot read " + path + ": " + std::strerror(errno));
    }
    config.found = true;
    Parser parser(file.get(), path);
    const Limits ceilings = Limits::ceilings();
    // Each limit: where it lives, its lowest value and its ceiling.
    struct LimitKey {
        const char* name;
        std::size_t Limits::*field;
        std::size_t lo;
    };
    const LimitKey limit_keys[] = {
        {"max_param_bytes", &Limits::max_param_bytes, 1},   {"max_comment_bytes", &Limits::max_comment_bytes, 0},
        {"max_options", &Limits::max_options, 1},           {"max_params", &Limits::max_params, 0},
        {"max_checkpoints", &Limits::max_checkpoints, 1},   {"max_record_bytes", &Limits::max_record_bytes, 65536},
        {"max_events", &Limits::max_events, 100},
    };
    std::set<std::string> limits_set;  // max_param_bytes may also be given at the top level
    std::size_t options_line = 0;      // default_options, else limits.max_options, to name a conflict
    auto scalar_of = [&](const std::string& key, const Value& v) {
        if (v.is_list || v.is_map || v.items.size() != 1)
            throw parser.error_at(v.line, key + ": expected a single value");
        return v.items[0];
    };
    // A list of plain values, or one value ("a,b" for default_options).
    auto strings_of = [&](const std::string& key, const Value& v) {
        if (v.is_map) throw parser.error_at(v.line, key + ": expected a list of values");
        for (const Value& element : v.elements)
            if (element.is_list || element.is_map)
                throw parser.error_at(element.line, key + ": expected a plain value");
        return v.items;
    };
    auto number_of = [&](const std::string& key, const Value& v, std::size_t lo, std::size_t hi) {
        const std::string s = scalar_of(key, v);
        char* end = nullptr;
        errno = 0;
        long long n = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end || errno || n < static_cast<long long>(lo) || static_cast<std::size_t>(n) > hi)
            throw parser.error_at(v.line, key + ": bad value \"" + s + "\": use a whole number from " +
                                              std::to_string(lo) + " to " + std::to_string(hi));
        return static_cast<std::size_t>(n);
    };
    auto set_limit = [&](const std::string& name, const Value& v, const std::string& shown) {
        for (const LimitKey& k : limit_keys) {
            if (name != k.name) continue;
            if (!limits_set.insert(name).second)
                throw parser.error_at(v.key_line, shown + ": set twice (at the top level and under limits:)");
            config.limits.*k.field = number_of(shown, v, k.lo, ceilings.*k.field);
            if (name == "max_options" && !options_line) options_line = v.line;
            return true;
        }
        return false;
    };
    auto set_hawfd = [&](const std::string& name, const Value& v) {
        const std::string key = "hawfd." + name;
        try {
            if (name == "listen" || name == "address") {
                const std::string value = scalar_of(key, v);
                parse_host_port(value, key);
                (name == "listen" ? config.hawfd.listen : config.hawfd.address) = value;
            } else if (name == "state") {
                config.hawfd.state = absolute_path(scalar_of(key, v), key);
            } else if (name == "munge_socket") {
                config.hawfd.munge_socket = absolute_path(scalar_of(key, v), key);
            } else {
                throw parser.error_at(v.key_line, "unknown key \"" + key +
                                                      "\": allowed are listen, address, state, munge_socket");
            }
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Config) throw;
            throw parser.error_at(v.line, e.what());
        }
    };
    // One policy: what it matches (globs; none given: every job) and what it requires.
    const std::pair<const char*, std::string Policy::*> policy_globs[] = {
        {"partition", &Policy::partition}, {"account", &Policy::account},
        {"qos", &Policy::qos},             {"checkpoint", &Policy::checkpoint},
    };
    std::size_t policies_line = 0;
    auto policy_of = [&](const Value& p) {
        if (!p.is_map)
            throw parser.error_at(p.line, "policies: expected a mapping (partition, account, qos, checkpoint, "
                                          "reviewers, quorum, owner_may_decide)");
        Policy policy;
        policy.where = path + ":" + std::to_string(p.line);
        for (const auto& [name, entry] : p.entries) {
            const std::string key = "policies." + name;
            try {
                std::string Policy::*glob = nullptr;
                for (const auto& [glob_key, field] : policy_globs)
                    if (name == glob_key) glob = field;
                if (glob) {
                    policy.*glob = scalar_of(key, entry);
                    if ((policy.*glob).empty())  // would match only an empty name
                        throw parser.error_at(entry.line, key + ": empty: leave the key out to match any");
                } else if (name == "reviewers") {
                    if (!entry.is_list)
                        throw parser.error_at(entry.line, key + ": expected a list [USER, @GROUP, ...]");
                    strings_of(key, entry);  // plain values only
                    for (const Value& element : entry.elements) {
                        const std::string& reviewer = element.items[0];
                        try {
                            check_reviewer_entry(reviewer);
                        } catch (const Error& e) {
                            throw parser.error_at(element.line, key + ": " + e.what());
                        }
                        const auto& seen = policy.reviewers;
                        if (std::find(seen.begin(), seen.end(), reviewer) != seen.end())
                            throw parser.error_at(element.line, key + ": " + quoted_text(reviewer) + " given twice");
                        policy.reviewers.push_back(reviewer);
                    }
                    if (policy.reviewers.size() > max_reviewers)
                        throw parser.error_at(entry.line, key + ": " + std::to_string(policy.reviewers.size()) +
                                                              " entries, at most " + std::to_string(max_reviewers));
                } else if (name == "quorum") {
                    policy.quorum = static_cast<std::uint32_t>(number_of(key, entry, 1, max_quorum));
                } else if (name == "owner_may_decide") {
                    const std::string value = scalar_of(key, entry);
                    if (value != "true" && value != "false")
                        throw parser.error_at(entry.line, key + ": bad value " + quoted_text(value) +
                                                              ": use true or false");
                    policy.owner_may_decide = value == "true";
                } else {
                    throw parser.error_at(entry.key_line, "unknown key \"" + key +
                                                              "\": allowed are partition, account, qos, checkpoint, "
                                                              "reviewers, quorum, owner_may_decide");
                }
            } catch (const Error& e) {
                if (e.kind() == ErrorKind::Config) throw;
                throw parser.error_at(entry.line, key + ": " + e.what());
            }
        }
        if (policy.reviewers.empty())
            throw parser.error_at(p.line, "policies: a policy needs reviewers: [USER, @GROUP, ...]");
        return policy;
    };
    // notify: the SMTP relay, the webhooks (each a channel name), which events, when to
    // remind, the default channels, and the sender's timing.
    std::size_t notify_line = 0, default_channels_line = 0;
    auto url_of = [&](const std::string& key, const Value& v, std::initializer_list<const char*> schemes) {
        const std::string url = scalar_of(key, v);
        std::string allowed;
        for (const char* scheme : schemes) {
            if (url.rfind(std::string(scheme) + "://", 0) == 0 && url.size() > std::strlen(scheme) + 3 &&
                url.find_first_of(" \t\r\n") == std::string::npos)
                return url;
            allowed += (allowed.empty() ? "" : " or ") + std::string(scheme) + "://HOST...";
        }
        throw parser.error_at(v.line, key + ": bad URL " + quoted_text(url) + ": use " + allowed);
    };
    auto one_of = [&](const std::string& key, const Value& v, std::initializer_list<const char*> allowed) {
        const std::string value = scalar_of(key, v);
        std::string list;
        for (const char* a : allowed) {
            if (value == a) return value;
            list += (list.empty() ? "" : ", ") + std::string(a);
        }
        throw parser.error_at(v.line, key + ": bad value " + quoted_text(value) + ": use one of " + list);
    };
    auto set_smtp = [&](const Value& v) {
        if (!v.is_map) throw parser.error_at(v.line, "notify.smtp: expected a mapping (url, from, domain, ...)");
        SmtpConfig& smtp = config.notify.smtp;
        for (const auto& [name, entry] : v.entries) {
            const std::string key = "notify.smtp." + name;
            if (name == "url") smtp.url = url_of(key, entry, {"smtp", "smtps"});
            else if (name == "from") smtp.from = scalar_of(key, entry);
            else if (name == "domain") smtp.domain = scalar_of(key, entry);
            else if (name == "starttls") smtp.starttls = one_of(key, entry, {"optional", "required", "off"});
            else if (name == "user") smtp.user = scalar_of(key, entry);
            else if (name == "password_file") smtp.password_file = absolute_path(scalar_of(key, entry), key);
            else
                throw parser.error_at(entry.key_line, "unknown key \"" + key +
                                                          "\": allowed are url, from, domain, starttls, user, "
                                                          "password_file");
        }
        if (smtp.url.empty()) throw parser.error_at(v.line, "notify.smtp: needs url: smtp://HOST:PORT");
        if (!valid_mail_address(smtp.from))
            throw parser.error_at(v.line, "notify.smtp.from: needs a mail address (hawf@cluster.example)");
        if (!valid_mail_address("user@" + smtp.domain))
            throw parser.error_at(v.line, "notify.smtp.domain: needs the domain of the users' addresses (example.org)");
        if (!smtp.password_file.empty() && smtp.user.empty())
            throw parser.error_at(v.line, "notify.smtp.password_file: needs user");
    };
    auto webhook_of = [&](const std::string& name, const Value& v) {
        const std::string key = "notify.webhooks." + name;
        try {
            check_name(name, "channel name");
        } catch (const Error& e) {
            throw parser.error_at(v.key_line, key + ": " + e.what());
        }
        if (name == "mail" || name == "none")
            throw parser.error_at(v.key_line, key + ": \"" + name + "\" is reserved: name the webhook otherwise");
        if (!v.is_map) throw parser.error_at(v.line, key + ": expected a mapping (url or url_file, format)");
        WebhookConfig hook;
        hook.name = name;
        for (const auto& [field, entry] : v.entries) {
            const std::string fkey = key + "." + field;
            if (field == "url") hook.url = url_of(fkey, entry, {"https", "http"});
            else if (field == "url_file") hook.url_file = absolute_path(scalar_of(fkey, entry), fkey);
            else if (field == "format") hook.format = one_of(fkey, entry, {"slack", "mattermost", "json"});
            else
                throw parser.error_at(entry.key_line, "unknown key \"" + fkey + "\": allowed are url, url_file, format");
        }
        if (hook.url.empty() == hook.url_file.empty())
            throw parser.error_at(v.line, key + ": give url or url_file (a root-only file holding the URL), not both");
        return hook;
    };
    auto set_notify = [&](const Value& v) {
        if (!v.is_map)
            throw parser.error_at(v.line, "notify: expected a mapping (smtp, webhooks, events, remind_before, ...)");
        notify_line = v.key_line;
        NotifyConfig& notify = config.notify;
        for (const auto& [name, entry] : v.entries) {
            const std::string key = "notify." + name;
            try {
                if (name == "smtp") {
                    set_smtp(entry);
                } else if (name == "webhooks") {
                    if (!entry.is_map) throw parser.error_at(entry.line, key + ": expected a mapping of NAME: {url, format}");
                    for (const auto& [hook_name, hook] : entry.entries) notify.webhooks.push_back(webhook_of(hook_name, hook));
                } else if (name == "events") {
                    notify.events.clear();
                    for (const Value& element : entry.elements.empty() && !entry.is_list ? std::vector<Value>{entry}
                                                                                         : entry.elements) {
                        const std::string event = one_of(key, element, {"pending", "reminder", "decided", "timeout", "failed"});
                        if (std::find(notify.events.begin(), notify.events.end(), event) != notify.events.end())
                            throw parser.error_at(element.line, key + ": " + quoted_text(event) + " given twice");
                        notify.events.push_back(event);
                    }
                } else if (name == "remind_before") {
                    for (const std::string& d : strings_of(key, entry)) notify.remind_before_s.push_back(parse_duration(d));
                } else if (name == "default") {
                    notify.default_channels = parse_notify_channels(joined(strings_of(key, entry), ","));
                    default_channels_line = entry.line;
                } else if (name == "timeout") {
                    notify.timeout_s = parse_duration(scalar_of(key, entry));
                } else if (name == "retry_for") {
                    notify.retry_for_s = parse_duration(scalar_of(key, entry));
                } else if (name == "rescan") {
                    notify.rescan_s = parse_duration(scalar_of(key, entry));
                } else {
                    throw parser.error_at(entry.key_line, "unknown key \"" + key +
                                                              "\": allowed are smtp, webhooks, events, remind_before, "
                                                              "default, timeout, retry_for, rescan");
                }
            } catch (const Error& e) {
                if (e.kind() == ErrorKind::Config) throw;
                throw parser.error_at(entry.line, key + ": " + e.what());
            }
        }
        if (!notify.configured())
            throw parser.error_at(v.line, "notify: needs smtp: or webhooks: (where to send)");
        if (notify.timeout_s < 1) throw parser.error_at(v.line, "notify.timeout: at least 1s");
        if (default_channels_line == 0 && !notify.smtp.url.empty()) notify.default_channels = {"mail"};
    };
    parser.parse([&](const std::string& key, const Value& v) {
        auto scalar = [&] { return scalar_of(key, v); };
        try {
            if (key == "spool") {
                config.spool = absolute_path(scalar(), "spool");
            } else if (key == "local_jobs") {
                config.local_jobs = absolute_path(scalar(), "local_jobs");
            } else if (key == "default_options") {
                config.default_options = parse_choices(joined(strings_of(key, v), ","), "default_options");
                options_line = v.key_line;
            } else if (key == "max_param_bytes" || key == "max_comment_bytes") {
                set_limit(key, v, key);  // the older spelling, outside limits:
            } else if (key == "limits") {
                if (!v.is_map) throw parser.error_at(v.line, "limits: expected a mapping of limit: number");
                for (const auto& [name, entry] : v.entries)
                    if (!set_limit(name, entry, "limits." + name))
                        throw parser.error_at(entry.key_line, "unknown key \"limits." + name +
                                                                  "\": allowed are max_param_bytes, max_comment_bytes, "
                                                                  "max_options, max_params, max_checkpoints, "
                                                                  "max_record_bytes, max_events");
            } else if (key == "poll_interval") {
                config.poll_interval_s = parse_duration(scalar());
            } else if (key == "hawfd") {
                if (!v.is_map) throw parser.error_at(v.line, "hawfd: expected a mapping of key: value");
                for (const auto& [name, entry] : v.entries) set_hawfd(name, entry);
            } else if (key == "notify") {
                set_notify(v);
            } else if (key == "policies") {
                if (!v.is_list)
                    throw parser.error_at(v.line, "policies: expected a list of policies (- reviewers: [...])");
                for (const Value& element : v.elements) config.policies.push_back(policy_of(element));
                policies_line = v.key_line;
            } else {
                throw parser.error_at(v.key_line, "unknown key \"" + key +
                                                  "\": allowed are spool, default_options, limits, "
                                                  "poll_interval, hawfd, policies, notify, local_jobs");
            }
        } catch (const Error& e) {
            mistake(e.kind() == ErrorKind::Config ? e : parser.error_at(v.line, e.what()));
        }
    });
    if (!config.local_jobs.empty() && config.hawfd_configured())
        mistake(Error(ErrorKind::Config, path + ": local_jobs (no Slurm: jobs run on this machine) and hawfd "
                                                "(reviewers through Slurm's munge) do not go together"));
    // Reviewers decide through hawfd: a policy without it would stop every job it matches.
    if (!config.policies.empty() && !config.hawfd_configured())
        mistake(parser.error_at(policies_line, "policies need hawfd: set hawfd.address"));
    // hawfd sends them, and learns of events from the tools' and the plugin's nudges.
    if (config.notify.configured() && !config.hawfd_configured())
        mistake(parser.error_at(notify_line, "notify needs hawfd: set hawfd.address"));
    if (default_channels_line) try {
            check_notify_channels(config.notify, config.notify.default_channels, path);
        } catch (const Error& e) {
            mistake(parser.error_at(default_channels_line, std::string("notify.default: ") + e.what()));
        }
    // Checkpoints that take the default options must be possible at all.
    if (config.default_options.size() > config.limits.max_options)
        mistake(parser.error_at(options_line, "default_options: " + std::to_string(config.default_options.size()) +
                                                  " choices, " +
                                                  at_most(config.limits.max_options, "max_options", config.limits)));
    return config;
}

bool NotifyConfig::wants(const std::string& event) const {
    return std::find(events.begin(), events.end(), event) != events.end();
}

const WebhookConfig* NotifyConfig::webhook(const std::string& name) const {
    for (const auto& hook : webhooks)
        if (hook.name == name) return &hook;
    return nullptr;
}

std::vector<std::string> NotifyConfig::channels() const {
    std::vector<std::string> names;
    if (!smtp.url.empty()) names.push_back("mail");
    for (const auto& hook : webhooks) names.push_back(hook.name);
    return names;
}

void check_notify_channels(const NotifyConfig& notify, const std::vector<std::string>& channels,
                           const std::string& config_path) {
    if (channels == std::vector<std::string>{"none"}) return;
    if (!notify.configured())
        throw Error(ErrorKind::Usage, "no notifications are configured (no notify: in " + config_path +
                                          "): leave --hawf-notify out");
    const std::vector<std::string> offered = notify.channels();
    for (const auto& channel : channels)
        if (std::find(offered.begin(), offered.end(), channel) == offered.end())
            throw Error(ErrorKind::Usage, "no channel " + quoted_text(channel) + " in " + config_path +
                                              ": use " + joined(offered) + " or none");
}

void apply_policies(const std::vector<Policy>& policies, const JobFacts& job, CheckpointSpec& spec) {
    const auto matches = [](const std::string& glob, const std::string& value) {
        return glob.empty() || fnmatch(glob.c_str(), value.c_str(), 0) == 0;
    };
    for (const Policy& p : policies) {
        if (!matches(p.partition, job.partition) || !matches(p.account, job.account) || !matches(p.qos, job.qos) ||
            !matches(p.checkpoint, spec.id.name))
            continue;
        // Its own requirement, never merged with the job's: the job's reviewers must
        // not count towards a policy's quorum, nor a policy's quorum be lowered.
        spec.required.push_back(CheckpointSpec::Requirement{p.reviewers, p.quorum, p.where});
        spec.owner_may_decide = spec.owner_may_decide && p.owner_may_decide;
    }
}

}  // namespace hawf
