// The one error type of hawf. Every refusal is one line naming the bad value and
// what is allowed; the kind decides the exit status of the tools.
#pragma once

#include <stdexcept>
#include <string>

namespace hawf {

enum class ErrorKind {
    Usage,      // bad command line or bad value given by the user (exit 2)
    NotFound,   // no such checkpoint, file or user (exit 1)
    Conflict,   // state does not allow it: already decided, lost a race (exit 1)
    Denied,     // caller may not do this (exit 1)
    Untrusted,  // a spool entry fails the ownership/mode/symlink checks (exit 1)
    Config,     // hawf.yaml is unreadable or invalid (exit 1)
    System,     // an OS call failed (exit 1)
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

// An Error of kind System for a failed OS call: "WHAT: strerror(errno)".
Error system_error(const std::string& what, int errnum);

}  // namespace hawf
