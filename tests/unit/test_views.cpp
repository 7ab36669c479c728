// views.hpp: hawf ls's rows and columns, with squeue's habits.
#include "views.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using nlohmann::json;

// A summary_json row as hawf ls gets it.
json row(const std::string& id, const std::string& state, const std::string& owner) {
    return {{"checkpoint", id}, {"state", state}, {"owner", owner}, {"options", {"approve", "reject"}},
            {"opened_at", "2026-12-02T10:00:00Z"}};
}

TEST(ListFilter, StatesInAnyCaseOwnersAndJobs) {
    EXPECT_EQ(parse_state_list("pending,DECIDED,Failed"),
              (std::vector<State>{State::Pending, State::Decided, State::Failed}));
    EXPECT_HAWF_ERROR(parse_state_list("pending,done"), K::Usage, "\"done\"");
    EXPECT_EQ(parse_job_list("28,29_3"), (std::vector<std::string>{"28", "29_3"}));
    for (const char* bad : {"28,", "x", "28_", "_3", "28_3_1", "-1"})
        EXPECT_HAWF_ERROR(parse_job_list(bad), K::Usage, "in --jobs: use JOBID or JOBID_TASK");

    ListFilter f;
    EXPECT_TRUE(listed(f, row("28:eval", "pending", "alice")));  // no filter: every row
    f.states = {State::Pending, State::Decided};
    f.owners = {"alice"};
    f.jobs = {"28", "30_1"};
    EXPECT_TRUE(listed(f, row("28:eval", "pending", "alice")));
    EXPECT_TRUE(listed(f, row("28_4:eval", "decided", "alice")));  // an array's id covers its tasks
    EXPECT_TRUE(listed(f, row("30_1:eval", "pending", "alice")));
    EXPECT_FALSE(listed(f, row("30_2:eval", "pending", "alice")));
    EXPECT_FALSE(listed(f, row("280:eval", "pending", "alice")));  // not a prefix match
    EXPECT_FALSE(listed(f, row("28:eval", "applied", "alice")));
    EXPECT_FALSE(listed(f, row("28:eval", "pending", "bob")));
}

TEST(ListFormat, ColumnsAsGivenInAnyCase) {
    EXPECT_EQ(parse_list_format(default_list_format),
              (std::vector<std::string>{"checkpoint", "state", "owner", "options", "deadline"}));
    EXPECT_EQ(parse_list_format("Job,NAME,decided_by"), (std::vector<std::string>{"job", "name", "decided_by"}));
    EXPECT_HAWF_ERROR(parse_list_format("job,size"), K::Usage,
                      "unknown column \"size\" in --format: use checkpoint, job, name, state, owner, options, opened, "
                      "deadline, decision, decided_by, reviewers");
}

TEST(ListTable, HeaderPaddingParsableAndLocalTime) {
    setenv("TZ", "Europe/Berlin", 1);  // UTC+1 in December
    tzset();
    json decided = row("28_4:eval", "decided", "alice");
    decided["deadline"] = "2026-12-02T12:30:00Z";
    decided["decision"] = {{"choice", "approve"}, {"decided_by", "bob"}};
    const std::vector<json> rows = {row("7:mid", "pending", "al\x1b[2Jice"), decided};
    const auto columns = parse_list_format("checkpoint,state,owner,deadline,decision,decided_by");
    EXPECT_EQ(list_table(rows, columns, true, false),
              "CHECKPOINT  STATE    OWNER       DEADLINE             DECISION  DECIDED_BY\n"
              "7:mid       pending  al\\e[2Jice  -                    -         -\n"
              "28_4:eval   decided  alice       2026-12-02T13:30:00  approve   bob\n");
    EXPECT_EQ(list_table(rows, parse_list_format("job,name,opened"), false, true),
              "7|mid|2026-12-02T11:00:00\n28_4|eval|2026-12-02T11:00:00\n");
    unsetenv("TZ");
    tzset();
}

}  // namespace
}  // namespace hawf
