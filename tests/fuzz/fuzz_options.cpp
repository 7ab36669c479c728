// The values of the --hawf-* options and of the tools' arguments (validate.hpp,
// review.hpp): each parser and check on the same input text. Every one either
// returns a well-formed value or refuses with Error(Usage).
//
// Accepted: the value is the text (joined back, it is the input), and a checkpoint
// declared with it is written and read back the same: what the command line takes,
// the record reader (spec_from_json) takes too.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "fuzz.hpp"
#include "record.hpp"
#include "review.hpp"
#include "validate.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;
using nlohmann::json;

namespace {

constexpr auto Usage = ErrorKind::Usage;

CheckpointSpec base_spec() {
    CheckpointSpec spec;
    spec.id = CheckpointId{"4242_7", "eval"};
    spec.owner_uid = 1001;
    spec.owner = "alice";
    spec.scope = Scope::Job;
    spec.options = {"approve", "reject"};
    return spec;
}

// SPEC, declared on a command line, is checked as the plugin checks it and, if
// accepted, written and read back the same.
void declared(const CheckpointSpec& spec, const char* what) {
    if (!accepted({Usage}, what, [&] { spec.check(Limits::ceilings()); })) return;
    const json out = to_json(spec);
    CheckpointSpec back;
    must(what, [&] { back = spec_from_json(json::parse(fuzz::written(out))); });
    fuzz::expect(to_json(back) == out, std::string(what) + ": read back differently: " + fuzz::escaped(out.dump()));
}

void choices(const std::string& text) {
    std::vector<std::string> parsed;
    if (!accepted({Usage}, "parse_choices", [&] { parsed = parse_choices(text); })) return;
    expect(joined(parsed, ",") == text, "parse_choices does not give back its text");
    expect(std::set<std::string>(parsed.begin(), parsed.end()).size() == parsed.size(), "parse_choices: duplicates");
    for (const auto& c : parsed) must("check_name of a choice", [&] { check_name(c); });
    CheckpointSpec spec = base_spec();
    spec.options = parsed;
    declared(spec, "--hawf-options");
    spec.timeout_s = 3600;
    spec.default_choice = parsed.back();
    declared(spec, "--hawf-options with --hawf-default");
}

void notify(const std::string& text) {
    std::vector<std::string> parsed;
    if (!accepted({Usage}, "parse_notify_channels", [&] { parsed = parse_notify_channels(text); })) return;
    expect(joined(parsed, ",") == text, "parse_notify_channels does not give back its text");
    expect(parsed.size() <= 16, "more than 16 channels");
    CheckpointSpec spec = base_spec();
    spec.notify = parsed;
    declared(spec, "--hawf-notify");
}

void params(const std::string& text) {
    std::vector<ParamSpec> parsed;
    if (!accepted({Usage}, "parse_param_specs", [&] { parsed = parse_param_specs(text); })) return;
    std::string again;
    for (const auto& p : parsed) again += (again.empty() ? "" : ",") + p.key + ":" + p.type_text();
    std::vector<ParamSpec> reparsed;
    must("parse_param_specs of the declarations written back", [&] { reparsed = parse_param_specs(again); });
    expect(reparsed == parsed, "parse_param_specs reads its declarations written back differently");
    for (const auto& p : parsed) {
        ParamSpec one;
        must("parse_param_spec of one declaration", [&] { one = parse_param_spec(p.key + ":" + p.type_text()); });
        expect(one == p, "parse_param_spec differs from parse_param_specs");
    }
    CheckpointSpec spec = base_spec();
    spec.params = parsed;
    declared(spec, "--hawf-params");
}

void then(const std::string& text) {
    ThenSpec parsed;
    if (!accepted({Usage}, "parse_then", [&] { parsed = parse_then(text); })) return;
    const std::string again = parsed.script + (parsed.on.empty() ? "" : ":" + joined(parsed.on, ","));
    expect(again == text, "parse_then does not give back its text");
    must("check_path of a --hawf-then script", [&] { check_path(parsed.script, "script"); });
    CheckpointSpec spec = base_spec();
    if (!parsed.on.empty()) spec.options = parsed.on;
    spec.then = {parsed};
    declared(spec, "--hawf-then");
}

void reviewers(const std::string& text) {
    // Syntax first, without NSS; then parse_reviewers (which asks NSS) only for what
    // passes it, so the run stays fast.
    std::vector<std::string> parsed;
    if (!accepted({Usage}, "check_reviewer_entry", [&] {
            for (std::size_t start = 0;;) {
                const std::size_t comma = text.find(',', start);
                check_reviewer_entry(text.substr(start, comma - start));
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        }))
        return;
    if (!accepted({Usage}, "parse_reviewers", [&] { parsed = parse_reviewers(text); })) return;
    expect(joined(parsed, ",") == text, "parse_reviewers does not give back its text");
    CheckpointSpec spec = base_spec();
    spec.reviewers = parsed;
    spec.quorum = 1;
    declared(spec, "--hawf-reviewers");
}

void quorum(const std::string& text) {
    std::uint32_t n = 0;
    if (!accepted({Usage}, "parse_quorum", [&] { n = parse_quorum(text); })) return;
    expect(n >= 1 && n <= max_quorum, "parse_quorum out of range");
}

// Names and texts stored in records: what passes the check can be written as JSON.
void stored(const std::string& text) {
    const auto storable = [&] { fuzz::written(json(text)); };  // strict: throws on what JSON cannot hold
    if (accepted({Usage}, "check_name", [&] { check_name(text); })) {
        storable();
        expect(text != "." && text != ".." && text.find('/') == std::string::npos, "check_name takes a path");
    }
    if (accepted({Usage}, "check_job_id", [&] { check_job_id(text); })) storable();
    if (accepted({Usage}, "check_user_name", [&] { check_user_name(text); })) {
        storable();
        expect(text.find('/') == std::string::npos && text[0] != '-', "check_user_name takes a path or an option");
    }
    if (accepted({Usage}, "check_host_name", [&] { check_host_name(text); })) storable();
    if (accepted({Usage}, "check_path", [&] { check_path(text, "path"); })) storable();
    if (accepted({Usage}, "check_utf8", [&] { check_utf8(text, "text"); })) storable();
    if (accepted({Usage}, "check_signal", [&] { check_signal(text); })) storable();
    std::pair<std::string, std::string> kv;
    if (accepted({Usage}, "parse_assignment", [&] { kv = parse_assignment(text); }))
        expect(kv.first + "=" + kv.second == text, "parse_assignment does not give back its text");
    valid_mail_address(text);
}

// quoted_text is how every refusal echoes a value: one harmless line.
void quoted(const std::string& text) {
    const std::string q = quoted_text(text);
    expect(q.size() >= 2 && q.front() == '"' && q.back() == '"', "quoted_text is not in quotes");
    expect(fuzz::control_in(q) == std::string::npos, "quoted_text lets a control character through: " + fuzz::escaped(q));
    expect(q.size() <= 90, "quoted_text is longer than its cut");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    choices(text);
    notify(text);
    params(text);
    then(text);
    reviewers(text);
    quorum(text);
    stored(text);
    quoted(text);
    return 0;
}
