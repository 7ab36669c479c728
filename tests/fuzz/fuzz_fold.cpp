// A checkpoint's history: a JSON array of events (each as an event file holds it),
// those that event_from_json reads folded in order (fold), as Spool::load does with a
// user's log directory. Elements that are not events are left out, so a mutation
// that breaks one event still folds the others.
//
// Folded: the state and the decision in force agree; every prefix of the history
// folds too (a crash between two writes leaves one); written and read back, the
// events fold to the same checkpoint; what the tools print and deliver from it
// (decision_json, decided_by, deadline) is computed and can be written.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz.hpp"
#include "record.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;
using nlohmann::json;

namespace {

// What a checkpoint shows: its spec, state, decision and follow-ups.
json summary(const Checkpoint& c) {
    json followups = json::array();
    for (const auto& f : c.followups) followups.push_back({f.job, f.script, f.on, c.releasing_choices(f)});
    json approvals = json::array();
    for (const auto& a : c.approvals) approvals.push_back(a.seq);
    json nodes = json::object();
    for (const auto& [node, status] : c.nodes_ended) nodes[std::to_string(node)] = status;
    return {{"spec", to_json(c.spec)},   {"state", to_string(c.state)},  {"decision", decision_json(c)},
            {"followups", followups},    {"approvals", approvals},       {"nodes", nodes},
            {"deadline", c.deadline()},  {"pending_since", c.pending_since}, {"last", c.last_seq()}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // As the spool reads a record.
    const json j = parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!j.is_array()) return 0;
    std::vector<Event> events;
    for (const json& element : j) {
        Event ev;
        if (accepted({ErrorKind::Untrusted}, "event_from_json", [&] { ev = event_from_json(element); }))
            events.push_back(std::move(ev));
    }
    Checkpoint ckpt;
    if (!accepted({ErrorKind::Untrusted}, "fold", [&] { ckpt = fold(events); })) return 0;

    const bool decided_state = ckpt.state == State::Decided || ckpt.state == State::Applied;
    expect(decided_state == ckpt.decided.has_value(),
           "state " + to_string(ckpt.state) + " with" + (ckpt.decided ? "" : "out") + " a decision in force");
    expect(!ckpt.decided || ckpt.decision() != nullptr, "a decided event without a decision in force");
    expect(ckpt.history.size() == events.size(), "fold lost events");
    const json shown = summary(ckpt);
    fuzz::written(shown);
    fuzz::written(decision_json(ckpt));
    ckpt.decided_by();

    // Every prefix folds (at most 32 of them, to stay fast).
    for (std::size_t n = events.size() > 32 ? events.size() - 32 : 1; n < events.size(); ++n)
        must("fold of a prefix of a history that folds",
             [&] { fold(std::vector<Event>(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(n))); });

    // Written and read back as the spool does, the same checkpoint.
    std::vector<Event> back;
    must("event_from_json of an event written", [&] {
        for (const Event& ev : events) back.push_back(event_from_json(json::parse(fuzz::written(to_json(ev)))));
    });
    Checkpoint again;
    must("fold of the events written and read back", [&] { again = fold(back); });
    expect(summary(again) == shown, "the checkpoint folded from its events written and read back differs");
    return 0;
}
