// Durations (--hawf-timeout, poll_interval, notify.remind_before: parse_duration) and
// the times of records ("at": parse_time), on the same input text.
//
// Accepted: a duration is more than 0 and at most 365d, and format_duration gives a
// text that parses to it again; a time is exactly what format_time writes for it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz.hpp"
#include "record.hpp"
#include "validate.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    std::int64_t seconds = 0;
    if (accepted({ErrorKind::Usage}, "parse_duration", [&] { seconds = parse_duration(text); })) {
        expect(seconds > 0 && seconds <= max_duration_s, "parse_duration out of range: " + std::to_string(seconds));
        const std::string shown = format_duration(seconds);
        std::int64_t again = 0;
        must("parse_duration of format_duration", [&] { again = parse_duration(shown); });
        expect(again == seconds, "format_duration " + shown + " parses to another duration");
    }
    std::int64_t at = 0;
    if (accepted({ErrorKind::Untrusted}, "parse_time", [&] { at = parse_time(text); })) {
        expect(format_time(at) == text, "parse_time takes a text format_time does not write");
        format_local_time(at);
    }
    return 0;
}
