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

struct Config {
    std::string path;                                        // where it was read from
    bool found = false;                                      // false: built-in defaults
    std::string spool = "/var/spool/hawf";
    std::vector<std::string> default_options = {"approve", "reject"};
    Limits limits;
    std::int64_t poll_interval_s = 2;                        // hawf-await's re-check period
    HawfdConfig hawfd;

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

// Reads PATH; a missing file gives the defaults (found = false). Throws Error(Config).
Config load_config(const std::string& path);

// The path the tools use: $HAWF_CONF if set, else default_config_path.
std::string config_path_from_env();

}  // namespace hawf
