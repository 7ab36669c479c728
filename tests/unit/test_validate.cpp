// validate.hpp: everything a user types is either well-formed or refused with one
// line naming the bad value.
#include "validate.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using Strings = std::vector<std::string>;

// ---------------------------------------------------------------- names

TEST(CheckName, AcceptsValidNames) {
    for (const std::string& name : Strings{"a", "Z", "0", "eval", "eval.2", "step_1-final", "A.b_c-d", "9lives",
                                   std::string(64, 'x'), "a" + std::string(63, '-')})
        EXPECT_NO_THROW(check_name(name)) << name;
}

TEST(CheckName, RefusesLengthOver64) {
    const std::string name65 = std::string(65, 'x');
    EXPECT_HAWF_ERROR(check_name(name65), K::Usage, name65);
}

TEST(CheckName, RefusesBadFirstCharacter) {
    for (const std::string& name : Strings{".hidden", "-x", "_x", ".", ".."})
        EXPECT_HAWF_ERROR(check_name(name), K::Usage, "\"" + name + "\"");
}

TEST(CheckName, RefusesEmpty) { EXPECT_HAWF_ERROR(check_name(""), K::Usage, "\"\""); }

TEST(CheckName, RefusesSeparatorsAndSpaces) {
    for (const std::string& name : Strings{"a/b", "a b", "a:b", "a,b", "a*", "a$b", "a=b", "a'b"})
        EXPECT_HAWF_ERROR(check_name(name), K::Usage, name);
}

TEST(CheckName, RefusesUnicode) {
    EXPECT_HAWF_ERROR(check_name("\xc3\xa9val"), K::Usage, "\xc3\xa9val");   // "éval"
    EXPECT_HAWF_ERROR(check_name("eval\xe2\x80\x8b"), K::Usage, "eval");     // zero-width space
}

TEST(CheckName, MessageStaysOneLineForControlBytes) {
    // The newline is shown escaped, so the message is still one line.
    EXPECT_HAWF_ERROR(check_name("ev\nal"), K::Usage, "ev\\nal");
    EXPECT_HAWF_ERROR(check_name("ev\tal"), K::Usage, "ev\\tal");
}

TEST(CheckName, NamesWhatIsChecked) { EXPECT_HAWF_ERROR(check_name("a b", "choice"), K::Usage, "bad choice"); }

// ---------------------------------------------------------------- job ids and checkpoint ids

TEST(CheckJobId, AcceptsPlainAndArray) {
    EXPECT_NO_THROW(check_job_id("1234"));
    EXPECT_NO_THROW(check_job_id("1234_7"));
}

TEST(CheckJobId, RefusesMalformed) {
    for (const std::string& id : Strings{"", "12a", "1234_", "_7", "1_2_3", "-1", "1234.0", std::string(25, '1')})
        EXPECT_HAWF_ERROR(check_job_id(id), K::Usage, "\"" + id + "\"");
}

TEST(ParseCheckpointId, Plain) {
    CheckpointId id = parse_checkpoint_id("4242:eval");
    EXPECT_EQ(id.job_id, "4242");
    EXPECT_EQ(id.name, "eval");
    EXPECT_EQ(id.str(), "4242:eval");
}

TEST(ParseCheckpointId, ArrayTask) {
    CheckpointId id = parse_checkpoint_id("1234_7:eval");
    EXPECT_EQ(id.job_id, "1234_7");
    EXPECT_EQ(id.name, "eval");
    EXPECT_EQ(id.str(), "1234_7:eval");
}

TEST(ParseCheckpointId, RefusesMalformed) {
    EXPECT_HAWF_ERROR(parse_checkpoint_id("4242"), K::Usage, "\"4242\"");
    EXPECT_HAWF_ERROR(parse_checkpoint_id("abc:eval"), K::Usage, "\"abc\"");
    EXPECT_HAWF_ERROR(parse_checkpoint_id("4242:"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_checkpoint_id("4242:.eval"), K::Usage, ".eval");
    EXPECT_HAWF_ERROR(parse_checkpoint_id("4242:eval:x"), K::Usage, "eval:x");
    EXPECT_HAWF_ERROR(parse_checkpoint_id(":eval"), K::Usage, "\"\"");
}

// ---------------------------------------------------------------- selections

TEST(ParseCheckpointSelection, JobsTasksRangesAndAll) {
    const CheckpointSelection one = parse_checkpoint_selection("4242:eval");
    EXPECT_EQ(one.name, "eval");
    ASSERT_EQ(one.jobs.size(), 1u);
    EXPECT_EQ(one.jobs[0].job, "4242");
    EXPECT_FALSE(one.jobs[0].all_tasks);
    EXPECT_TRUE(one.jobs[0].tasks.empty());

    const CheckpointSelection many = parse_checkpoint_selection("4242_[1-3,9],4250,4300_*,4301_7:eval");
    ASSERT_EQ(many.jobs.size(), 4u);
    EXPECT_EQ(many.jobs[0].job, "4242");
    EXPECT_EQ(many.jobs[0].tasks, (std::vector<std::uint32_t>{1, 2, 3, 9}));
    EXPECT_EQ(many.jobs[1].job, "4250");
    EXPECT_TRUE(many.jobs[1].tasks.empty());
    EXPECT_TRUE(many.jobs[2].all_tasks);
    EXPECT_EQ(many.jobs[3].tasks, (std::vector<std::uint32_t>{7}));
    EXPECT_EQ(parse_checkpoint_selection("7_[0-99999]:x").jobs[0].tasks.size(), max_selected);
}

TEST(ParseCheckpointSelection, RefusesMalformed) {
    const std::pair<std::string, std::string> bad[] = {
        {"4242", "use JOBID:NAME, JOBID_TASK:NAME, JOBID_[1-5,9]:NAME or JOBID_*:NAME"},
        {":eval", "use JOBID:NAME"},
        {"4242:.eval", "bad checkpoint name"},
        {"42a:eval", "bad job \"42a\""},
        {"4242,:eval", "bad job \"\""},
        {"4242_:eval", "bad task \"\""},
        {"4242_1-5:eval", "ranges go in brackets"},
        {"4242_[5-1]:eval", "bad range \"5-1\" in \"4242_[5-1]:eval\": it runs backwards"},
        {"4242_[1-x]:eval", "bad task \"x\""},
        {"4242_[1-5:eval", "ranges go in brackets"},
        {"4242_4000001:eval", "use a number from 0 to 4000000"},
        {"4242_[0-99999],43_1:eval", "names more than 100000 tasks"},
        {"4242_*x:eval", "bad task"},
    };
    for (const auto& [text, needle] : bad) EXPECT_HAWF_ERROR(parse_checkpoint_selection(text), K::Usage, needle);
}

TEST(TaskRanges, CompactsSortedTasks) {
    EXPECT_EQ(task_ranges({}), "");
    EXPECT_EQ(task_ranges({7}), "7");
    EXPECT_EQ(task_ranges({1, 2, 3, 5, 9, 10}), "1-3,5,9-10");
    EXPECT_EQ(task_ranges({0, 2, 4}), "0,2,4");
}

TEST(ParseFollowUpOf, OneCheckpointOrEachTasksOwn) {
    const FollowUpOf one = parse_followup_of("4242_3:eval");
    EXPECT_FALSE(one.each_task);
    EXPECT_EQ(one.for_task(8), parse_checkpoint_id("4242_3:eval"));
    const FollowUpOf each = parse_followup_of("4242_*:eval");
    EXPECT_TRUE(each.each_task);
    EXPECT_EQ(each.str(), "4242_*:eval");
    EXPECT_EQ(each.for_task(8), parse_checkpoint_id("4242_8:eval"));
    for (const char* bad : {"4242_*", "4242_1_*:eval", "_*:eval", "4242_*:.x", "4242_**:eval"})
        EXPECT_HAWF_ERROR(parse_followup_of(bad), K::Usage, "bad");
}

TEST(ArrayTasks, OnlyThatArraysTasksOfThatNameInTaskOrder) {
    const std::vector<CheckpointId> ids = {{"42_10", "eval"}, {"42_9", "eval"}, {"42_2", "mid"}, {"421_1", "eval"},
                                           {"42", "eval"},    {"42_1", "eval"}, {"43_1", "eval"}};
    EXPECT_EQ(array_tasks(ids, "42", "eval"),
              (std::vector<CheckpointId>{{"42_1", "eval"}, {"42_9", "eval"}, {"42_10", "eval"}}));
    EXPECT_TRUE(array_tasks(ids, "44", "eval").empty());
}

// ---------------------------------------------------------------- choices

TEST(ParseChoices, SplitsInOrder) {
    EXPECT_EQ(parse_choices("approve,reject"), (std::vector<std::string>{"approve", "reject"}));
    EXPECT_EQ(parse_choices("b,a,c"), (std::vector<std::string>{"b", "a", "c"}));
    EXPECT_EQ(parse_choices("one"), (std::vector<std::string>{"one"}));
}

TEST(ParseChoices, RefusesDuplicates) { EXPECT_HAWF_ERROR(parse_choices("go,stop,go"), K::Usage, "\"go\""); }

TEST(ParseChoices, RefusesEmpty) {
    EXPECT_HAWF_ERROR(parse_choices(""), K::Usage, "empty options");
    EXPECT_HAWF_ERROR(parse_choices("a,,b"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_choices("a,"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_choices(",a"), K::Usage, "\"\"");
}

TEST(ParseChoices, RefusesBadName) { EXPECT_HAWF_ERROR(parse_choices("ok,no way"), K::Usage, "no way"); }

// ---------------------------------------------------------------- parameter specs

TEST(ParseParamSpecs, AllTypes) {
    auto specs = parse_param_specs("lr:float,epochs:int,resume:bool,note:string,mode:enum(fast|slow|safe)");
    ASSERT_EQ(specs.size(), 5u);
    EXPECT_EQ(specs[0].key, "lr");
    EXPECT_EQ(specs[0].type, ParamType::Float);
    EXPECT_EQ(specs[1].type, ParamType::Int);
    EXPECT_EQ(specs[2].type, ParamType::Bool);
    EXPECT_EQ(specs[3].type, ParamType::String);
    EXPECT_EQ(specs[4].key, "mode");
    EXPECT_EQ(specs[4].type, ParamType::Enum);
    EXPECT_EQ(specs[4].values, (std::vector<std::string>{"fast", "slow", "safe"}));
    EXPECT_EQ(specs[4].type_text(), "enum(fast|slow|safe)");
    EXPECT_EQ(specs[0].type_text(), "float");
    EXPECT_EQ(specs[1].type_text(), "int");
    EXPECT_EQ(specs[2].type_text(), "bool");
    EXPECT_EQ(specs[3].type_text(), "string");
}

TEST(ParseParamSpecs, EnumFirstThenMore) {
    // The ',' split must not cut inside enum(...) and '|' must not leak into other params.
    auto specs = parse_param_specs("mode:enum(a|b),n:int");
    ASSERT_EQ(specs.size(), 2u);
    EXPECT_EQ(specs[0].values, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(specs[1].key, "n");
    EXPECT_EQ(specs[1].type, ParamType::Int);
}

TEST(ParseParamSpecs, TypeTextRoundTrips) {
    for (const std::string& text : Strings{"x:int", "x:float", "x:bool", "x:string", "x:enum(a|b)", "x:enum(only)"}) {
        ParamSpec spec = parse_param_spec(text);
        EXPECT_EQ("x:" + spec.type_text(), text);
        EXPECT_EQ(parse_param_spec("x:" + spec.type_text()), spec);
    }
}

TEST(ParseParamSpecs, RefusesBadTypes) {
    EXPECT_HAWF_ERROR(parse_param_specs("lr:double"), K::Usage, "\"double\"");
    EXPECT_HAWF_ERROR(parse_param_specs("lr:Int"), K::Usage, "\"Int\"");
    EXPECT_HAWF_ERROR(parse_param_specs("lr:"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_param_specs("mode:enum()"), K::Usage, "enum()");
    EXPECT_HAWF_ERROR(parse_param_specs("mode:enum(a|b"), K::Usage, "enum(a|b");
    EXPECT_HAWF_ERROR(parse_param_specs("mode:enum(a||b)"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_param_specs("mode:enum(a|a)"), K::Usage, "\"a\"");
    EXPECT_HAWF_ERROR(parse_param_specs("mode:enum(a b|c)"), K::Usage, "a b");
}

TEST(ParseParamSpecs, RefusesBadKeysAndShapes) {
    EXPECT_HAWF_ERROR(parse_param_specs("lr"), K::Usage, "\"lr\"");
    EXPECT_HAWF_ERROR(parse_param_specs(""), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_param_specs("1lr:float"), K::Usage, "\"1lr\"");
    EXPECT_HAWF_ERROR(parse_param_specs("l-r:float"), K::Usage, "\"l-r\"");
    EXPECT_HAWF_ERROR(parse_param_specs(":float"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_param_specs(std::string(65, 'k') + ":int"), K::Usage, std::string(65, 'k'));
    EXPECT_NO_THROW(parse_param_specs(std::string(64, 'k') + ":int"));
    EXPECT_HAWF_ERROR(parse_param_specs("lr:float,"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_param_specs("lr:float,lr:int"), K::Usage, "\"lr\"");
}

// ---------------------------------------------------------------- parameter values

ParamSpec spec_of(const std::string& text) { return parse_param_spec(text); }

TEST(CheckParamValue, Int) {
    const ParamSpec p = spec_of("n:int");
    for (const std::string& v : Strings{"0", "42", "-3", "+7", "9223372036854775807", "-9223372036854775808"})
        EXPECT_EQ(check_param_value(p, v, 4096), v);
    for (const std::string& v : Strings{"", "-", "4.2", "1e3", "0x10", " 4", "4 ", "four", "9223372036854775808",
                                "-9223372036854775809", "99999999999999999999999"})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "\"" + v + "\"");
}

TEST(CheckParamValue, Float) {
    const ParamSpec p = spec_of("lr:float");
    for (const std::string& v : Strings{"0.5", "1e-4", "-2.5E+3", "3", ".5", "1."})
        EXPECT_EQ(check_param_value(p, v, 4096), v);
    for (const std::string& v : Strings{"nan", "NaN", "inf", "-inf", "Infinity", "0x1p3", "0X10", "1e999", "", "1.5 ",
                                " 1.5", "1,5", "abc", "1e"})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "\"" + v + "\"");
}

TEST(CheckParamValue, FloatIsExactlyTheDecimalGrammar) {
    // strtod skips any leading whitespace: "\r1.5" used to be accepted, stored and
    // delivered (issue 8, defect 6). Disk and command line share this check.
    const ParamSpec p = spec_of("lr:float");
    for (const std::string& v : Strings{"+1.5", "-.5", "1E5", "1e+5", "1e-05", "007", "0", "-0.0"})
        EXPECT_EQ(check_param_value(p, v, 4096), v);
    for (const std::string& v : Strings{"\r1.5", "\v1.5", "\f1.5", "\n1.5", "\t1.5", "1.5\r", "1.5\v", "1.5\f",
                                        "1.5\n", "+-1", "--1", "+", ".", "e5", ".e5", "1e+", "1.5.2", "1e5.0",
                                        "+inf", "-nan", "infinity", "0x1.8p1", "1_000", "\xc2\xa0" "1.5"})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "for lr (float)");
    // Out of range either way, as before.
    EXPECT_HAWF_ERROR(check_param_value(p, "1e-400", 4096), K::Usage, "1e-400");
    EXPECT_HAWF_ERROR(check_param_value(p, "-1e400", 4096), K::Usage, "-1e400");
}

TEST(CheckParamValue, IntRefusesAnyWhitespace) {
    const ParamSpec p = spec_of("n:int");
    for (const std::string& v : Strings{"\r1", "\v1", "\f1", "1\r", "\n1", "+ 1", "1_000", "true"})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "for n (int)");
}

TEST(CheckParamValue, Bool) {
    const ParamSpec p = spec_of("resume:bool");
    EXPECT_EQ(check_param_value(p, "true", 4096), "true");
    EXPECT_EQ(check_param_value(p, "false", 4096), "false");
    for (const std::string& v : Strings{"True", "1", "yes", "", "false "})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "\"" + v + "\"");
}

TEST(CheckParamValue, EnumMembership) {
    const ParamSpec p = spec_of("mode:enum(fast|slow)");
    EXPECT_EQ(check_param_value(p, "fast", 4096), "fast");
    EXPECT_EQ(check_param_value(p, "slow", 4096), "slow");
    EXPECT_HAWF_ERROR(check_param_value(p, "medium", 4096), K::Usage, "\"medium\"");
    EXPECT_HAWF_ERROR(check_param_value(p, "Fast", 4096), K::Usage, "\"Fast\"");
    EXPECT_HAWF_ERROR(check_param_value(p, "fast|slow", 4096), K::Usage, "fast|slow");
    // The refusal says what is allowed.
    EXPECT_HAWF_ERROR(check_param_value(p, "medium", 4096), K::Usage, "fast|slow");
}

TEST(CheckParamValue, StringKeptVerbatim) {
    const ParamSpec p = spec_of("note:string");
    for (const std::string& v : Strings{std::string(""), std::string("line1\nline2\n"), std::string("a=b=c"),
                                std::string("say \"hi\" and 'bye'"), std::string("$(rm -rf /); `x` \\ ;|&"),
                                std::string("  padded  "), std::string("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")})
        EXPECT_EQ(check_param_value(p, v, 4096), v);
}

TEST(CheckParamValue, SizeLimit) {
    const ParamSpec p = spec_of("note:string");
    EXPECT_EQ(check_param_value(p, std::string(16, 'a'), 16), std::string(16, 'a'));
    EXPECT_HAWF_ERROR(check_param_value(p, std::string(17, 'a'), 16), K::Usage, "17 bytes");
}

TEST(CheckParamValue, RefusesNonUtf8) {
    const ParamSpec p = spec_of("note:string");
    // The bytes themselves cannot be shown; the message names the parameter and the offset.
    for (const std::string& v : Strings{std::string("ab\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                                std::string("x\x80y"), std::string("\xe2\x82"), std::string("\xf8\x88\x80\x80\x80")})
        EXPECT_HAWF_ERROR(check_param_value(p, v, 4096), K::Usage, "value of note is not valid UTF-8");
}

TEST(CheckUtf8, RefusesWhatJsonCannotStore) {
    // Surrogates, overlong 3/4-byte forms and code points above U+10FFFF are not UTF-8:
    // nlohmann::json refuses to write them, so they must be refused here, up front.
    for (const std::string& v : Strings{std::string("\xed\xa0\x80"), std::string("\xe0\x80\xaf"),
                                std::string("\xf0\x80\x80\xaf"), std::string("\xf4\x90\x80\x80"),
                                std::string("\xf5\x80\x80\x80")})
        EXPECT_HAWF_ERROR(check_utf8(v, "comment"), K::Usage, "comment is not valid UTF-8");
    for (const std::string& v : Strings{std::string("\xed\x9f\xbf"), std::string("\xf4\x8f\xbf\xbf"),
                                std::string("\xe0\xa0\x80"), std::string("\xf0\x90\x80\x80"), std::string("\x7f")})
        EXPECT_NO_THROW(check_utf8(v, "comment"));
}

TEST(CheckUtf8, AgreesWithJson) {
    // Whatever check_utf8 accepts, a JSON record can hold, and the other way round
    // (NUL aside, which JSON could hold but hawf refuses). Deterministic random bytes,
    // biased to the multi-byte ranges.
    std::uint32_t state = 12345;
    auto next = [&] { return state = state * 1664525u + 1013904223u; };
    const unsigned char interesting[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                         0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
                                         0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff};
    int accepted = 0, refused = 0;
    for (int n = 0; n < 200000; ++n) {
        std::string s;
        const std::size_t len = 1 + (next() >> 8) % 6;
        for (std::size_t k = 0; k < len; ++k) {
            const std::uint32_t r = next() >> 8;
            s += static_cast<char>(r % 3 ? interesting[(r >> 4) % sizeof interesting] : (r >> 4) & 0xff);
        }
        if (s.find('\0') != std::string::npos) continue;
        bool ours = true, theirs = true;
        try {
            check_utf8(s, "value");
        } catch (const Error&) {
            ours = false;
        }
        try {
            (void)nlohmann::json(s).dump();
        } catch (const nlohmann::json::exception&) {
            theirs = false;
        }
        ASSERT_EQ(ours, theirs) << "bytes: " << testing::PrintToString(s);
        (ours ? accepted : refused)++;
    }
    EXPECT_GT(accepted, 1000);
    EXPECT_GT(refused, 1000);
}

TEST(CheckUtf8, RefusesNul) {
    EXPECT_HAWF_ERROR(check_utf8(std::string("a\0b", 3), "comment"), K::Usage, "comment holds a NUL byte");
}

// ---------------------------------------------------------------- --set KEY=VALUE

TEST(ParseAssignment, KeepsEqualsInValue) {
    EXPECT_EQ(parse_assignment("lr=0.1"), (std::pair<std::string, std::string>{"lr", "0.1"}));
    EXPECT_EQ(parse_assignment("expr=a=b==c"), (std::pair<std::string, std::string>{"expr", "a=b==c"}));
    EXPECT_EQ(parse_assignment("note="), (std::pair<std::string, std::string>{"note", ""}));
    EXPECT_EQ(parse_assignment("note=x\ny \"q\""), (std::pair<std::string, std::string>{"note", "x\ny \"q\""}));
}

TEST(ParseAssignment, RefusesMalformed) {
    EXPECT_HAWF_ERROR(parse_assignment("lr"), K::Usage, "\"lr\"");
    EXPECT_HAWF_ERROR(parse_assignment("=1"), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_assignment("l r=1"), K::Usage, "\"l r\"");
    EXPECT_HAWF_ERROR(parse_assignment("9x=1"), K::Usage, "\"9x\"");
}

// ---------------------------------------------------------------- durations

TEST(ParseDuration, Accepts) {
    EXPECT_EQ(parse_duration("90s"), 90);
    EXPECT_EQ(parse_duration("30m"), 1800);
    EXPECT_EQ(parse_duration("24h"), 86400);
    EXPECT_EQ(parse_duration("2d"), 172800);
    EXPECT_EQ(parse_duration("1s"), 1);
    EXPECT_EQ(parse_duration("365d"), 365LL * 86400);
    EXPECT_EQ(parse_duration("8760h"), 365LL * 86400);
}

// As Slurm users write them: units combined, a decimal, Slurm's own time forms.
TEST(ParseDuration, AcceptsSlurmHabits) {
    EXPECT_EQ(parse_duration("1h30m"), 5400);
    EXPECT_EQ(parse_duration("2d12h"), 216000);
    EXPECT_EQ(parse_duration("1d2h3m4s"), 93784);
    EXPECT_EQ(parse_duration("1.5h"), 5400);
    EXPECT_EQ(parse_duration("0.5m"), 30);
    EXPECT_EQ(parse_duration("1.25d"), 108000);
    EXPECT_EQ(parse_duration("1:30"), 90);          // MM:SS
    EXPECT_EQ(parse_duration("01:30:00"), 5400);    // HH:MM:SS
    EXPECT_EQ(parse_duration("36:00:00"), 129600);  // hours past a day
    EXPECT_EQ(parse_duration("2-12"), 216000);      // D-HH
    EXPECT_EQ(parse_duration("2-12:30"), 217800);   // D-HH:MM
    EXPECT_EQ(parse_duration("1-00:00:01"), 86401); // D-HH:MM:SS
    EXPECT_EQ(parse_duration("365-00:00:00"), 365LL * 86400);
}

TEST(ParseDuration, Refuses) {
    for (const std::string& v :
         Strings{"0s", "0d", "5x", "366d", "8761h", "", "s", "-5m", "+5m", "5 m", "5S", "31536001s", "99999999999d",
                 "30m1h", "1h1h", "1h1.5m", "1.5", "1.h", ".5h", "1.5hm", "1.0000001h", "1.3s", "1:60", "1:00:60",
                 "1:2:3:4", "1-", "-1", "1--2", "1-2-3", "1:", ":30", "366-00:00:00", "0:00", "1-1h", "1e3s"})
        EXPECT_HAWF_ERROR(parse_duration(v), K::Usage, "bad duration \"" + v + "\"");
    // A bare number is minutes to Slurm and nothing to hawf: the message says so.
    EXPECT_HAWF_ERROR(parse_duration("90"), K::Usage,
                      "bad duration \"90\": give a unit (90s, 90m; Slurm would read it as minutes) or Slurm's "
                      "[D-]HH:MM:SS");
    EXPECT_HAWF_ERROR(parse_duration("5x"), K::Usage,
                      "bad duration \"5x\": use 90s, 30m, 1h30m, 1.5h, 2d or Slurm's [D-]HH:MM:SS");
}

TEST(FormatDuration, PicksLargestUnit) {
    EXPECT_EQ(format_duration(90), "90s");
    EXPECT_EQ(format_duration(1800), "30m");
    EXPECT_EQ(format_duration(86400), "1d");
    EXPECT_EQ(format_duration(7200), "2h");
    for (const std::string& v : Strings{"90s", "30m", "24h", "2d", "7h"})
        EXPECT_EQ(parse_duration(format_duration(parse_duration(v))), parse_duration(v));
}

// ---------------------------------------------------------------- --hawf-then

TEST(ParseThen, ScriptAndChoices) {
    ThenSpec t = parse_then("next.sbatch:approve,retry");
    EXPECT_EQ(t.script, "next.sbatch");
    EXPECT_EQ(t.on, (std::vector<std::string>{"approve", "retry"}));
    ThenSpec plain = parse_then("/home/u/next.sbatch");
    EXPECT_EQ(plain.script, "/home/u/next.sbatch");
    EXPECT_TRUE(plain.on.empty());
}

TEST(ParseThen, Refuses) {
    EXPECT_HAWF_ERROR(parse_then(""), K::Usage, "\"\"");
    EXPECT_HAWF_ERROR(parse_then(":approve"), K::Usage, "\":approve\"");
    EXPECT_HAWF_ERROR(parse_then("x.sh:a,a"), K::Usage, "\"a\"");
}

TEST(ParseThen, RefusesControlCharacters) {
    // The path is stored and shown to whoever reads the checkpoint, also root.
    EXPECT_HAWF_ERROR(parse_then("next\x1b[2J.sh"), K::Usage, "next\\e[2J.sh");
    EXPECT_HAWF_ERROR(parse_then("next\nfake.sh:approve"), K::Usage, "control characters");
    EXPECT_HAWF_ERROR(parse_then("next\xc2\x9b" "2J.sh"), K::Usage, "\\u009b");  // C1 CSI
    EXPECT_HAWF_ERROR(parse_then("bad \xff.sh"), K::Usage, "UTF-8");
    EXPECT_EQ(parse_then("/home/al ice/\xc3\xa9t\xc3\xa9.sh:approve").script, "/home/al ice/\xc3\xa9t\xc3\xa9.sh");
}

// ---------------------------------------------------------------- record fields that are shown

TEST(CheckUserName, AcceptsWhatUserNameReturns) {
    for (const std::string& v : Strings{"alice", "root", "_apt", "svc-build.2", "host$", "alice@ad.example.org",
                                        "timeout", "1001", "4294967294", "a", std::string(255, 'u')})
        EXPECT_NO_THROW(check_user_name(v)) << v;
}

TEST(CheckUserName, RefusesWhatCouldPassForSomethingElse) {
    for (const std::string& v : Strings{"", "-rf", ".hidden", "a b", "root\nalice", "\x1b[2Jroot", "al/ice", "a:b",
                                        "a$b", "$", "\xc3\xa9ric", "a\tb", std::string(256, 'u')})
        EXPECT_HAWF_ERROR(check_user_name(v, "owner"), K::Usage, "bad owner");
    EXPECT_HAWF_ERROR(check_user_name("root\nalice"), K::Usage, "root\\nalice");
}

TEST(CheckHostName, Refuses) {
    for (const std::string& v : Strings{"login1", "node-01.cluster.example", "n_1", std::string(255, 'h')})
        EXPECT_NO_THROW(check_host_name(v)) << v;
    for (const std::string& v : Strings{"", "a b", "node1\n", "\x1b]0;x\x07", "a/b", std::string(256, 'h')})
        EXPECT_HAWF_ERROR(check_host_name(v), K::Usage, "bad host name");
}

TEST(CheckPath, RefusesControlCharacters) {
    EXPECT_NO_THROW(check_path("/home/alice/next.sbatch", "script"));
    EXPECT_NO_THROW(check_path("/home/alice/\xe2\x82\xac 'x' \"y\".sh", "script"));
    for (const std::string& v : Strings{std::string("a\x1b[2J"), std::string("a\nb"), std::string("a\rb"),
                                        std::string("a\x7f"), std::string("a\xc2\x85"), std::string("")})
        EXPECT_HAWF_ERROR(check_path(v, "script"), K::Usage, "script");
    EXPECT_HAWF_ERROR(check_path(std::string(4097, 'p'), "script"), K::Usage, "4096");
    EXPECT_HAWF_ERROR(check_path(std::string("a\0b", 3), "script"), K::Usage, "NUL");
}

TEST(QuotedText, ShowsControlCharactersAsEscapes) {
    EXPECT_EQ(quoted_text("a\nb"), "\"a\\nb\"");
    EXPECT_EQ(quoted_text("\x1b[2J"), "\"\\e[2J\"");
    EXPECT_EQ(quoted_text("x\xc2\x9by"), "\"x\\u009by\"");
    EXPECT_EQ(quoted_text("\xc3\xa9"), "\"\xc3\xa9\"");
    EXPECT_EQ(quoted_text("say \"hi\" \\"), "\"say \\\"hi\\\" \\\\\"");
}

TEST(QuotedText, LongTextIsCutBetweenCharacters) {
    EXPECT_EQ(quoted_text(std::string(80, 'a')), "\"" + std::string(80, 'a') + "\"");  // nothing cut: no "..."
    // 79 ASCII bytes then 'é' (2 bytes) many times: the cut falls after a whole 'é'.
    std::string long_text = std::string(79, 'a');
    for (int i = 0; i < 20; ++i) long_text += "\xc3\xa9";
    const std::string shown = quoted_text(long_text);
    EXPECT_EQ(shown, "\"" + std::string(79, 'a') + "\xc3\xa9...\"");
    EXPECT_EQ(quoted_text(shown.substr(1, shown.size() - 5)), "\"" + std::string(79, 'a') + "\xc3\xa9\"");  // valid UTF-8
}


// ---------------------------------------------------------------- --params-from

TEST(ParseParamsTable, JsonKeyedByTaskJobOrCheckpoint) {
    const ParamsTable t = parse_params_table(
        R"({"8": {"lr": 0.001, "deep": true, "tag": "b c"}, "4242_9": {"lr": "1e-4"}, "4242_1:eval": {}})", "p.json");
    EXPECT_EQ(t.at("8"), (std::map<std::string, std::string>{{"lr", "0.001"}, {"deep", "true"}, {"tag", "b c"}}));
    EXPECT_EQ(t.at("4242_9").at("lr"), "1e-4");
    EXPECT_TRUE(t.at("4242_1:eval").empty());
    EXPECT_EQ(params_keys({"4242_8", "eval"}), (std::vector<std::string>{"4242_8:eval", "4242_8", "8"}));
    EXPECT_EQ(params_keys({"4242", "eval"}), (std::vector<std::string>{"4242:eval", "4242"}));
}

TEST(ParseParamsTable, CsvWithHeaderQuotesAndEmptyCells) {
    const ParamsTable t = parse_params_table("task,lr,tag\r\n1,0.1,\"a, \"\"b\"\"\"\n2,,x\n\n", "p.csv");
    EXPECT_EQ(t.at("1"), (std::map<std::string, std::string>{{"lr", "0.1"}, {"tag", "a, \"b\""}}));
    EXPECT_EQ(t.at("2"), (std::map<std::string, std::string>{{"tag", "x"}}));
}

TEST(ParseParamsTable, RefusesWithWhere) {
    const std::pair<std::string, std::string> bad[] = {
        {"{\"8\": 3}", "p: \"8\": give an object of parameter values"},
        {"{\"8\": {\"lr\": [1]}}", "lr: give a string, number or true/false"},
        {"{\"8\": {\"1lr\": 1}}", "bad parameter name \"1lr\""},
        {"{\"8\": ", "p: not valid JSON"},
        {"task\n1\n", "p:1: the header names the key column"},
        {"task,lr\n1,2,3\n", "p:2: 3 cells, the header has 2"},
        {"task,l r\n", "bad parameter name \"l r\""},
        {"task,lr\n1,\"2\n", "p:2: a quote is not closed"},
        {"task,lr\n1,2\n1,3\n", "p:3: \"1\" appears twice"},
        {"task,lr\n,2\n", "p:2: bad key \"\""},
    };
    for (const auto& [content, needle] : bad) EXPECT_HAWF_ERROR(parse_params_table(content, "p"), K::Usage, needle);
}

}  // namespace
}  // namespace hawf
