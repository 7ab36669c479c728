// A decision as hawf-decide takes it: a checkpoint declared with --hawf-params and
// --hawf-options, then the choice, the comment (-m) and --set KEY=VALUE values.
// check_decision (with check_param_value and parse_assignment) either refuses with
// Error(Usage) or takes a decision that the spool can write and read back.
//
// The input is split with FuzzedDataProvider's ConsumeRandomLengthString: fields end
// with a backslash and one more character (the seeds end each field with "\" and a
// newline; "\\" is a backslash): params, options, choice, comment, then KEY=VALUE
// assignments to the end.
//
// Accepted: the checkpoint's history (opened, pending, decided), written as the
// spool writes it and read back, folds to this very decision, and decision_json (the
// file a follow-up gets) can be written.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz.hpp"
#include "record.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;
using nlohmann::json;

namespace {

constexpr auto Usage = ErrorKind::Usage;

Event event(std::uint64_t seq, EventType type) {
    Event ev;
    ev.seq = seq;
    ev.type = type;
    ev.at = 1790000000 + static_cast<std::int64_t>(seq);
    ev.by = "alice";
    ev.by_uid = 1001;
    ev.via = type == EventType::Decided ? Via::Cli : Via::Plugin;
    ev.host = "node1";
    return ev;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::string params_text = in.ConsumeRandomLengthString();
    const std::string options_text = in.ConsumeRandomLengthString();
    Decision decision;
    decision.choice = in.ConsumeRandomLengthString();
    decision.comment = in.ConsumeRandomLengthString();

    CheckpointSpec spec;
    spec.id = CheckpointId{"4242", "eval"};
    spec.owner_uid = 1001;
    spec.owner = "alice";
    spec.scope = Scope::Job;
    const Limits limits;  // the defaults of hawf.yaml
    if (!accepted({Usage}, "the checkpoint's declaration", [&] {
            spec.options = parse_choices(options_text);
            if (!params_text.empty()) spec.params = parse_param_specs(params_text);
            spec.check(limits);
        }))
        return 0;
    while (in.remaining_bytes() > 0) {
        const std::string assignment = in.ConsumeRandomLengthString();
        std::pair<std::string, std::string> kv;
        if (accepted({Usage}, "parse_assignment", [&] { kv = parse_assignment(assignment); }))
            decision.params[kv.first] = kv.second;
    }
    if (!accepted({Usage}, "check_decision", [&] { check_decision(spec, decision, limits); })) return 0;
    for (const auto& param : decision.params) {
        std::string checked;
        must("check_param_value of a value check_decision took",
             [&] { checked = check_param_value(*spec.param(param.first), param.second, limits.max_param_bytes); });
        expect(checked == param.second, "check_param_value changed the value");
    }

    Event opened = event(1, EventType::Opened);
    opened.spec = spec;
    Event decided = event(3, EventType::Decided);
    decided.decision = decision;
    std::vector<Event> back;
    for (const Event& ev : {opened, event(2, EventType::Pending), decided}) {
        const std::string text = fuzz::written(to_json(ev));  // strict: as Spool::append writes
        expect(text.size() + 1 <= limits.max_record_bytes, "a decision taken makes a record larger than allowed");
        must("event_from_json of an event written", [&] { back.push_back(event_from_json(json::parse(text))); });
    }
    Checkpoint ckpt;
    must("fold of a history with a decision taken", [&] { ckpt = fold(back); });
    expect(ckpt.state == State::Decided && ckpt.decision(), "the decision taken is not in force");
    const Decision& read = *ckpt.decision();
    expect(read.choice == decision.choice && read.params == decision.params && read.comment == decision.comment,
           "the decision read back differs from the one taken");
    fuzz::written(decision_json(ckpt));
    return 0;
}
