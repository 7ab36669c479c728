// record.hpp: the JSON event format and the fold that derives a checkpoint's state.
#include "record.hpp"

#include <gtest/gtest.h>

#include "error.hpp"
#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using nlohmann::json;
using Strings = std::vector<std::string>;

CheckpointSpec make_spec() {
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id("4242_3:eval");
    spec.owner_uid = 1001;
    spec.owner = "alice";
    spec.scope = Scope::Job;
    spec.options = {"approve", "reject", "retry"};
    spec.params = parse_param_specs("lr:float,epochs:int,mode:enum(fast|slow),note:string,resume:bool");
    spec.timeout_s = 86400;
    spec.default_choice = "reject";
    spec.then = {parse_then("next.sbatch:approve,retry"), parse_then("/abs/cleanup.sh")};
    return spec;
}

Event make_event(std::uint64_t seq, EventType type) {
    Event ev;
    ev.seq = seq;
    ev.type = type;
    ev.at = 1790000000 + static_cast<std::int64_t>(seq) * 60;
    ev.by = "alice";
    ev.by_uid = 1001;
    ev.via = Via::Cli;
    ev.host = "login1";
    if (type == EventType::Opened) {
        ev.spec = make_spec();
        ev.via = Via::Plugin;
    }
    if (type == EventType::Decided || type == EventType::Amended) ev.decision = Decision{"approve", {}, ""};
    if (type == EventType::Applied) ev.job = "4243";
    return ev;
}

Event decided(std::uint64_t seq, EventType type, const std::string& choice,
              std::map<std::string, std::string> params = {}, const std::string& comment = "") {
    Event ev = make_event(seq, type);
    ev.decision = Decision{choice, std::move(params), comment};
    return ev;
}

// Serialises and parses back, through text, as the spool does.
Event round_trip(const Event& ev) { return event_from_json(json::parse(to_json(ev).dump())); }

// ---------------------------------------------------------------- JSON

TEST(RecordJson, OpenedWithSpecRoundTrips) {
    const Event ev = make_event(1, EventType::Opened);
    const Event back = round_trip(ev);
    EXPECT_EQ(to_json(back), to_json(ev));
    ASSERT_TRUE(back.spec);
    const CheckpointSpec& s = *back.spec;
    EXPECT_EQ(s.id, parse_checkpoint_id("4242_3:eval"));
    EXPECT_EQ(s.owner_uid, 1001u);
    EXPECT_EQ(s.owner, "alice");
    EXPECT_EQ(s.scope, Scope::Job);
    EXPECT_EQ(s.options, (std::vector<std::string>{"approve", "reject", "retry"}));
    ASSERT_EQ(s.params.size(), 5u);
    EXPECT_EQ(s.params[2].type_text(), "enum(fast|slow)");
    EXPECT_EQ(s.params, make_spec().params);
    EXPECT_EQ(s.timeout_s, 86400);
    EXPECT_EQ(s.default_choice, "reject");
    ASSERT_EQ(s.then.size(), 2u);
    EXPECT_EQ(s.then[0].script, "next.sbatch");
    EXPECT_EQ(s.then[0].on, (std::vector<std::string>{"approve", "retry"}));
    EXPECT_EQ(s.then[1].script, "/abs/cleanup.sh");
    EXPECT_TRUE(s.then[1].on.empty());
    EXPECT_EQ(back.at, ev.at);
    EXPECT_EQ(back.seq, 1u);
    EXPECT_EQ(back.type, EventType::Opened);
    EXPECT_EQ(back.via, Via::Plugin);
    EXPECT_EQ(back.host, "login1");
}

TEST(RecordJson, DecidedWithParamsAndCommentRoundTrips) {
    const std::string tricky = "line1\nline2 \"quoted\" a=b 'x' \\ \xc3\xa9";
    const Event ev = decided(3, EventType::Decided, "retry",
                             {{"lr", "1e-4"}, {"note", tricky}, {"mode", "slow"}}, "looks good\nsecond line");
    const Event back = round_trip(ev);
    EXPECT_EQ(to_json(back), to_json(ev));
    ASSERT_TRUE(back.decision);
    EXPECT_EQ(back.type, EventType::Decided);
    EXPECT_EQ(back.decision->choice, "retry");
    EXPECT_EQ(back.decision->params.at("lr"), "1e-4");
    EXPECT_EQ(back.decision->params.at("note"), tricky);
    EXPECT_EQ(back.decision->params.at("mode"), "slow");
    EXPECT_EQ(back.decision->comment, "looks good\nsecond line");
    EXPECT_FALSE(back.spec);
}

TEST(RecordJson, FailedKeepsExitStatus) {
    Event ev = make_event(2, EventType::Failed);
    ev.exit_status = 3 << 8;
    ev.via = Via::Plugin;
    const Event back = round_trip(ev);
    EXPECT_EQ(back.type, EventType::Failed);
    EXPECT_EQ(back.exit_status, 3 << 8);
    EXPECT_EQ(to_json(back), to_json(ev));
}

TEST(RecordJson, EveryEventTypeRoundTrips) {
    for (EventType t : {EventType::Pending, EventType::Revoked, EventType::Applied}) {
        const Event ev = make_event(5, t);
        const Event back = round_trip(ev);
        EXPECT_EQ(back.type, t);
        EXPECT_EQ(to_json(back), to_json(ev));
        EXPECT_EQ(to_json(ev)["event"], to_string(t));
    }
}

TEST(RecordJson, WireFormat) {
    const json j = to_json(make_event(1, EventType::Opened));
    EXPECT_EQ(j["v"], 1);
    EXPECT_EQ(j["event"], "opened");
    EXPECT_EQ(j["at"], format_time(1790000060));
    EXPECT_EQ(j["spec"]["checkpoint"], "4242_3:eval");
    EXPECT_EQ(j["spec"]["params"][2]["type"], "enum(fast|slow)");
}

TEST(RecordJson, RefusesUnknownEventType) {
    json j = to_json(make_event(2, EventType::Pending));
    j["event"] = "exploded";
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "exploded");
}

TEST(RecordJson, RefusesOtherVersions) {
    for (int v : {0, 2, -1}) {
        json j = to_json(make_event(2, EventType::Pending));
        j["v"] = v;
        EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "version");
    }
    json j = to_json(make_event(2, EventType::Pending));
    j.erase("v");
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"v\"");
    j["v"] = "1";
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"v\"");
}

TEST(RecordJson, RefusesMissingOrMistypedFields) {
    json j = to_json(make_event(2, EventType::Pending));
    j.erase("seq");
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"seq\"");
    j = to_json(make_event(2, EventType::Pending));
    j["by"] = 5;
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"by\"");
    j = to_json(decided(3, EventType::Decided, "approve"));
    j.erase("decision");
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"decision\"");
    j = to_json(decided(3, EventType::Decided, "approve"));
    j["decision"]["params"] = {{"lr", 5}};
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"params\"");
    j = to_json(make_event(2, EventType::Pending));
    j["at"] = "yesterday";
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "yesterday");
    EXPECT_HAWF_ERROR(event_from_json(json::array()), K::Untrusted, "not a JSON object");
}

TEST(RecordJson, SpecIsRevalidatedWhenRead) {
    // A record can never carry what the command line would refuse.
    auto with = [](const std::function<void(json&)>& edit) {
        json j = to_json(make_event(1, EventType::Opened));
        edit(j["spec"]);
        return j;
    };
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["checkpoint"] = "4242:../x"; })), K::Untrusted, "../x");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["options"] = {"a", "a"}; })), K::Untrusted, "\"a\"");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["params"][0]["type"] = "double"; })), K::Untrusted,
                      "double");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["default"] = "maybe"; })), K::Untrusted, "maybe");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["then"][0]["on"] = {"nope"}; })), K::Untrusted, "nope");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["scope"] = "cluster"; })), K::Untrusted, "scope");
}

// What the command line refuses must be refused when read back from disk too
// (issue 8, defect 6): nlohmann's get<> reads 3.7 as 3, true as 1 and -1 as 4294967295.
TEST(RecordJson, IntegersMustBeJsonIntegersInRange) {
    auto edited = [](Event ev, const std::function<void(json&)>& edit) {
        json j = to_json(ev);
        edit(j);
        return j;
    };
    const Event pending = make_event(2, EventType::Pending);
    const std::vector<std::pair<json, std::string>> bad_seq = {
        {3.7, "\"seq\" has the wrong type"}, {true, "\"seq\" has the wrong type"}, {"3", "\"seq\" has the wrong type"},
        {0, "\"seq\" is 0"}, {-1, "\"seq\" is -1"}};
    for (const auto& [value, needle] : bad_seq)
        EXPECT_HAWF_ERROR(event_from_json(edited(pending, [&](json& j) { j["seq"] = value; })), K::Untrusted, needle);
    for (const json& value : {json(-1), json(4294967295u), json(1e3), json(false), json(-4294967296LL)})
        EXPECT_HAWF_ERROR(event_from_json(edited(pending, [&](json& j) { j["by_uid"] = value; })), K::Untrusted,
                          "\"by_uid\"");
    EXPECT_EQ(event_from_json(edited(pending, [](json& j) { j["by_uid"] = 4294967294u; })).by_uid, 4294967294u);
    for (const json& value : {json(true), json(1.0)})
        EXPECT_HAWF_ERROR(event_from_json(edited(pending, [&](json& j) { j["v"] = value; })), K::Untrusted, "\"v\"");

    Event failed = make_event(2, EventType::Failed);
    failed.exit_status = 1 << 8;
    for (const json& value : {json(256.5), json(2147483648LL), json(true)})
        EXPECT_HAWF_ERROR(event_from_json(edited(failed, [&](json& j) { j["exit_status"] = value; })), K::Untrusted,
                          "\"exit_status\"");
    EXPECT_EQ(event_from_json(edited(failed, [](json& j) { j["exit_status"] = -2147483647 - 1; })).exit_status,
              -2147483647 - 1);
    Event node = make_event(2, EventType::NodeEnded);
    for (const json& value : {json(-1), json(4294967296LL), json(1.5)})
        EXPECT_HAWF_ERROR(event_from_json(edited(node, [&](json& j) { j["node"] = value; })), K::Untrusted,
                          "\"node\"");

    // The spec: a timeout as parse_duration gives it (0: none), a real uid.
    const Event opened = make_event(1, EventType::Opened);
    for (const json& value : {json(-5), json(365LL * 86400 + 1), json(86400.5), json(true)})
        EXPECT_HAWF_ERROR(event_from_json(edited(opened, [&](json& j) { j["spec"]["timeout_s"] = value; })),
                          K::Untrusted, "\"timeout_s\"");
    EXPECT_EQ(event_from_json(edited(opened, [](json& j) { j["spec"]["timeout_s"] = 365 * 86400; })).spec->timeout_s,
              365 * 86400);
    for (const json& value : {json(-1), json(4294967295u), json(1001.0)})
        EXPECT_HAWF_ERROR(event_from_json(edited(opened, [&](json& j) { j["spec"]["owner_uid"] = value; })),
                          K::Untrusted, "\"owner_uid\"");
}

// Every record field that is shown is validated when read (issue 8, defect 2): a
// forged record cannot put an escape sequence or a fake line on root's terminal.
TEST(RecordJson, ShownFieldsAreValidated) {
    auto with = [](const std::function<void(json&)>& edit, EventType type = EventType::Pending) {
        json j = to_json(make_event(type == EventType::Opened ? 1 : 2, type));
        edit(j);
        return j;
    };
    for (const std::string& by : {std::string("root\nalice"), std::string("\x1b[2Jroot"), std::string(""),
                                  std::string("a b"), std::string("-x")})
        EXPECT_HAWF_ERROR(event_from_json(with([&](json& j) { j["by"] = by; })), K::Untrusted, "field \"by\"");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& j) { j["by"] = "root\nalice"; })), K::Untrusted, "root\\nalice");
    for (const std::string& via : Strings{"web", "", "CLI", "cli\n"})
        EXPECT_HAWF_ERROR(event_from_json(with([&](json& j) { j["via"] = via; })), K::Untrusted, "field \"via\"");
    for (const std::string& host : Strings{"", "login 1", "login1\x1b]0;owned\x07", std::string(256, 'h')})
        EXPECT_HAWF_ERROR(event_from_json(with([&](json& j) { j["host"] = host; })), K::Untrusted, "field \"host\"");
    // "timeout" takes the default; nobody else writes via timeout.
    EXPECT_HAWF_ERROR(event_from_json(with([](json& j) { j["via"] = "timeout"; })), K::Untrusted, "field \"by\"");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& j) {
                          j["via"] = "timeout";
                          j["by"] = "timeout\n";
                      })),
                      K::Untrusted, "field \"by\"");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& j) { j["spec"]["owner"] = "alice\nbob"; }, EventType::Opened)),
                      K::Untrusted, "field \"owner\"");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& j) { j["spec"]["owner"] = ""; }, EventType::Opened)),
                      K::Untrusted, "field \"owner\"");
    EXPECT_HAWF_ERROR(
        event_from_json(with([](json& j) { j["spec"]["then"][0]["script"] = "next\x1b[2J.sh"; }, EventType::Opened)),
        K::Untrusted, "field \"then\"");
}

TEST(RecordJson, WhatHawfWritesIsAccepted) {
    // The actors of lib/actions.cpp: a user or a uid without a name, the plugin, the
    // default at the deadline, hawfd.
    for (const auto& [by, via] : std::vector<std::pair<std::string, Via>>{
             {"alice", Via::Cli}, {"root", Via::Cli}, {"1001", Via::Plugin}, {"timeout", Via::Timeout},
             {"svc$", Via::Hawfd}, {"alice@ad.example.org", Via::Cli}}) {
        Event ev = make_event(2, EventType::Pending);
        ev.by = by;
        ev.via = via;
        ev.host = "node-01.cluster.example";
        EXPECT_EQ(to_json(round_trip(ev)), to_json(ev)) << by << " via " << to_string(via);
    }
}

TEST(RecordJson, FollowUpScriptHasNoControlCharacters) {
    // check_utf8 alone let "\e[2J" and "\n" through.
    for (const std::string& script : {std::string("/home/a/\x1b[2J.sh"), std::string("/home/a/x\nfake row"),
                                      std::string("/home/a/\xc2\x9b" "2J"), std::string("")}) {
        json j = to_json(make_event(1, EventType::FollowUpAdded));
        j["follow_up"] = {{"checkpoint", "4242_3:eval"}, {"owner_uid", 1001}, {"job", "4243"},
                          {"script", script}, {"on", json::array()}};
        EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "field \"script\"");
    }
}

TEST(RecordJson, CheckEventFieldsForWriters) {
    Event ev = make_event(2, EventType::Pending);
    EXPECT_NO_THROW(check_event_fields(ev));
    ev.host = "";  // gethostname failed
    EXPECT_HAWF_ERROR(check_event_fields(ev), K::Untrusted, "field \"host\"");
    ev = make_event(2, EventType::Pending);
    ev.by_uid = static_cast<uid_t>(-1);
    EXPECT_HAWF_ERROR(check_event_fields(ev), K::Untrusted, "\"by_uid\"");
}

TEST(RecordJson, OptionsAndParamsAreCheckedAsTheCommandLineHasThem) {
    auto with = [](const std::function<void(json&)>& edit) {
        json j = to_json(make_event(1, EventType::Opened));
        edit(j["spec"]);
        return j;
    };
    // Joined, "approve,x" would pass as two options.
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["options"] = {"approve,x", "reject", "retry"}; })),
                      K::Untrusted, "approve,x");
    // Keys declared twice (names ignore case), as --hawf-params refuses them.
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["params"].push_back({{"key", "LR"}, {"type", "int"}}); })),
                      K::Untrusted, "declared twice");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& s) { s["then"][0]["on"] = {"approve", "approve"}; })),
                      K::Untrusted, "twice");
}

TEST(RecordTime, OnlyWhatFormatTimeWrites) {
    for (const std::string& t : Strings{" 2026-09-21T14:13:20Z", "2026-02-30T00:00:00Z", "2026-9-21T14:13:20Z",
                                 "2026-09-21T14:13:60Z", "+2026-09-21T14:13:20Z"})
        EXPECT_HAWF_ERROR(parse_time(t), K::Untrusted, "bad time");
}

TEST(RecordTime, FormatAndParse) {
    EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_time(1790000000), "2026-09-21T14:13:20Z");
    EXPECT_EQ(parse_time("2026-09-21T14:13:20Z"), 1790000000);
    EXPECT_HAWF_ERROR(parse_time("2026-09-21T14:13:20"), K::Untrusted, "2026-09-21T14:13:20");
    EXPECT_HAWF_ERROR(parse_time("2026-09-21T14:13:20Zjunk"), K::Untrusted, "junk");
}

// ---------------------------------------------------------------- fold

TEST(Fold, FullLifecycle) {
    std::vector<Event> h = {make_event(1, EventType::Opened)};
    Checkpoint c = fold(h);
    EXPECT_EQ(c.state, State::Running);
    EXPECT_FALSE(c.decision());
    EXPECT_EQ(c.deadline(), 0);

    h.push_back(make_event(2, EventType::Pending));
    c = fold(h);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.pending_since, h[1].at);
    EXPECT_EQ(c.deadline(), h[1].at + 86400);

    h.push_back(decided(3, EventType::Decided, "retry", {{"lr", "0.01"}}, "try lower"));
    c = fold(h);
    EXPECT_EQ(c.state, State::Decided);
    ASSERT_TRUE(c.decision());
    EXPECT_EQ(c.decision()->choice, "retry");
    EXPECT_EQ(c.decision()->params.at("lr"), "0.01");
    EXPECT_EQ(c.decided->seq, 3u);

    h.push_back(decided(4, EventType::Amended, "approve", {}, "changed my mind"));
    c = fold(h);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "approve");
    EXPECT_EQ(c.decided->seq, 4u);

    h.push_back(make_event(5, EventType::Revoked));
    c = fold(h);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_FALSE(c.decision());
    EXPECT_EQ(c.pending_since, h[1].at);  // the deadline still runs from the first pending

    h.push_back(decided(6, EventType::Decided, "reject"));
    c = fold(h);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "reject");

    h.push_back(make_event(7, EventType::Applied));
    c = fold(h);
    EXPECT_EQ(c.state, State::Applied);
    ASSERT_TRUE(c.decision());
    EXPECT_EQ(c.decision()->choice, "reject");
    EXPECT_EQ(c.history.size(), 7u);
    EXPECT_EQ(c.last_seq(), 7u);

    const json d = decision_json(c);
    EXPECT_EQ(d["choice"], "reject");
    EXPECT_EQ(d["checkpoint"], "4242_3:eval");
    EXPECT_EQ(d["state"], "applied");
    EXPECT_EQ(d["decided_by"], "alice");
}

TEST(Fold, Failed) {
    Event failed = make_event(2, EventType::Failed);
    failed.exit_status = 1 << 8;
    Checkpoint c = fold({make_event(1, EventType::Opened), failed});
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_FALSE(c.decision());
    EXPECT_TRUE(decision_json(c).is_null());
    // Nothing follows a failure.
    for (EventType t : {EventType::Pending, EventType::Decided, EventType::Failed, EventType::Applied}) {
        std::vector<Event> h = {make_event(1, EventType::Opened), failed, make_event(3, t)};
        EXPECT_HAWF_ERROR(fold(h), K::Untrusted, "not allowed in state failed");
    }
}

TEST(Fold, RefusesGapsAndOutOfOrder) {
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Opened), make_event(3, EventType::Pending)}), K::Untrusted,
                      "event 3 out of sequence");
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Opened), make_event(1, EventType::Pending)}), K::Untrusted,
                      "out of sequence");
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Opened), make_event(2, EventType::Pending),
                            make_event(4, EventType::Decided), make_event(3, EventType::Applied)}),
                      K::Untrusted, "out of sequence");
    Event first = make_event(2, EventType::Opened);
    EXPECT_HAWF_ERROR(fold({first}), K::Untrusted, "out of sequence");
}

TEST(Fold, RefusesHistoryNotStartingWithOpened) {
    EXPECT_HAWF_ERROR(fold({}), K::Untrusted, "opened");
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Pending)}), K::Untrusted, "opened");
    Event no_spec = make_event(1, EventType::Opened);
    no_spec.spec.reset();
    EXPECT_HAWF_ERROR(fold({no_spec}), K::Untrusted, "opened");
}

TEST(Fold, RefusesBadTransitions) {
    const Event o = make_event(1, EventType::Opened);
    struct Case {
        std::vector<EventType> types;
        const char* message;
    };
    const Case cases[] = {
        {{EventType::Decided}, "\"decided\" not allowed in state running"},
        {{EventType::Applied}, "\"applied\" not allowed in state running"},
        {{EventType::Opened}, "\"opened\" not allowed in state running"},
        {{EventType::Pending, EventType::Pending}, "\"pending\" not allowed in state pending"},
        {{EventType::Pending, EventType::Amended}, "\"amended\" not allowed in state pending"},
        {{EventType::Pending, EventType::Revoked}, "\"revoked\" not allowed in state pending"},
        {{EventType::Pending, EventType::Applied}, "\"applied\" not allowed in state pending"},
        {{EventType::Pending, EventType::Decided, EventType::Decided}, "\"decided\" not allowed in state decided"},
        {{EventType::Pending, EventType::Decided, EventType::Applied, EventType::Amended},
         "\"amended\" not allowed in state applied"},
        {{EventType::Pending, EventType::Decided, EventType::Applied, EventType::Revoked},
         "\"revoked\" not allowed in state applied"},
    };
    for (const Case& c : cases) {
        std::vector<Event> h = {o};
        for (EventType t : c.types) h.push_back(make_event(h.size() + 1, t));
        EXPECT_HAWF_ERROR(fold(h), K::Untrusted, c.message);
    }
}

TEST(Fold, RefusesDecisionOutsideTheSpec) {
    const Event o = make_event(1, EventType::Opened);
    const Event p = make_event(2, EventType::Pending);
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "launch")}), K::Untrusted, "\"launch\"");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve", {{"gpus", "8"}})}), K::Untrusted,
                      "\"gpus\"");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve", {{"epochs", "many"}})}), K::Untrusted,
                      "\"many\"");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve"), decided(4, EventType::Amended, "x")}),
                      K::Untrusted, "\"x\"");
    Event no_decision = make_event(3, EventType::Decided);
    no_decision.decision.reset();
    EXPECT_HAWF_ERROR(fold({o, p, no_decision}), K::Untrusted, "without a decision");
}

TEST(Fold, RefusesFloatWithWhitespace) {
    // hawf-decide J:N a --set $'f=\r1.5' was accepted and delivered (issue 8, defect 6).
    const Event o = make_event(1, EventType::Opened);
    const Event p = make_event(2, EventType::Pending);
    for (const std::string& v : Strings{"\r1.5", "\v1.5", "\f1.5", "1.5\n"})
        EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve", {{"lr", v}})}), K::Untrusted,
                          "for lr (float)");
    EXPECT_NO_THROW(fold({o, p, decided(3, EventType::Decided, "approve", {{"lr", "1.5"}})}));
}

TEST(Fold, RefusalsShowRecordTextEscaped) {
    const Event o = make_event(1, EventType::Opened);
    const Event p = make_event(2, EventType::Pending);
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "x\x1b[2J")}), K::Untrusted, "\"x\\e[2J\"");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve", {{"k\ney", "1"}})}), K::Untrusted,
                      "\"k\\ney\"");
}

TEST(Transition, Table) {
    EXPECT_EQ(transition(State::Running, EventType::Pending), State::Pending);
    EXPECT_EQ(transition(State::Running, EventType::Failed), State::Failed);
    EXPECT_EQ(transition(State::Pending, EventType::Decided), State::Decided);
    EXPECT_EQ(transition(State::Decided, EventType::Amended), State::Decided);
    EXPECT_EQ(transition(State::Decided, EventType::Revoked), State::Pending);
    EXPECT_EQ(transition(State::Decided, EventType::Applied), State::Applied);
    EXPECT_FALSE(transition(State::Pending, EventType::Failed));
    EXPECT_FALSE(transition(State::Applied, EventType::Decided));
    for (State s : {State::Running, State::Pending, State::Decided, State::Applied, State::Failed})
        EXPECT_FALSE(transition(s, EventType::Opened));
}

// ---------------------------------------------------------------- spec rules and decisions

TEST(SpecCheck, TimeoutAndDefault) {
    CheckpointSpec s = make_spec();
    EXPECT_NO_THROW(s.check());
    s.default_choice = "";
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-default");
    s = make_spec();
    s.timeout_s = 0;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-timeout");
    s = make_spec();
    s.default_choice = "maybe";
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "\"maybe\"");
    s = make_spec();
    s.then[0].on = {"approve", "nope"};
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "\"nope\"");
}

std::vector<std::string> names(const std::string& prefix, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
}

std::string joined(const std::vector<std::string>& items, const std::string& sep) {
    std::string s;
    for (const auto& item : items) s += (s.empty() ? "" : sep) + item;
    return s;
}

// Limits from hawf.yaml (issue 8, defect 4): refused at submission in one line naming
// the key and where it is set.
TEST(SpecCheck, Limits) {
    CheckpointSpec s = make_spec();
    s.options = names("o", 40);
    s.default_choice = "o0";
    s.then.clear();
    EXPECT_HAWF_ERROR(s.check(), K::Usage,
                      std::string("--hawf-options: 40 choices, at most 32 (limits.max_options in ") +
                          HAWF_DEFAULT_CONF + ")");
    Limits roomy;
    roomy.max_options = 40;
    roomy.source = "/etc/site/hawf.yaml";
    EXPECT_NO_THROW(s.check(roomy));
    roomy.max_options = 39;
    EXPECT_HAWF_ERROR(s.check(roomy), K::Usage, "at most 39 (limits.max_options in /etc/site/hawf.yaml)");

    s = make_spec();
    s.params = parse_param_specs(joined(names("p", 33), ":int,") + ":int");
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-params: 33 parameters, at most 32 (limits.max_params in ");
    s.params = parse_param_specs("mode:enum(" + joined(names("v", 33), "|") + ")");
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-params: mode has 33 enum values, at most 32 (limits.max_options");

    // A spec that would not fit in a record the reader accepts.
    s = make_spec();
    s.then = {parse_then(std::string(4000, 's'))};
    Limits small;
    small.max_record_bytes = 5000;
    EXPECT_HAWF_ERROR(s.check(small), K::Usage, "at most 5000 (limits.max_record_bytes in ");
    EXPECT_NO_THROW(s.check());
}

TEST(SpecCheck, CeilingsWhenReadBack) {
    // No configuration when reading: a spec over the built-in ceilings is refused.
    json j = to_json(make_event(1, EventType::Opened));
    j["spec"]["options"] = names("o", 1025);
    j["spec"]["default"] = "o0";
    j["spec"]["then"] = json::array();
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "1025 choices, at most 1024 (the built-in ceiling of");
    j["spec"]["options"] = names("o", 1024);
    EXPECT_NO_THROW(event_from_json(j));  // more than hawf.yaml's default allows, but the site may have raised it
}

TEST(Limits, CountsAndSizes) {
    Limits l;
    l.source = "/etc/hawf/hawf.yaml";
    EXPECT_NO_THROW(check_checkpoint_count(10000, l));
    EXPECT_HAWF_ERROR(check_checkpoint_count(10001, l), K::Denied,
                      "10001 checkpoints of one user, at most 10000 (limits.max_checkpoints in /etc/hawf/hawf.yaml)");
    EXPECT_HAWF_ERROR(check_checkpoint_count(10001, l, K::Untrusted), K::Untrusted, "max_checkpoints");
    EXPECT_NO_THROW(check_event_count(1000, l));
    EXPECT_HAWF_ERROR(check_event_count(1001, l), K::Denied, "at most 1000 (limits.max_events in");
    EXPECT_NO_THROW(check_record_size(262144, l));
    EXPECT_HAWF_ERROR(check_record_size(262145, l), K::Denied, "at most 262144 (limits.max_record_bytes in");
    const Limits c = Limits::ceilings();
    EXPECT_GE(c.max_options, l.max_options);
    EXPECT_GE(c.max_record_bytes, l.max_record_bytes);
    EXPECT_HAWF_ERROR(check_event_count(c.max_events + 1, c), K::Denied, "the built-in ceiling of limits.max_events");
}

TEST(CheckDecision, MustFitInARecord) {
    // What is written must be readable: the reader refuses files over max_record_bytes.
    const CheckpointSpec s = make_spec();
    Limits l;
    l.max_comment_bytes = 1 << 20;
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {}, std::string(300000, 'c')}, l), K::Usage,
                      "at most 262144 (limits.max_record_bytes in ");
    // Escaped in JSON, newlines take two bytes each.
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {}, std::string(140000, '\n')}, l), K::Usage,
                      "max_record_bytes");
    EXPECT_NO_THROW(check_decision(s, Decision{"approve", {}, std::string(200000, 'c')}, l));
    // Through hawfd, the approval holds the decision twice: as itself and in its credential.
    CheckpointSpec delegated = s;
    delegated.reviewers = {"root"};
    EXPECT_HAWF_ERROR(check_decision(delegated, Decision{"approve", {}, std::string(120000, 'c')}, l), K::Usage,
                      "at most 262144 (limits.max_record_bytes in ");
    EXPECT_NO_THROW(check_decision(delegated, Decision{"approve", {}, std::string(100000, 'c')}, l));
    // And the credential must fit hawfd's request line, whatever the record's limit.
    l.max_record_bytes = 1 << 24;
    EXPECT_HAWF_ERROR(check_decision(delegated, Decision{"approve", {}, std::string(400000, 'c')}, l), K::Usage,
                      "the decision with its parameters and comment take 400045 bytes: too many for the munge "
                      "credential that carries them to hawfd (539203 bytes, at most 523264)");
    EXPECT_NO_THROW(check_decision(delegated, Decision{"approve", {}, std::string(380000, 'c')}, l));
}

TEST(CheckDecision, ChoiceParamsCommentAndLimits) {
    const CheckpointSpec s = make_spec();
    const Limits limits{8, 16};
    EXPECT_NO_THROW(check_decision(s, Decision{"approve", {{"lr", "1e-4"}, {"resume", "true"}}, "ok"}, limits));
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"maybe", {}, ""}, limits), K::Usage, "\"maybe\"");
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {{"gpus", "1"}}, ""}, limits), K::Usage, "\"gpus\"");
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {{"lr", "fast"}}, ""}, limits), K::Usage, "\"fast\"");
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {{"note", "123456789"}}, ""}, limits), K::Usage,
                      "9 bytes");
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {}, std::string(17, 'c')}, limits), K::Usage,
                      "17 bytes");
    EXPECT_HAWF_ERROR(check_decision(s, Decision{"approve", {}, "bad \xff"}, limits), K::Usage, "comment");
}

TEST(States, Names) {
    for (State s : {State::Running, State::Pending, State::Decided, State::Applied, State::Failed})
        EXPECT_EQ(parse_state(to_string(s)), s);
    EXPECT_HAWF_ERROR(parse_state("done"), K::Usage, "\"done\"");
}

// ---------------------------------------------------------------- follow-ups

FollowUp make_followup(const std::string& job, std::vector<std::string> on = {}) {
    return FollowUp{parse_checkpoint_id("4242_3:eval"), 1001, job, "/home/alice/next.sbatch", std::move(on)};
}

Event followup_event(std::uint64_t seq, const FollowUp& f) {
    Event ev = make_event(seq, EventType::FollowUpAdded);
    ev.followup = f;
    return ev;
}

TEST(RecordJson, FollowUpRoundTrips) {
    const Event ev = followup_event(1, make_followup("4243_7", {"approve", "retry"}));
    const json j = to_json(ev);
    EXPECT_EQ(j["event"], "follow-up");
    EXPECT_EQ(to_string(EventType::FollowUpAdded), "follow-up");
    EXPECT_EQ(j["follow_up"]["checkpoint"], "4242_3:eval");
    EXPECT_EQ(j["follow_up"]["owner_uid"], 1001);
    EXPECT_EQ(j["follow_up"]["job"], "4243_7");
    EXPECT_EQ(j["follow_up"]["script"], "/home/alice/next.sbatch");
    EXPECT_EQ(j["follow_up"]["on"], json({"approve", "retry"}));
    const Event back = round_trip(ev);
    EXPECT_EQ(back.type, EventType::FollowUpAdded);
    ASSERT_TRUE(back.followup);
    EXPECT_EQ(back.followup->of, parse_checkpoint_id("4242_3:eval"));
    EXPECT_EQ(back.followup->owner_uid, 1001u);
    EXPECT_EQ(back.followup->job, "4243_7");
    EXPECT_EQ(back.followup->script, "/home/alice/next.sbatch");
    EXPECT_EQ(back.followup->on, (std::vector<std::string>{"approve", "retry"}));
    EXPECT_EQ(to_json(back), j);
    // No choices: released by the first option.
    const Event plain = round_trip(followup_event(2, make_followup("4244")));
    ASSERT_TRUE(plain.followup);
    EXPECT_TRUE(plain.followup->on.empty());
}

TEST(RecordJson, FollowUpIsRevalidatedWhenRead) {
    auto with = [](const std::function<void(json&)>& edit) {
        json j = to_json(followup_event(2, make_followup("4243", {"approve"})));
        edit(j["follow_up"]);
        return j;
    };
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["job"] = "43; rm -rf /"; })), K::Untrusted, "job id");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["job"] = ""; })), K::Untrusted, "job id");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["checkpoint"] = "4242:../x"; })), K::Untrusted, "../x");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["on"] = {"ok", "no way"}; })), K::Untrusted, "no way");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["script"] = "bad \xff"; })), K::Untrusted, "script");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f["owner_uid"] = "alice"; })), K::Untrusted, "owner_uid");
    EXPECT_HAWF_ERROR(event_from_json(with([](json& f) { f.erase("script"); })), K::Untrusted, "\"script\"");
    json j = to_json(followup_event(2, make_followup("4243")));
    j.erase("follow_up");
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"follow_up\"");
}

TEST(RecordJson, AppliedCarriesTheJob) {
    Event ev = make_event(5, EventType::Applied);
    ev.job = "4300_2";
    const json j = to_json(ev);
    EXPECT_EQ(j["job"], "4300_2");
    EXPECT_EQ(round_trip(ev).job, "4300_2");
    json missing = j;
    missing.erase("job");
    EXPECT_HAWF_ERROR(event_from_json(missing), K::Untrusted, "\"job\"");
    json bad = j;
    bad["job"] = "../4300";
    EXPECT_HAWF_ERROR(event_from_json(bad), K::Untrusted, "../4300");
    // Only "applied" carries a job.
    EXPECT_FALSE(to_json(make_event(2, EventType::Pending)).contains("job"));
}

TEST(RecordJson, SpecSignalRoundTripsAndIsChecked) {
    Event ev = make_event(1, EventType::Opened);
    ev.spec->signal = "USR1";
    EXPECT_EQ(to_json(ev)["spec"]["signal"], "USR1");
    EXPECT_EQ(round_trip(ev).spec->signal, "USR1");
    EXPECT_EQ(round_trip(make_event(1, EventType::Opened)).spec->signal, "");
    ev.spec->signal = "USR1@batch";
    EXPECT_EQ(round_trip(ev).spec->signal, "USR1@batch");
    for (const char* bad : {"KILL", "SIGUSR1", "usr1", "9", " USR1", "USR1@", "USR1@steps", "@batch", "USR1@batch@batch",
                            "KILL@batch"}) {
        json j = to_json(ev);
        j["spec"]["signal"] = bad;
        SCOPED_TRACE(bad);
        EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "signal");
    }
    json j = to_json(ev);
    j["spec"]["signal"] = 10;
    EXPECT_HAWF_ERROR(event_from_json(j), K::Untrusted, "\"signal\"");
    // Records written before the field existed read as no signal.
    j["spec"].erase("signal");
    EXPECT_EQ(event_from_json(j).spec->signal, "");
}

TEST(Fold, FollowUpsBeforeOpenedAreExpected) {
    std::vector<Event> h = {followup_event(1, make_followup("4243")),
                            followup_event(2, make_followup("4244", {"reject"}))};
    Checkpoint c = fold(h);
    EXPECT_EQ(c.state, State::Expected);
    EXPECT_EQ(c.spec.id, parse_checkpoint_id("4242_3:eval"));
    EXPECT_EQ(c.spec.owner_uid, 1001u);
    EXPECT_TRUE(c.spec.options.empty());
    ASSERT_EQ(c.followups.size(), 2u);
    EXPECT_EQ(c.followups[0].job, "4243");
    EXPECT_EQ(c.followups[1].job, "4244");
    EXPECT_FALSE(c.decision());
    EXPECT_EQ(c.deadline(), 0);
    EXPECT_TRUE(decision_json(c).is_null());

    h.push_back(make_event(3, EventType::Opened));
    c = fold(h);
    EXPECT_EQ(c.state, State::Running);
    EXPECT_EQ(to_json(c.spec), to_json(make_spec()));
    ASSERT_EQ(c.followups.size(), 2u);  // kept
    EXPECT_EQ(c.followups[1].on, (std::vector<std::string>{"reject"}));

    h.push_back(followup_event(4, make_followup("4245")));  // running: allowed
    h.push_back(make_event(5, EventType::Pending));
    h.push_back(followup_event(6, make_followup("4246")));  // pending: allowed
    c = fold(h);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.pending_since, h[4].at);
    ASSERT_EQ(c.followups.size(), 4u);
    EXPECT_EQ(c.followups[3].job, "4246");

    h.push_back(decided(7, EventType::Decided, "reject"));
    c = fold(h);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.followups.size(), 4u);
}

TEST(Fold, FollowUpsOnlyWhileExpectedRunningOrPending) {
    const Event o = make_event(1, EventType::Opened);
    Event failed = make_event(2, EventType::Failed);
    failed.exit_status = 1 << 8;
    const Event p = make_event(2, EventType::Pending);
    EXPECT_HAWF_ERROR(fold({o, failed, followup_event(3, make_followup("4243"))}), K::Untrusted,
                      "\"follow-up\" not allowed in state failed");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve"), followup_event(4, make_followup("4243"))}),
                      K::Untrusted, "\"follow-up\" not allowed in state decided");
    EXPECT_HAWF_ERROR(fold({o, p, decided(3, EventType::Decided, "approve"), make_event(4, EventType::Applied),
                            followup_event(5, make_followup("4243"))}),
                      K::Untrusted, "\"follow-up\" not allowed in state applied");
    // An expected checkpoint has nothing to decide, end or apply.
    const Event f = followup_event(1, make_followup("4243"));
    for (EventType t : {EventType::Pending, EventType::Failed, EventType::Decided, EventType::Applied,
                        EventType::Revoked, EventType::NodeEnded, EventType::Reopened}) {
        SCOPED_TRACE(to_string(t));
        EXPECT_HAWF_ERROR(fold({f, make_event(2, t)}), K::Untrusted, "not allowed in state expected");
    }
}

TEST(Fold, RefusesDuplicateOrForeignFollowUps) {
    const Event o = make_event(1, EventType::Opened);
    EXPECT_HAWF_ERROR(fold({o, followup_event(2, make_followup("4243")), followup_event(3, make_followup("4243"))}),
                      K::Untrusted, "follow-up 4243");
    EXPECT_HAWF_ERROR(fold({followup_event(1, make_followup("4243")), followup_event(2, make_followup("4243"))}),
                      K::Untrusted, "twice");
    FollowUp other_ckpt = make_followup("4243");
    other_ckpt.of = parse_checkpoint_id("4242_3:train");
    EXPECT_HAWF_ERROR(fold({o, followup_event(2, other_ckpt)}), K::Untrusted, "does not belong to 4242_3:eval");
    EXPECT_HAWF_ERROR(fold({followup_event(1, make_followup("4243")), followup_event(2, other_ckpt)}), K::Untrusted,
                      "does not belong");
    FollowUp other_owner = make_followup("4243");
    other_owner.owner_uid = 1002;
    EXPECT_HAWF_ERROR(fold({o, followup_event(2, other_owner)}), K::Untrusted, "does not belong");
    Event no_followup = make_event(2, EventType::FollowUpAdded);
    EXPECT_HAWF_ERROR(fold({o, no_followup}), K::Untrusted, "follow-up event without a follow-up");
    no_followup.seq = 1;
    EXPECT_HAWF_ERROR(fold({no_followup}), K::Untrusted, "\"follow-up\"");
}

TEST(Fold, OpenedAfterExpectedMustDescribeTheSameCheckpoint) {
    const Event f = followup_event(1, make_followup("4243"));
    Event other_name = make_event(2, EventType::Opened);
    other_name.spec->id = parse_checkpoint_id("4242_3:train");
    EXPECT_HAWF_ERROR(fold({f, other_name}), K::Untrusted, "\"opened\" event for another checkpoint");
    Event other_owner = make_event(2, EventType::Opened);
    other_owner.spec->owner_uid = 1002;
    EXPECT_HAWF_ERROR(fold({f, other_owner}), K::Untrusted, "\"opened\" event for another checkpoint");
    Event no_spec = make_event(2, EventType::Opened);
    no_spec.spec.reset();
    EXPECT_HAWF_ERROR(fold({f, no_spec}), K::Untrusted, "\"opened\"");
    // Opened once only.
    EXPECT_HAWF_ERROR(fold({f, make_event(2, EventType::Opened), make_event(3, EventType::Opened)}), K::Untrusted,
                      "\"opened\" not allowed in state running");
}

TEST(Transition, FollowUpsAndExpected) {
    EXPECT_EQ(transition(State::Expected, EventType::Opened), State::Running);
    for (State s : {State::Expected, State::Running, State::Pending})
        EXPECT_EQ(transition(s, EventType::FollowUpAdded), s) << to_string(s);
    for (State s : {State::Decided, State::Applied, State::Failed})
        EXPECT_FALSE(transition(s, EventType::FollowUpAdded)) << to_string(s);
    for (EventType t : {EventType::Pending, EventType::Failed, EventType::Decided, EventType::Amended,
                        EventType::Revoked, EventType::Applied, EventType::NodeEnded, EventType::Reopened})
        EXPECT_FALSE(transition(State::Expected, t)) << to_string(t);
}

TEST(Checkpoint, ReleasingChoicesAndFollowUpLookup) {
    Checkpoint c = fold({make_event(1, EventType::Opened), followup_event(2, make_followup("4243")),
                         followup_event(3, make_followup("4244", {"reject", "retry"}))});
    const FollowUp* first = c.followup("4243");
    const FollowUp* second = c.followup("4244");
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_EQ(first->job, "4243");
    EXPECT_EQ(c.followup("4245"), nullptr);
    EXPECT_EQ(c.followup(""), nullptr);
    EXPECT_EQ(c.releasing_choices(*first), (std::vector<std::string>{"approve"}));  // the first option
    EXPECT_EQ(c.releasing_choices(*second), (std::vector<std::string>{"reject", "retry"}));
    // Before "opened" the options are not known yet.
    const Checkpoint expected = fold({followup_event(1, make_followup("4243"))});
    EXPECT_TRUE(expected.releasing_choices(expected.followups[0]).empty());
}

TEST(States, ExpectedHasAName) {
    EXPECT_EQ(to_string(State::Expected), "expected");
    EXPECT_EQ(parse_state("expected"), State::Expected);
}

// ---------------------------------------------------------------- delegated mode (reviewers, quorum)

// A well-formed credential as far as the record goes (munge decides whether it is genuine).
const std::string cred = "MUNGE:AwQDAACm9k+/bK0=:";

CheckpointSpec delegated_spec(std::uint32_t quorum = 2) {
    CheckpointSpec spec = make_spec();
    spec.timeout_s = 0;
    spec.default_choice = "";
    spec.reviewers = {"bob", "carol", "@safety"};
    spec.quorum = quorum;
    return spec;
}

Event opened(const CheckpointSpec& spec) {
    Event ev = make_event(1, EventType::Opened);
    ev.spec = spec;
    return ev;
}

Event approval(std::uint64_t seq, const std::string& by, uid_t uid, const std::string& choice,
               std::map<std::string, std::string> params = {}, const std::string& comment = "") {
    Event ev = decided(seq, EventType::Approved, choice, std::move(params), comment);
    ev.by = by;
    ev.by_uid = uid;
    ev.via = Via::Hawfd;
    ev.credential = cred;
    return ev;
}

Event withdrawal(std::uint64_t seq, const std::string& by, uid_t uid) {
    Event ev = make_event(seq, EventType::Withdrawn);
    ev.by = by;
    ev.by_uid = uid;
    ev.via = Via::Hawfd;
    ev.credential = cred;
    return ev;
}

Event quorum_decision(std::uint64_t seq, const std::string& choice, std::vector<std::uint64_t> approvals,
                      std::map<std::string, std::string> params = {}) {
    Event ev = decided(seq, EventType::Decided, choice, std::move(params));
    ev.by = "root";
    ev.by_uid = 0;
    ev.via = Via::Hawfd;
    ev.approvals = std::move(approvals);
    ev.credential = cred;
    return ev;
}

// Opened (delegated, quorum 2) and pending, then EVENTS.
std::vector<Event> delegated_history(std::vector<Event> events, std::uint32_t quorum = 2) {
    std::vector<Event> h = {opened(delegated_spec(quorum)), make_event(2, EventType::Pending)};
    h.insert(h.end(), events.begin(), events.end());
    return h;
}

std::vector<std::uint64_t> seqs(const std::vector<Event>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) out.push_back(e.seq);
    return out;
}

// Records written before reviewers existed read and write back to the very same bytes.
TEST(RecordJson, OwnerModeRecordsAreByteIdentical) {
    const std::string spec_text =
        R"x({"checkpoint":"4242_3:eval","default":"reject","options":["approve","reject","retry"],"owner":"alice",)x"
        R"x("owner_uid":1001,"params":[{"key":"lr","type":"float"},{"key":"epochs","type":"int"},)x"
        R"x({"key":"mode","type":"enum(fast|slow)"},{"key":"note","type":"string"},{"key":"resume","type":"bool"}],)x"
        R"x("scope":"job","signal":"","then":[{"on":["approve","retry"],"script":"next.sbatch"},)x"
        R"x({"on":[],"script":"/abs/cleanup.sh"}],"timeout_s":86400})x";
    EXPECT_EQ(to_json(make_spec()).dump(), spec_text);
    const std::string opened_text = R"x({"at":"2026-09-21T14:14:20Z","by":"alice","by_uid":1001,"event":"opened",)x"
                                    R"x("host":"node1","seq":1,"spec":)x" + spec_text + R"x(,"v":1,"via":"plugin"})x";
    const std::string decided_text =
        R"x({"at":"2026-09-21T14:16:20Z","by":"alice","by_uid":1001,"decision":{"choice":"approve","comment":"ok",)x"
        R"x("params":{"lr":"0.1"}},"event":"decided","host":"login1","seq":3,"v":1,"via":"cli"})x";
    for (const std::string& text : {opened_text, decided_text})
        EXPECT_EQ(to_json(event_from_json(json::parse(text))).dump(), text);
    const Event back = event_from_json(json::parse(opened_text));
    EXPECT_FALSE(back.spec->delegated());
    EXPECT_EQ(back.spec->quorum, 1u);
    EXPECT_TRUE(back.spec->owner_may_decide);
}

// The spec's seal (root's munge credential, review.hpp): written only when present,
// read as strictly as an event's credential; an unsealed record is as before
// (OwnerModeRecordsAreByteIdentical).
TEST(RecordJson, SpecSealRoundTripsAndIsReadStrictly) {
    CheckpointSpec spec = delegated_spec();
    EXPECT_FALSE(to_json(spec).contains("seal"));
    spec.seal = cred;
    const json j = to_json(spec);
    EXPECT_EQ(j["seal"], cred);
    EXPECT_EQ(spec_from_json(json::parse(j.dump())).seal, cred);
    Event ev = opened(spec);
    EXPECT_EQ(to_json(event_from_json(to_json(ev))), to_json(ev));
    EXPECT_EQ(event_from_json(to_json(ev)).spec->seal, cred);
    auto read = [&](const json& seal) {
        json bad = j;
        bad["seal"] = seal;
        return spec_from_json(bad);
    };
    for (const std::string& bad : {std::string(""), std::string("garbage"), std::string("MUNGE:abc def:"),
                                   std::string("MUNGE::"), std::string("MUNGE:a\x1b[2J:"),
                                   "MUNGE:" + std::string(max_credential_bytes, 'A') + ":"})
        EXPECT_HAWF_ERROR(read(bad), K::Untrusted, "\"seal\"");
    EXPECT_HAWF_ERROR(read(5), K::Untrusted, "\"seal\" has the wrong type");
    // Writers are held to the same.
    ev.spec->seal = "garbage";
    EXPECT_HAWF_ERROR(check_event_fields(ev), K::Untrusted, "\"seal\" is \"garbage\": not a munge credential");
}

TEST(RecordJson, DelegatedSpecRoundTrips) {
    CheckpointSpec spec = delegated_spec(3);
    spec.owner_may_decide = false;
    const json j = to_json(spec);
    EXPECT_EQ(j["reviewers"], json({"bob", "carol", "@safety"}));
    EXPECT_EQ(j["quorum"], 3);
    EXPECT_EQ(j["owner_may_decide"], false);
    const CheckpointSpec back = spec_from_json(json::parse(j.dump()));
    EXPECT_EQ(back.reviewers, spec.reviewers);
    EXPECT_EQ(back.quorum, 3u);
    EXPECT_FALSE(back.owner_may_decide);
    EXPECT_EQ(to_json(back), j);
}

TEST(RecordJson, DelegatedSpecIsReadStrictly) {
    auto read = [](const std::function<void(json&)>& edit) {
        json j = to_json(delegated_spec());
        edit(j);
        return spec_from_json(j);
    };
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = {"bob", "bad name"}; }), K::Untrusted, "\"bad name\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = {"bob", "@"}; }), K::Untrusted, "bad reviewer \"@\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = {"bob", "bob"}; }), K::Untrusted,
                      "reviewer \"bob\" is named twice");
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = names("u", 33); }), K::Untrusted,
                      "33 reviewers: at most 32");
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = json::array(); }), K::Untrusted, "\"reviewers\" is empty");
    EXPECT_HAWF_ERROR(read([](json& s) { s["reviewers"] = "bob"; }), K::Untrusted, "\"reviewers\" has the wrong type");
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("reviewers"); }), K::Untrusted, "missing field \"reviewers\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("owner_may_decide"); }), K::Untrusted, "\"owner_may_decide\"");
    for (const json& q : {json(0), json(65), json(-1), json(2.5), json("2"), json(true)})
        EXPECT_HAWF_ERROR(read([&](json& s) { s["quorum"] = q; }), K::Untrusted, "\"quorum\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s["owner_may_decide"] = 1; }), K::Untrusted,
                      "\"owner_may_decide\" has the wrong type");
    EXPECT_NO_THROW(read([](json& s) {  // hawfd takes a delegated checkpoint's default
        s["timeout_s"] = 60;
        s["default"] = "reject";
    }));
    // Keys of delegated mode on an owner-mode spec: reviewers are required with them.
    json owner = to_json(make_spec());
    owner["quorum"] = 1;
    EXPECT_HAWF_ERROR(spec_from_json(owner), K::Untrusted, "missing field \"reviewers\"");
}

TEST(SpecCheck, DelegatedRules) {
    EXPECT_NO_THROW(delegated_spec().check());
    CheckpointSpec s = delegated_spec();
    s.timeout_s = 3600;  // hawfd takes a delegated checkpoint's default, sealed
    s.default_choice = "reject";
    EXPECT_NO_THROW(s.check());
    s = delegated_spec();
    s.quorum = 0;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "bad --hawf-quorum \"0\": use a whole number from 1 to 64");
    s.quorum = 65;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "bad --hawf-quorum \"65\"");
    s = delegated_spec();
    s.reviewers = {"bob", "-rf"};
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "bad reviewer \"-rf\"");
    s = make_spec();
    s.quorum = 2;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-quorum=2 needs --hawf-reviewers");
    s = make_spec();
    s.owner_may_decide = false;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "owner_may_decide: false needs reviewers");
}

// ---------------------------------------------------------------- site policies (required)

using Requirement = CheckpointSpec::Requirement;
using Requirements = std::vector<Requirement>;

// What apply_policies makes of the SPEC's example policy, with the job's own reviewers
// JOB (quorum JOB_QUORUM) or none.
CheckpointSpec policy_spec(std::vector<std::string> job = {}, std::uint32_t job_quorum = 1) {
    CheckpointSpec spec = make_spec();
    spec.timeout_s = 0;
    spec.default_choice = "";
    spec.reviewers = std::move(job);
    spec.quorum = job_quorum;
    spec.required = {{{"@safety"}, 2, "/etc/hawf/hawf.yaml:4"}, {{"root", "dave"}, 1, "/etc/hawf/hawf.yaml:9"}};
    spec.owner_may_decide = false;
    return spec;
}

// The job's own reviewers keep the records they always had: no "required" key.
TEST(RecordJson, JobOwnReviewersRecordsAreByteIdentical) {
    const std::string spec_text =
        R"x({"checkpoint":"4242_3:eval","default":"","options":["approve","reject","retry"],"owner":"alice",)x"
        R"x("owner_may_decide":true,"owner_uid":1001,"params":[{"key":"lr","type":"float"},{"key":"epochs",)x"
        R"x("type":"int"},{"key":"mode","type":"enum(fast|slow)"},{"key":"note","type":"string"},{"key":"resume",)x"
        R"x("type":"bool"}],"quorum":2,"reviewers":["bob","carol","@safety"],"scope":"job","signal":"",)x"
        R"x("then":[{"on":["approve","retry"],"script":"next.sbatch"},{"on":[],"script":"/abs/cleanup.sh"}],)x"
        R"x("timeout_s":0})x";
    EXPECT_EQ(to_json(delegated_spec()).dump(), spec_text);
    const std::string opened_text = R"x({"at":"2026-09-21T14:14:20Z","by":"alice","by_uid":1001,"event":"opened",)x"
                                    R"x("host":"node1","seq":1,"spec":)x" + spec_text + R"x(,"v":1,"via":"plugin"})x";
    EXPECT_EQ(to_json(event_from_json(json::parse(opened_text))).dump(), opened_text);
    EXPECT_TRUE(event_from_json(json::parse(opened_text)).spec->required.empty());
}

TEST(RecordJson, PolicyRequirementsRoundTrip) {
    // Policies only: the job's own reviewers are empty, its quorum 1.
    const CheckpointSpec only = policy_spec();
    EXPECT_TRUE(only.delegated());
    const json j = to_json(only);
    EXPECT_EQ(j["reviewers"], json::array());
    EXPECT_EQ(j["quorum"], 1);
    EXPECT_EQ(j["owner_may_decide"], false);
    EXPECT_EQ(j["required"].dump(),
              R"([{"policy":"/etc/hawf/hawf.yaml:4","quorum":2,"reviewers":["@safety"]},)"
              R"({"policy":"/etc/hawf/hawf.yaml:9","quorum":1,"reviewers":["root","dave"]}])");
    CheckpointSpec back = spec_from_json(json::parse(j.dump()));
    EXPECT_TRUE(back.reviewers.empty());
    EXPECT_EQ(back.quorum, 1u);
    EXPECT_FALSE(back.owner_may_decide);
    EXPECT_EQ(back.required, only.required);
    EXPECT_EQ(to_json(back), j);
    // With the job's own reviewers besides: both kept apart.
    const CheckpointSpec both = policy_spec({"bob"}, 1);
    back = round_trip(opened(both)).spec.value();
    EXPECT_EQ(back.reviewers, (Strings{"bob"}));
    EXPECT_EQ(back.required, both.required);
    EXPECT_EQ(to_json(back), to_json(both));
    // Requirements compare every field.
    Requirement r = only.required[0];
    EXPECT_TRUE(r == only.required[0]);
    r.policy = "/etc/hawf/hawf.yaml:5";
    EXPECT_FALSE(r == only.required[0]);
    r = only.required[0];
    r.quorum = 1;
    EXPECT_FALSE(r == only.required[0]);
    r = only.required[0];
    r.reviewers = {"@other"};
    EXPECT_FALSE(r == only.required[0]);
}

TEST(RecordJson, PolicyRequirementsAreReadStrictly) {
    auto read = [](const std::function<void(json&)>& edit, const CheckpointSpec& spec = policy_spec()) {
        json j = to_json(spec);
        edit(j);
        return spec_from_json(j);
    };
    auto first = [&](const std::function<void(json&)>& edit) {
        return read([&](json& s) { edit(s["required"][0]); });
    };
    for (const json& bad : {json::array(), json("x"), json({1}), json::object()})
        EXPECT_HAWF_ERROR(read([&](json& s) { s["required"] = bad; }), K::Untrusted,
                          "field \"required\" is not a list of requirements");
    json many = json::array();
    for (int i = 0; i < 17; ++i) many.push_back(to_json(policy_spec())["required"][0]);
    EXPECT_HAWF_ERROR(read([&](json& s) { s["required"] = many; }), K::Untrusted,
                      "field \"required\" has 17 requirements: at most 16");
    many.erase(many.begin());
    EXPECT_EQ(read([&](json& s) { s["required"] = many; }).required.size(), 16u);
    EXPECT_HAWF_ERROR(first([](json& r) { r.erase("reviewers"); }), K::Untrusted, "missing field \"reviewers\"");
    EXPECT_HAWF_ERROR(first([](json& r) { r["reviewers"] = json::array(); }), K::Untrusted,
                      "the site policy at /etc/hawf/hawf.yaml:4 names no reviewers");
    EXPECT_HAWF_ERROR(first([](json& r) { r["reviewers"] = {"@safety", "bad name"}; }), K::Untrusted,
                      "the site policy at /etc/hawf/hawf.yaml:4: bad reviewer \"bad name\"");
    EXPECT_HAWF_ERROR(first([](json& r) { r["reviewers"] = {"@safety", "@safety"}; }), K::Untrusted,
                      "reviewer \"@safety\" is named twice");
    EXPECT_HAWF_ERROR(first([](json& r) { r["reviewers"] = names("u", 33); }), K::Untrusted,
                      "33 reviewers: at most 32");
    EXPECT_HAWF_ERROR(first([](json& r) { r["reviewers"] = "@safety"; }), K::Untrusted,
                      "\"reviewers\" has the wrong type");
    for (const json& q : {json(0), json(65), json(-1), json(2.5), json("2"), json(true)})
        EXPECT_HAWF_ERROR(first([&](json& r) { r["quorum"] = q; }), K::Untrusted, "\"quorum\"");
    EXPECT_HAWF_ERROR(first([](json& r) { r.erase("quorum"); }), K::Untrusted, "missing field \"quorum\"");
    EXPECT_HAWF_ERROR(first([](json& r) { r.erase("policy"); }), K::Untrusted, "missing field \"policy\"");
    for (const std::string& bad : {std::string(""), std::string("hawf.yaml:4\n\x1b[2J"), std::string(4097, 'p')})
        EXPECT_HAWF_ERROR(first([&](json& r) { r["policy"] = bad; }), K::Untrusted, "site policy");
    EXPECT_HAWF_ERROR(first([](json& r) { r["policy"] = 4; }), K::Untrusted, "\"policy\" has the wrong type");
    EXPECT_HAWF_ERROR(first([](json& r) { r["owner_may_decide"] = true; }), K::Untrusted,
                      "a requirement has fields other than reviewers, quorum and policy");
    // The rest of delegated mode comes with it.
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("reviewers"); }), K::Untrusted, "missing field \"reviewers\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("quorum"); }), K::Untrusted, "missing field \"quorum\"");
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("owner_may_decide"); }), K::Untrusted, "\"owner_may_decide\"");
    json owner = to_json(make_spec());
    owner["required"] = to_json(policy_spec())["required"];
    EXPECT_HAWF_ERROR(spec_from_json(owner), K::Untrusted, "missing field \"reviewers\"");
    // Policies only: the job's own quorum cannot be moved to a policy.
    EXPECT_HAWF_ERROR(read([](json& s) { s["quorum"] = 2; }), K::Untrusted,
                      "--hawf-quorum=2 needs --hawf-reviewers: a site policy's quorum counts only its own reviewers");
    EXPECT_HAWF_ERROR(read([](json& s) { s.erase("required"); }), K::Untrusted, "field \"reviewers\" is empty");
    EXPECT_NO_THROW(read([](json& s) {  // hawfd takes a delegated checkpoint's default
        s["timeout_s"] = 60;
        s["default"] = "reject";
    }));
}

TEST(SpecCheck, PolicyRequirementRules) {
    EXPECT_NO_THROW(policy_spec().check());
    EXPECT_NO_THROW(policy_spec({"bob", "@friends"}, 2).check());
    CheckpointSpec s = policy_spec();
    s.quorum = 2;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "--hawf-quorum=2 needs --hawf-reviewers: a site policy's quorum");
    s = policy_spec();
    s.timeout_s = 3600;
    s.default_choice = "reject";
    EXPECT_NO_THROW(s.check());
    s = policy_spec();
    s.owner_may_decide = false;  // a policy may forbid the owner even without the job's own reviewers
    EXPECT_NO_THROW(s.check());
    s.required[1].quorum = 0;
    EXPECT_HAWF_ERROR(s.check(), K::Usage,
                      "the site policy at /etc/hawf/hawf.yaml:9 has quorum 0: use a whole number from 1 to 64");
    s.required[1].quorum = 65;
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "has quorum 65");
    s = policy_spec();
    s.required[0].reviewers.clear();
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "the site policy at /etc/hawf/hawf.yaml:4 names no reviewers");
    s = policy_spec();
    s.required[0].policy.clear();
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "site policy");
    s = policy_spec();
    s.required.resize(17, s.required[0]);
    EXPECT_HAWF_ERROR(s.check(), K::Usage, "17 site policies apply to 4242_3:eval: at most 16");
}

TEST(Fold, QuorumDecisionOfPoliciesHasAtLeastTheLargestQuorum) {
    // The structure only: who is on which list is requirements_met's (review.hpp).
    std::vector<Event> h = {opened(policy_spec({"bob"}, 1)), make_event(2, EventType::Pending),
                            approval(3, "bob", 1002, "approve"), approval(4, "carol", 1003, "approve")};
    std::vector<Event> one = h;
    one.push_back(quorum_decision(5, "approve", {3}));
    EXPECT_HAWF_ERROR(fold(one), K::Untrusted, "decision 5 of 4242_3:eval has 1 approvals, its quorum is 2");
    h.push_back(quorum_decision(5, "approve", {3, 4}));
    EXPECT_EQ(fold(h).state, State::Decided);
    // Policies only: approvals are allowed (the job's own reviewers are none).
    std::vector<Event> only = {opened(policy_spec()), make_event(2, EventType::Pending),
                               approval(3, "carol", 1003, "approve")};
    EXPECT_EQ(fold(only).approvals.size(), 1u);
}

TEST(RecordJson, ApprovalsWithdrawalsAndQuorumDecisionsRoundTrip) {
    const Event a = approval(3, "bob", 1002, "retry", {{"lr", "0.5"}}, "fine by me");
    const Event w = withdrawal(4, "bob", 1002);
    const Event d = quorum_decision(5, "retry", {3, 7}, {{"lr", "0.5"}});
    for (const Event& ev : {a, w, d}) {
        const Event back = round_trip(ev);
        EXPECT_EQ(to_json(back), to_json(ev));
        EXPECT_EQ(back.credential, cred);
    }
    EXPECT_EQ(to_json(a)["event"], "approved");
    EXPECT_EQ(to_json(w)["event"], "withdrawn");
    EXPECT_EQ(round_trip(a).decision->comment, "fine by me");
    EXPECT_EQ(round_trip(d).approvals, (std::vector<std::uint64_t>{3, 7}));
    EXPECT_FALSE(to_json(w).contains("decision"));
    EXPECT_FALSE(to_json(decided(3, EventType::Decided, "approve")).contains("credential"));
    EXPECT_FALSE(to_json(decided(3, EventType::Decided, "approve")).contains("approvals"));
}

TEST(RecordJson, CredentialsAndApprovalsAreReadStrictly) {
    auto read = [](Event ev, const std::function<void(json&)>& edit) {
        json j = to_json(ev);
        edit(j);
        return event_from_json(j);
    };
    const Event a = approval(3, "bob", 1002, "retry");
    for (const std::string& bad : {std::string("garbage"), std::string("MUNGE:abc def:"), std::string("MUNGE:abc"),
                                   std::string("MUNGE::"), std::string("MUNGE:a\x1b[2J:"),
                                   "MUNGE:" + std::string(max_credential_bytes, 'A') + ":"})
        EXPECT_HAWF_ERROR(read(a, [&](json& j) { j["credential"] = bad; }), K::Untrusted, "not a munge credential");
    EXPECT_HAWF_ERROR(read(a, [](json& j) { j["credential"] = ""; }), K::Untrusted, "\"credential\" is empty");
    EXPECT_HAWF_ERROR(read(a, [](json& j) { j["credential"] = 5; }), K::Untrusted, "\"credential\" has the wrong type");
    EXPECT_HAWF_ERROR(read(a, [](json& j) { j.erase("decision"); }), K::Untrusted, "missing field \"decision\"");
    EXPECT_HAWF_ERROR(read(make_event(2, EventType::Pending), [](json& j) { j["credential"] = cred; }), K::Untrusted,
                      "a credential in a \"pending\" event");
    EXPECT_HAWF_ERROR(read(decided(3, EventType::Amended, "approve"), [](json& j) { j["credential"] = cred; }),
                      K::Untrusted, "a credential in a \"amended\" event");
    const Event d = quorum_decision(5, "retry", {3, 4});
    for (const json& bad : {json::array(), json({0}), json({"3"}), json({3.5}), json(3)})
        EXPECT_HAWF_ERROR(read(d, [&](json& j) { j["approvals"] = bad; }), K::Untrusted, "\"approvals\"");
    EXPECT_HAWF_ERROR(read(a, [](json& j) { j["approvals"] = {1}; }), K::Untrusted, "approvals in a \"approved\" event");
    // Writers are held to the same: what they could not read back is refused up front.
    Event pending = make_event(2, EventType::Pending);
    pending.credential = cred;
    EXPECT_HAWF_ERROR(check_event_fields(pending), K::Untrusted, "credential");
}

TEST(Transition, ApprovalsOnlyWhilePending) {
    for (EventType t : {EventType::Approved, EventType::Withdrawn}) {
        EXPECT_EQ(transition(State::Pending, t), State::Pending);
        for (State s : {State::Expected, State::Running, State::Decided, State::Applied, State::Failed})
            EXPECT_FALSE(transition(s, t)) << to_string(s) << " " << to_string(t);
    }
}

TEST(Fold, ApprovalsReplaceAndWithdraw) {
    std::vector<Event> h = delegated_history({approval(3, "bob", 1002, "approve"), approval(4, "carol", 1003, "reject"),
                                              approval(5, "bob", 1002, "reject", {}, "changed my mind")});
    Checkpoint c = fold(h);
    EXPECT_EQ(c.state, State::Pending);
    // bob's newer approval replaced his first and comes after carol's: the order given.
    EXPECT_EQ(seqs(c.approvals), (std::vector<std::uint64_t>{4, 5}));
    EXPECT_EQ(c.approvals[1].decision->comment, "changed my mind");
    h.push_back(withdrawal(6, "carol", 1003));
    c = fold(h);
    EXPECT_EQ(seqs(c.approvals), (std::vector<std::uint64_t>{5}));
    EXPECT_FALSE(c.decision());
    EXPECT_EQ(c.decided_by(), "");
}

TEST(Fold, RefusesApprovalsThatHawfCouldNotHaveWritten) {
    EXPECT_HAWF_ERROR(fold(delegated_history({withdrawal(3, "bob", 1002)})), K::Untrusted,
                      "withdrawn event 3: uid 1002 has no approval in force");
    EXPECT_HAWF_ERROR(fold(delegated_history({approval(3, "bob", 1002, "approve"), withdrawal(4, "carol", 1003)})),
                      K::Untrusted, "uid 1003 has no approval in force");
    EXPECT_HAWF_ERROR(fold(delegated_history({approval(3, "bob", 1002, "approve"), withdrawal(4, "bob", 1002),
                                              withdrawal(5, "bob", 1002)})),
                      K::Untrusted, "withdrawn event 5");
    Event bare = approval(3, "bob", 1002, "approve");
    bare.credential.clear();
    EXPECT_HAWF_ERROR(fold(delegated_history({bare})), K::Untrusted, "approved event 3 without a credential");
    EXPECT_HAWF_ERROR(fold(delegated_history({approval(3, "bob", 1002, "maybe")})), K::Untrusted, "\"maybe\"");
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Opened), make_event(2, EventType::Pending),
                            approval(3, "bob", 1002, "approve")}),
                      K::Untrusted, "which has no reviewers");
    // Running, decided: no approvals.
    EXPECT_HAWF_ERROR(fold({opened(delegated_spec()), approval(2, "bob", 1002, "approve")}), K::Untrusted,
                      "\"approved\" not allowed in state running");
    EXPECT_HAWF_ERROR(fold(delegated_history({approval(3, "bob", 1002, "approve"), approval(4, "carol", 1003, "approve"),
                                              quorum_decision(5, "approve", {3, 4}),
                                              approval(6, "dave", 1004, "reject")})),
                      K::Untrusted, "\"approved\" not allowed in state decided");
}

TEST(Fold, QuorumDecisionNamesAgreeingApprovalsInForce) {
    const Event a = approval(3, "bob", 1002, "retry", {{"lr", "0.1"}}, "b");
    const Event b = approval(4, "carol", 1003, "retry", {{"lr", "0.1"}}, "c");
    Checkpoint c = fold(delegated_history({a, b, quorum_decision(5, "retry", {4, 3}, {{"lr", "0.1"}})}));
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decided_by(), "carol,bob");  // in the order the decision names them
    EXPECT_EQ(seqs(c.approvals), (std::vector<std::uint64_t>{3, 4}));  // frozen as they were

    // Withdrawn before the decision: not in force.
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, withdrawal(5, "bob", 1002),
                                              quorum_decision(6, "retry", {3, 4}, {{"lr", "0.1"}})})),
                      K::Untrusted, "names event 3, not an approval in force");
    // Replaced by a newer approval of the same reviewer: the old one is not in force.
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, approval(5, "bob", 1002, "retry", {{"lr", "0.1"}}),
                                              quorum_decision(6, "retry", {3, 4}, {{"lr", "0.1"}})})),
                      K::Untrusted, "names event 3, not an approval in force");
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, quorum_decision(5, "retry", {2, 4}, {{"lr", "0.1"}})})),
                      K::Untrusted, "names event 2, not an approval in force");
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, quorum_decision(5, "retry", {3, 4}, {{"lr", "0.2"}})})),
                      K::Untrusted, "differs from approval 3");
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, quorum_decision(5, "approve", {3, 4})})), K::Untrusted,
                      "differs from approval 3");
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, quorum_decision(5, "retry", {3}, {{"lr", "0.1"}})})),
                      K::Untrusted, "has 1 approvals, its quorum is 2");
    EXPECT_HAWF_ERROR(fold(delegated_history({a, b, quorum_decision(5, "retry", {3, 3}, {{"lr", "0.1"}})})),
                      K::Untrusted, "counts uid 1002 twice");
    // Approvals name only a delegated checkpoint's decision.
    EXPECT_HAWF_ERROR(fold({make_event(1, EventType::Opened), make_event(2, EventType::Pending),
                            quorum_decision(3, "approve", {2})}),
                      K::Untrusted, "names approvals, but it has no reviewers");
}

// Who wrote an event is verify_events' business: an owner's forged decision still reads.
TEST(Fold, ForgedDecisionsOfADelegatedCheckpointStillRead) {
    const Checkpoint c = fold(delegated_history({decided(3, EventType::Decided, "approve")}));
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decided_by(), "alice");
}

TEST(DecisionJson, QuorumDecisionNamesItsApprovers) {
    const Checkpoint c = fold(delegated_history({approval(3, "bob", 1002, "approve", {}, "b"),
                                                 approval(4, "carol", 1003, "approve"),
                                                 quorum_decision(5, "approve", {3, 4})}));
    const json j = decision_json(c);
    EXPECT_EQ(j["decided_by"], "bob,carol");
    EXPECT_EQ(j["approved_by"], json({"bob", "carol"}));
    EXPECT_EQ(j["via"], "hawfd");
    // Owner mode: the keys as they always were.
    const json owner = decision_json(fold({make_event(1, EventType::Opened), make_event(2, EventType::Pending),
                                           make_event(3, EventType::Decided)}));
    EXPECT_EQ(owner["decided_by"], "alice");
    EXPECT_FALSE(owner.contains("approved_by"));
    std::vector<std::string> keys;
    for (const auto& item : owner.items()) keys.push_back(item.key());
    EXPECT_EQ(keys, (Strings{"checkpoint", "choice", "comment", "decided_at", "decided_by", "params", "state", "via"}));
}

TEST(RecordJson, ParamsKeepTheirDeclaredTypes) {
    CheckpointSpec spec;
    spec.params = parse_param_specs("n:int,lr:float,deep:bool,mode:enum(a|b),note:string");
    const json typed = typed_params(spec, {{"n", "-42"}, {"lr", "1e-4"}, {"deep", "false"}, {"mode", "a"}, {"note", "7"}});
    EXPECT_EQ(typed, json::parse(R"({"n": -42, "lr": 0.0001, "deep": false, "mode": "a", "note": "7"})"));
    EXPECT_TRUE(typed["n"].is_number_integer());
    EXPECT_TRUE(typed["lr"].is_number_float());
    // What no longer fits its type (a record from before a type change) stays text.
    EXPECT_EQ(typed_params(spec, {{"n", "99999999999999999999"}, {"lr", "1e999"}, {"x", "1"}}),
              json::parse(R"({"n": "99999999999999999999", "lr": "1e999", "x": "1"})"));
}

}  // namespace
}  // namespace hawf
