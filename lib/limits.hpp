// The limits of hawf.yaml (limits:) and the refusals that name them.
#pragma once

#include <cstddef>
#include <string>

#include "error.hpp"

namespace hawf {

// What one user may put in the spool, from hawf.yaml (limits:). Checked when a
// value is submitted and again when it is read, so no user's tree can make another
// user's or root's command slow or large.
struct Limits {
    std::size_t max_param_bytes = 4096;     // a parameter value
    std::size_t max_comment_bytes = 65536;  // a decision's comment
    std::size_t max_options = 32;           // a checkpoint's choices; the values of an enum parameter
    std::size_t max_params = 32;            // a checkpoint's parameters
    std::size_t max_checkpoints = 10000;    // a user's checkpoints in the spool
    std::size_t max_record_bytes = 262144;  // an event file, as written and read
    std::size_t max_events = 1000;          // the events of one checkpoint
    std::string source = HAWF_DEFAULT_CONF; // where they were set, named in refusals

    // The largest value hawf.yaml may give each limit: what a record read back from
    // disk is held to whatever the configuration says.
    static Limits ceilings();
};

// A refusal naming the limit: "at most 32 (limits.max_options in /etc/hawf/hawf.yaml)".
std::string at_most(std::size_t limit, const char* key, const Limits& limits);

// COUNT is how many checkpoints a user has, or will have with a new one: refused
// (Error of KIND) when more than limits.max_checkpoints.
void check_checkpoint_count(std::size_t count, const Limits& limits, ErrorKind kind = ErrorKind::Denied);
// The same for the events of one checkpoint (limits.max_events) and the size of one
// event file (limits.max_record_bytes).
void check_event_count(std::size_t count, const Limits& limits, ErrorKind kind = ErrorKind::Denied);
void check_record_size(std::size_t bytes, const Limits& limits, ErrorKind kind = ErrorKind::Denied);

}  // namespace hawf
