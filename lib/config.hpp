// hawf.yaml, read by the plugin and by the tools. Unknown keys and bad values are
// errors naming the file and line, so a typo never silently changes behaviour.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "record.hpp"

namespace hawf {

constexpr const char* default_config_path = HAWF_DEFAULT_CONF;

struct Config {
    std::string path;                                        // where it was read from
    bool found = false;                                      // false: built-in defaults
    std::string spool = "/var/spool/hawf";
    std::vector<std::string> default_options = {"approve", "reject"};
    Limits limits;
    std::int64_t poll_interval_s = 2;                        // hawf-await's re-check period
};

// Reads PATH; a missing file gives the defaults (found = false). Throws Error(Config).
Config load_config(const std::string& path);

// The path the tools use: $HAWF_CONF if set, else default_config_path.
std::string config_path_from_env();

}  // namespace hawf
