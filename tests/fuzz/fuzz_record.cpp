// One record (an event file of the spool), as a user can leave it in their own tree
// for root's and other users' commands to read: event_from_json, and spec_from_json
// on the same object (an "opened" event's spec). The input is the file's text; what
// nlohmann does not parse is the spool's "not JSON" refusal, not a finding.
//
// Accepted: written again (strictly, as the spool writes) and read back, it is read
// the same, and its fields pass the writer's checks (check_event_fields, spec.check).
#include <cstddef>
#include <cstdint>

#include "fuzz.hpp"
#include "record.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;
using nlohmann::json;

namespace {

void event(const json& j) {
    Event ev;
    if (!accepted({ErrorKind::Untrusted}, "event_from_json", [&] { ev = event_from_json(j); })) return;
    must("check_event_fields of an event read", [&] { check_event_fields(ev); });
    if (ev.spec) must("CheckpointSpec::check of a spec read", [&] { ev.spec->check(Limits::ceilings()); });
    const json out = to_json(ev);
    const std::string text = fuzz::written(out);
    Event back;
    must("event_from_json of an event written", [&] { back = event_from_json(json::parse(text)); });
    expect(to_json(back) == out, "an event read, written and read again differs: " + fuzz::escaped(text));
    expect(back.type == ev.type && back.seq == ev.seq && back.at == ev.at, "event header changed on the way back");
}

void spec(const json& j) {
    CheckpointSpec s;
    if (!accepted({ErrorKind::Untrusted}, "spec_from_json", [&] { s = spec_from_json(j); })) return;
    must("CheckpointSpec::check of a spec read", [&] { s.check(Limits::ceilings()); });
    const json out = to_json(s);
    const std::string text = fuzz::written(out);
    CheckpointSpec back;
    must("spec_from_json of a spec written", [&] { back = spec_from_json(json::parse(text)); });
    expect(to_json(back) == out, "a spec read, written and read again differs: " + fuzz::escaped(text));
    expect(back.id == s.id && back.options == s.options && back.params == s.params,
           "spec changed on the way back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // As the spool reads a record.
    const json j = parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
    if (j.is_discarded()) return 0;
    event(j);
    if (j.is_object()) spec(j.contains("spec") ? j["spec"] : j);
    return 0;
}
