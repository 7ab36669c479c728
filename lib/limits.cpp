#include "limits.hpp"

namespace hawf {

Limits Limits::ceilings() {
    Limits c;
    c.max_param_bytes = 1 << 20;
    c.max_comment_bytes = 1 << 24;
    c.max_options = 1024;
    c.max_params = 1024;
    c.max_checkpoints = 10000000;
    c.max_record_bytes = 1 << 26;
    c.max_events = 1000000;
    c.source.clear();
    return c;
}

std::string at_most(std::size_t limit, const char* key, const Limits& limits) {
    return "at most " + std::to_string(limit) +
           (limits.source.empty() ? std::string(" (the built-in ceiling of limits.") + key + ")"
                                  : std::string(" (limits.") + key + " in " + limits.source + ")");
}

void check_checkpoint_count(std::size_t count, const Limits& limits, ErrorKind kind) {
    if (count > limits.max_checkpoints)
        throw Error(kind, std::to_string(count) + " checkpoints of one user, " +
                              at_most(limits.max_checkpoints, "max_checkpoints", limits) +
                              ": decide or remove old ones (hawf gc)");
}

void check_event_count(std::size_t count, const Limits& limits, ErrorKind kind) {
    if (count > limits.max_events)
        throw Error(kind, std::to_string(count) + " events in one checkpoint, " +
                              at_most(limits.max_events, "max_events", limits));
}

void check_record_size(std::size_t bytes, const Limits& limits, ErrorKind kind) {
    if (bytes > limits.max_record_bytes)
        throw Error(kind, "a record of " + std::to_string(bytes) + " bytes, " +
                              at_most(limits.max_record_bytes, "max_record_bytes", limits));
}

}  // namespace hawf
