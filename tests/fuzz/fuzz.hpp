// What the libFuzzer targets share (docs/fuzzing.md). Each target feeds one parser of
// user or record input and checks what its header promises:
//
// - a refusal is a hawf::Error of the kind the parser documents (validate.hpp: Usage;
//   record.hpp: Untrusted; config.hpp: Config), one line (error.hpp: "Every refusal
//   is one line"): no newline, no other control character;
// - what is accepted survives the way back: written (to_json, the command line's
//   text) and read again, it is read the same;
// - anything else is a finding: another exception (uncaught here, so the stack
//   shows where it was thrown), a crash, a leak, undefined behaviour, a hang, or a
//   broken promise (finding(): an abort with one "hawf-fuzz:" line).
//
// HAWF_FUZZ_LENIENT=1 in the environment checks only what libFuzzer sees by itself:
// any hawf::Error is a refusal, whatever its kind and message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "error.hpp"

namespace hawf::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "\nhawf-fuzz: FINDING: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

inline const char* kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Usage: return "Usage";
        case ErrorKind::NotFound: return "NotFound";
        case ErrorKind::Conflict: return "Conflict";
        case ErrorKind::Denied: return "Denied";
        case ErrorKind::Untrusted: return "Untrusted";
        case ErrorKind::Config: return "Config";
        case ErrorKind::System: return "System";
    }
    return "?";
}

inline bool lenient() {
    static const bool value = [] {
        const char* env = std::getenv("HAWF_FUZZ_LENIENT");
        return env && *env && std::string(env) != "0";
    }();
    return value;
}

// TEXT shown with its control bytes escaped, for a finding's message.
inline std::string escaped(const std::string& text, std::size_t max = 300) {
    std::string out;
    char buf[8];
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f || c == '\\') std::snprintf(buf, sizeof buf, "\\x%02x", c), out += buf;
        else out += static_cast<char>(c);
    }
    return text.size() > max ? out + "..." : out;
}

// Index of the first C0 control character or DEL in TEXT, or npos.
inline std::size_t control_in(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) return i;
    }
    return std::string::npos;
}

// Runs F; true if it returned. A hawf::Error of one of KINDS with a one-line message
// is a refusal (false); any other hawf::Error is a finding. Other exceptions are not
// caught.
template <typename F>
bool accepted(std::initializer_list<ErrorKind> kinds, const char* what, F&& f) {
    try {
        std::forward<F>(f)();
        return true;
    } catch (const Error& e) {
        if (lenient()) return false;
        bool known = false;
        std::string allowed;
        for (ErrorKind k : kinds) {
            known = known || e.kind() == k;
            allowed += (allowed.empty() ? "" : " or ") + std::string(kind_name(k));
        }
        if (!known)
            finding(std::string(what) + " refused with an Error of kind " + kind_name(e.kind()) + " (documented: " +
                    allowed + "): " + escaped(e.what()));
        const std::string message = e.what();
        if (control_in(message) != std::string::npos)
            finding(std::string(what) + " refused with a message that is not one harmless line (control byte at " +
                    std::to_string(control_in(message)) + "): " + escaped(message));
        return false;
    }
}

// Runs F, which must not throw a hawf::Error (what was accepted once must be accepted
// again): a finding naming WHAT if it does.
template <typename F>
void must(const char* what, F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const Error& e) {
        finding(std::string(what) + ": " + kind_name(e.kind()) + " error: " + escaped(e.what()));
    }
}

inline void expect(bool ok, const std::string& what) {
    if (!ok) finding(what);
}

// JSON text as the spool writes it: strict, so bytes that are not UTF-8 throw
// (nlohmann::json::type_error, uncaught: a finding).
inline std::string written(const nlohmann::json& j) { return j.dump(); }

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace hawf::fuzz
