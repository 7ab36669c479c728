// followups.hpp: keeping the follow-up jobs in Slurm in line with their checkpoint,
// and starting a follow-up with its decision (against a fake Slurm bindir).
#include "followups.hpp"
#include "views.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error.hpp"
#include "fake_slurm.hpp"
#include "helpers.hpp"
#include "munge.hpp"
#include "munged.hpp"
#include "review.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::FakeSlurm;
using test::TempDir;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using Argv = std::vector<std::string>;

bool same_change(const FollowUpChange& c, const std::string& job, const std::string& action) {
    return c.job == job && c.action_text() == action && c.error.empty();
}

std::string env_value(const Environment& env, const std::string& name) {
    for (const auto& [n, v] : env)
        if (n == name) return v;
    return "<unset>";
}

bool env_has(const Environment& env, const std::string& name) {
    return std::any_of(env.begin(), env.end(), [&](const auto& e) { return e.first == name; });
}

class FollowUpsTest : public ::testing::Test {
protected:
    FollowUpsTest() : spool_(root_.path()) {}

    // Options approve, reject, retry; follow-ups 101 (no choices: approve),
    // 102 (reject) and 103 (approve, retry).
    CheckpointSpec spec(const std::string& id, std::int64_t timeout_s = 0) const {
        CheckpointSpec s;
        s.id = parse_checkpoint_id(id);
        s.owner_uid = me_;
        s.owner = user_name(me_);
        s.scope = Scope::Job;
        s.options = {"approve", "reject", "retry"};
        s.params = parse_param_specs("lr:float,note:string,batchSize:int");
        if (timeout_s) {
            s.timeout_s = timeout_s;
            s.default_choice = "reject";
        }
        return s;
    }
    Checkpoint pending_with_followups(const CheckpointSpec& s) {
        open_checkpoint(spool_, s, plugin_);
        add_followup(spool_, FollowUp{s.id, me_, "101", "/w/a.sbatch", {}}, plugin_);
        add_followup(spool_, FollowUp{s.id, me_, "102", "/w/b.sbatch", {"reject"}}, cli_);
        add_followup(spool_, FollowUp{s.id, me_, "103", "/w/c.sbatch", {"approve", "retry"}}, cli_);
        return end_checkpoint(spool_, me_, s.id, 0, plugin_);
    }
    Checkpoint decided(const CheckpointSpec& s, const std::string& choice,
                       std::map<std::string, std::string> params = {}, const std::string& comment = "") {
        pending_with_followups(s);
        return decide(spool_, me_, s.id, Decision{choice, std::move(params), comment}, DecideMode::Decide, cli_,
                      limits_);
    }

    TempDir root_{0755};
    Spool spool_;
    FakeSlurm fake_;
    Slurm slurm_{fake_.bindir()};
    uid_t me_ = geteuid();
    Actor plugin_{user_name(geteuid()), geteuid(), Via::Plugin, "node1"};
    Actor cli_{user_name(geteuid()), geteuid(), Via::Cli, "login1"};
    Limits limits_;
    Patience quick_{std::chrono::milliseconds(2000), std::chrono::milliseconds(20)};

    // What squeue prints of one of my jobs (Slurm::job's format).
    std::string squeue_line(const std::string& state, unsigned long priority, std::int64_t eligible,
                            const std::string& reason) const {
        return test::squeue_line(me_, state, priority, eligible ? std::to_string(eligible) : "N/A", reason);
    }
    static Argv squeue_argv(const std::string& job) {
        return {"squeue", "--noheader", "--states=all", "--jobs=" + job, test::squeue_format};
    }
};

// ---------------------------------------------------------------- sync_followups

TEST_F(FollowUpsTest, DecidedReleasesTheChosenAndCancelsTheOthers) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[0], "101", "released"));
    EXPECT_TRUE(same_change(changes[1], "102", "cancelled"));
    EXPECT_TRUE(same_change(changes[2], "103", "released"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "101"},
                                                {"scancel", "102"},
                                                {"scontrol", "release", "103"}}));
    EXPECT_EQ(describe(changes), "released 101, cancelled 102, released 103");
}

TEST_F(FollowUpsTest, DecidedWithOnlyOneBranch) {
    const Checkpoint c = decided(spec("100:eval"), "reject");
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[0], "101", "cancelled"));
    EXPECT_TRUE(same_change(changes[1], "102", "released"));
    EXPECT_TRUE(same_change(changes[2], "103", "cancelled"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"},
                                                {"scontrol", "release", "102"},
                                                {"scancel", "103"}}));
}

TEST_F(FollowUpsTest, WithATimeoutTheBeginTimeIsResetFirst) {
    const Checkpoint c = decided(spec("100:eval", 3600), "retry");
    sync_followups(slurm_, c);
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"},
                                                {"scancel", "102"},
                                                {"scontrol", "update", "JobId=103", "StartTime=now"},
                                                {"scontrol", "release", "103"}}));
}

TEST_F(FollowUpsTest, SkipLeavesTheStartingFollowUpAlone) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    const auto changes = sync_followups(slurm_, c, "103");
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].job, "101");
    EXPECT_EQ(changes[1].job, "102");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "101"}, {"scancel", "102"}}));
}

TEST_F(FollowUpsTest, AppliedSyncsLikeDecided) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    const Checkpoint c = mark_applied(spool_, me_, s.id, "101", plugin_);
    ASSERT_EQ(c.state, State::Applied);
    sync_followups(slurm_, c, "101");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "102"}, {"scontrol", "release", "103"}}));
}

TEST_F(FollowUpsTest, RevokedWithoutDeadlineHoldsAgain) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    const Checkpoint c = revoke(spool_, me_, s.id, cli_);
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    for (const auto& ch : changes) EXPECT_EQ(ch.action, FollowUpAction::Held) << ch.job;
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "hold", "101"},
                                                {"scontrol", "hold", "102"},
                                                {"scontrol", "hold", "103"}}));
}

TEST_F(FollowUpsTest, RevokedWithDeadlineMovesTheBeginTimeBack) {
    const CheckpointSpec s = spec("100:eval", 7200);
    decided(s, "approve");
    const Checkpoint c = revoke(spool_, me_, s.id, cli_);
    ASSERT_GT(c.deadline(), 0);
    const std::string at = format_local_time(c.deadline());
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    for (const auto& ch : changes) EXPECT_TRUE(same_change(ch, ch.job, "eligible at " + at)) << ch.job;
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "update", "JobId=101", "StartTime=" + at},
                                                {"scontrol", "update", "JobId=102", "StartTime=" + at},
                                                {"scontrol", "update", "JobId=103", "StartTime=" + at}}));
}

TEST_F(FollowUpsTest, RunningOrExpectedChangesNothing) {
    const CheckpointSpec s = spec("100:eval");
    Checkpoint c = add_followup(spool_, FollowUp{s.id, me_, "101", "/w/a.sbatch", {}}, cli_);
    ASSERT_EQ(c.state, State::Expected);
    EXPECT_TRUE(sync_followups(slurm_, c).empty());
    c = open_checkpoint(spool_, s, plugin_);
    EXPECT_TRUE(sync_followups(slurm_, c).empty());
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, FailedCancelsThemAll) {
    const CheckpointSpec s = spec("100:eval");
    open_checkpoint(spool_, s, plugin_);
    add_followup(spool_, FollowUp{s.id, me_, "101", "/w/a.sbatch", {}}, cli_);
    add_followup(spool_, FollowUp{s.id, me_, "102", "/w/b.sbatch", {"reject"}}, cli_);
    const Checkpoint c = end_checkpoint(spool_, me_, s.id, 1 << 8, plugin_);
    ASSERT_EQ(c.state, State::Failed);
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_TRUE(same_change(changes[0], "101", "cancelled"));
    EXPECT_TRUE(same_change(changes[1], "102", "cancelled"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"}, {"scancel", "102"}}));
}

TEST_F(FollowUpsTest, AlreadyEndedJobsAreNotErrors) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("cancel.102", "scancel: error: Kill job error on job id 102: Job/step already completing or completed\n");
    auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[1], "102", "already ended"));
    EXPECT_TRUE(same_change(changes[2], "103", "released"));  // the others still happen

    fake_.fail("cancel.102", "scancel: error: Kill job error on job id 102: Job has already finished\n");
    EXPECT_TRUE(same_change(sync_followups(slurm_, c)[1], "102", "already ended"));
    fake_.fail("cancel.102", "scancel: error: Kill job error on job id 102: Invalid job id specified\n");
    EXPECT_TRUE(same_change(sync_followups(slurm_, c)[1], "102", "already ended"));

    // A decision after a follow-up died (cancelled by hand, failed at start) says so.
    fake_.fail("release.101", "scontrol: error: Job has already finished for job 101\n");
    fake_.fail("release.103", "scontrol: error: Invalid job id specified\n");
    changes = sync_followups(slurm_, c);
    EXPECT_TRUE(same_change(changes[0], "101", "already ended"));
    EXPECT_TRUE(same_change(changes[2], "103", "already ended"));
    fake_.fail("release.101", "scontrol: error: Socket timed out on send/recv operation\n");
    fake_.set_output("squeue.101", squeue_line("CANCELLED", 0, 0, "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[0], "101", "already ended"));
    fake_.ok("release.101");
    fake_.ok("release.103");

    const Checkpoint pending = revoke(spool_, me_, c.spec.id, cli_);
    fake_.fail("hold.101", "scontrol: error: Job has already finished\n");
    changes = sync_followups(slurm_, pending);
    EXPECT_TRUE(same_change(changes[0], "101", "already ended"));
    EXPECT_TRUE(same_change(changes[1], "102", "held"));
}

TEST_F(FollowUpsTest, FailedReleaseCarriesTheError) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("release.101", "scontrol: error: Invalid user id\n");
    fake_.set_output("squeue.101", squeue_line("PENDING", 0, 0, "JobHeldUser"));  // still held: refused
    fake_.fail("cancel.102", "scancel: error: Access/permission denied\n");
    fake_.set_output("squeue.102", squeue_line("PENDING", 0, 0, "JobHeldUser"));  // still there: refused
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_EQ(changes[0].action, FollowUpAction::Released);
    EXPECT_THAT(changes[0].error, HasSubstr("scontrol release 101: scontrol: error: Invalid user id"));
    EXPECT_EQ(changes[1].action, FollowUpAction::Cancelled);
    EXPECT_THAT(changes[1].error, HasSubstr("Access/permission denied"));
    EXPECT_TRUE(same_change(changes[2], "103", "released"));
}

TEST_F(FollowUpsTest, FailedBeginTimeUpdateDoesNotRelease) {
    const Checkpoint c = decided(spec("100:eval", 60), "reject");
    fake_.fail("update.102", "scontrol: error: Invalid job id specified\n");
    const auto changes = sync_followups(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[1], "102", "already ended"));  // and not released
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"},
                                                {"scontrol", "update", "JobId=102", "StartTime=now"},
                                                {"scancel", "103"}}));
}

// ---------------------------------------------------------------- when Slurm does not answer

// What scontrol release/hold/update (22.05) print when slurmctld does not answer
// within MessageTimeout (it was paused); scancel and squeue say "Socket timed out".
const std::string kTimedOut = "Unexpected message received for job 101\nslurm_suspend error: Unexpected message received\n";

TEST_F(FollowUpsTest, ReleaseThatTimedOutButHappenedIsReleased) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("release.101", kTimedOut);  // every time: it is squeue that tells
    fake_.set_output("squeue.101", squeue_line("PENDING", 4294901759u, 0, "Dependency"));
    const auto changes = sync_followups(slurm_, c, "", quick_);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[0], "101", "released")) << changes[0].error;
    EXPECT_FALSE(changes[0].unsure);
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "101"},
                                                squeue_argv("101"),
                                                {"scancel", "102"},
                                                {"scontrol", "release", "103"}}));
}

TEST_F(FollowUpsTest, NoAnswerAtAllSaysItCannotTellAfterABoundedWait) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("release.101", kTimedOut);
    fake_.fail("squeue.101", "slurm_load_jobs error: Socket timed out on send/recv operation\n");
    const auto start = std::chrono::steady_clock::now();
    const auto changes = sync_followups(slurm_, c, "", Patience{std::chrono::milliseconds(400), std::chrono::milliseconds(50)});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_EQ(changes[0].action, FollowUpAction::Released);
    EXPECT_TRUE(changes[0].unsure);
    EXPECT_EQ(changes[0].error, "Slurm did not answer: follow-up 101 may or may not be released (check squeue --jobs=101)");
    EXPECT_TRUE(same_change(changes[2], "103", "released"));
    EXPECT_LT(took, std::chrono::seconds(3));
    // It kept asking with growing pauses, and never sent a request it could not see fail.
    const auto calls = fake_.calls();
    const auto asked = std::count(calls.begin(), calls.end(), squeue_argv("101"));
    EXPECT_GE(asked, 3);
    EXPECT_LE(asked, 5);
    EXPECT_EQ(std::count(calls.begin(), calls.end(), Argv{"scontrol", "release", "101"}), 1);
}

TEST_F(FollowUpsTest, WhenSlurmAnswersAgainALostReleaseIsSentAgain) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    // Every way Slurm's commands (or run_command's own limit) say there was no answer.
    for (const std::string& no_answer :
         {kTimedOut, std::string("scontrol: error: Socket timed out on send/recv operation\n"),
          std::string("slurm_update error: Unable to contact slurm controller (connect failure)\n"),
          std::string("scontrol: error: Zero Bytes were transmitted or received\n"),
          std::string("scontrol release 101: no answer within 60 s\n")}) {
        fake_.clear_calls();
        fake_.fail("release.101", no_answer, 1);
        fake_.fail("squeue.101", "slurm_load_jobs error: Socket timed out on send/recv operation\n", 1);
        fake_.set_output("squeue.101", squeue_line("PENDING", 0, 0, "JobHeldUser"));  // then: still held
        const auto changes = sync_followups(slurm_, c, "", quick_);
        EXPECT_TRUE(same_change(changes[0], "101", "released")) << no_answer << changes[0].error;
        EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "101"},
                                                    squeue_argv("101"),
                                                    squeue_argv("101"),
                                                    {"scontrol", "release", "101"},
                                                    {"scancel", "102"},
                                                    {"scontrol", "release", "103"}}))
            << no_answer;
    }
}

TEST_F(FollowUpsTest, ARefusalStaysARefusalAfterOneLook) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("release.101", "scontrol: error: Access/permission denied\n");
    fake_.set_output("squeue.101", squeue_line("PENDING", 0, 0, "JobHeldUser"));
    const auto changes = sync_followups(slurm_, c, "", quick_);
    EXPECT_EQ(changes[0].action, FollowUpAction::Released);
    EXPECT_FALSE(changes[0].unsure);
    EXPECT_THAT(changes[0].error, EndsWith("/scontrol release 101: scontrol: error: Access/permission denied"));
    EXPECT_EQ(fake_.calls()[1], squeue_argv("101"));
    EXPECT_EQ(fake_.calls()[2], (Argv{"scancel", "102"}));  // not sent again
    // Slurm refusing to answer the question too leaves the refusal as it was.
    fake_.fail("squeue.101", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n");
    EXPECT_THAT(sync_followups(slurm_, c, "", quick_)[0].error,
                EndsWith("/scontrol release 101: scontrol: error: Access/permission denied"));
}

TEST_F(FollowUpsTest, ARefusedReleaseOfAJobThatRunsIsReleased) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("release.101", "scontrol: error: Job is no longer pending execution for job 101\n");
    fake_.set_output("squeue.101", squeue_line("RUNNING", 4294901759u, 0, "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[0], "101", "released"));
    fake_.set_output("squeue.101", squeue_line("CANCELLED", 4294901759u, 0, "None"));  // cancelled by hand
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[0], "101", "already ended"));
}

TEST_F(FollowUpsTest, CancelThatTimedOutIsCheckedToo) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    fake_.fail("cancel.102", "scancel: error: Kill job error on job id 102: Socket timed out on send/recv operation\n");
    fake_.set_output("squeue.102", squeue_line("CANCELLED", 0, 0, "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[1], "102", "cancelled"));
    fake_.set_output("squeue.102", squeue_line("COMPLETING", 0, 0, "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[1], "102", "cancelled"));
    fake_.set_output("squeue.102", squeue_line("COMPLETED", 0, 0, "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[1], "102", "already ended"));
    unlink(fake_.state("squeue.102").c_str());  // Slurm no longer knows it
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[1], "102", "already ended"));
}

TEST_F(FollowUpsTest, HoldThatTimedOutIsCheckedToo) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    const Checkpoint c = revoke(spool_, me_, s.id, cli_);
    fake_.fail("hold.101", kTimedOut);
    fake_.set_output("squeue.101", squeue_line("PENDING", 0, 0, "JobHeldUser"));
    const auto changes = sync_followups(slurm_, c, "", quick_);
    EXPECT_TRUE(same_change(changes[0], "101", "held")) << changes[0].error;
    EXPECT_TRUE(same_change(changes[1], "102", "held"));
}

TEST_F(FollowUpsTest, ADeadlineReleaseIsDoneOnlyOnceTheBeginTimeIsNow) {
    const Checkpoint c = decided(spec("100:eval", 3600), "retry");
    // Released at the deadline already: not held, but eligible only in an hour.
    fake_.fail("update.103", kTimedOut, 1);
    fake_.set_output("squeue.103", squeue_line("PENDING", 4294901759u, c.deadline(), "BeginTime"));
    const auto changes = sync_followups(slurm_, c, "", quick_);
    EXPECT_TRUE(same_change(changes[2], "103", "released")) << changes[2].error;
    const auto calls = fake_.calls();
    ASSERT_GE(calls.size(), 4u);
    EXPECT_EQ(std::vector<Argv>(calls.end() - 4, calls.end()),
              (std::vector<Argv>{{"scontrol", "update", "JobId=103", "StartTime=now"},
                                 squeue_argv("103"),
                                 {"scontrol", "update", "JobId=103", "StartTime=now"},
                                 {"scontrol", "release", "103"}}));
    // Eligible now: the update did happen.
    fake_.clear_calls();
    fake_.fail("update.103", kTimedOut, 1);
    fake_.set_output("squeue.103", squeue_line("PENDING", 4294901759u, std::time(nullptr), "None"));
    EXPECT_TRUE(same_change(sync_followups(slurm_, c, "", quick_)[2], "103", "released"));
    EXPECT_EQ(fake_.calls().back(), squeue_argv("103"));
}

TEST_F(FollowUpsTest, ScheduleDeadlineThatTimedOutIsChecked) {
    const Checkpoint c = pending_with_followups(spec("100:eval", 600));
    const std::string at = format_local_time(c.deadline());
    fake_.fail("release.101", kTimedOut);
    fake_.set_output("squeue.101", squeue_line("PENDING", 4294901759u, c.deadline(), "Dependency"));
    fake_.fail("release.102", kTimedOut);
    fake_.set_output("squeue.102", squeue_line("PENDING", 0, c.deadline(), "JobHeldUser"));  // not released
    fake_.fail("squeue.102", "slurm_load_jobs error: Socket timed out on send/recv operation\n", 1);
    const auto changes = schedule_deadline(slurm_, c, "", quick_);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_TRUE(same_change(changes[0], "101", "eligible at " + at)) << changes[0].error;
    EXPECT_TRUE(changes[1].unsure);  // answers, but the release never goes through
    EXPECT_EQ(changes[1].error, "Slurm did not answer: follow-up 102 may or may not be eligible at " + at +
                                    " (check squeue --jobs=102)");
    EXPECT_TRUE(same_change(changes[2], "103", "eligible at " + at));
}

// ---------------------------------------------------------------- the workflows: submit a follow-up, take the default

TEST_F(FollowUpsTest, SubmitFollowUpHoldsItBehindTheJobAndRegistersIt) {
    const CheckpointSpec s = spec("100:eval");
    open_checkpoint(spool_, s, plugin_);
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
    std::string job;
    const Checkpoint c = submit_followup(spool_, slurm_, s.id, me_,
                                         FollowUpSubmission{"/w/next.sbatch", "/spool/scripts/t/next.sbatch",
                                                            {"retry"}, root_.path(), &env, {"--time=1:00:00"}, {}},
                                         cli_, &job);
    EXPECT_EQ(job, "123");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"sbatch", "--parsable", "--hold", "--dependency=afterok:100",
                                                 "--kill-on-invalid-dep=yes", "--requeue", "--hawf-after=100:eval",
                                                 "--comment=hawf: waiting for 100:eval", "--time=1:00:00",
                                                 "/spool/scripts/t/next.sbatch"}}));
    ASSERT_EQ(c.followups.size(), 1u);
    EXPECT_EQ(c.followups[0].job, "123");
    EXPECT_EQ(c.followups[0].script, "/w/next.sbatch");  // what the record names, not the snapshot
    EXPECT_EQ(c.followups[0].on, (std::vector<std::string>{"retry"}));
}

TEST_F(FollowUpsTest, AFollowUpTheCheckpointRefusesIsCancelled) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    fake_.clear_calls();
    EXPECT_HAWF_ERROR(submit_followup(spool_, slurm_, s.id, me_, FollowUpSubmission{"/w/late.sbatch", "", {}, "/", nullptr, {}, {}},
                                      cli_),
                      ErrorKind::Conflict, "(follow-up 123 cancelled)");
    EXPECT_EQ(fake_.calls().back(), (Argv{"scancel", "123"}));
    EXPECT_EQ(spool_.load(me_, s.id).followups.size(), 3u);
}

// ---------------------------------------------------------------- follow-up arrays

// --hawf-then on array job 4242 (tasks 1-3): the first task to get there submits one
// follow-up array gated task by task and publishes it; each task registers its own task.
TEST_F(FollowUpsTest, TheFirstArrayTaskSubmitsOneFollowUpArrayForAll) {
    fake_.set_output("squeue.4242", "1\n2\n3\n");
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
    const std::vector<FollowUpSubmission> what = {
        FollowUpSubmission{"/w/next.sbatch", "/spool/scripts/t/next.sbatch", {"retry"}, root_.path(), &env, {}, {}}};
    const CheckpointSpec first = spec("4242_2:eval");
    const Checkpoint c = submit_array_followups(spool_, slurm_, open_checkpoint(spool_, first, plugin_), what, plugin_);
    EXPECT_EQ(fake_.calls(),
              (std::vector<Argv>{{"squeue", "--noheader", "--states=all", "--jobs=4242", "--Format=ArrayTaskID:0", "--array"},
                                 {"sbatch", "--parsable", "--hold", "--dependency=aftercorr:4242",
                                  "--kill-on-invalid-dep=yes", "--requeue", "--hawf-after=4242_*:eval",
                                  "--comment=hawf: waiting for 4242_*:eval", "--array=1-3",
                                  "/spool/scripts/t/next.sbatch"}}));
    ASSERT_EQ(c.followups.size(), 1u);
    EXPECT_EQ(c.followups[0].job, "123_2");
    EXPECT_EQ(c.followups[0].on, (std::vector<std::string>{"retry"}));
    // Another task (and the first one requeued) only registers its own.
    fake_.clear_calls();
    const Checkpoint other =
        submit_array_followups(spool_, slurm_, open_checkpoint(spool_, spec("4242_3:eval"), plugin_), what, plugin_);
    ASSERT_EQ(other.followups.size(), 1u);
    EXPECT_EQ(other.followups[0].job, "123_3");
    EXPECT_EQ(submit_array_followups(spool_, slurm_, spool_.load(me_, first.id), what, plugin_).followups.size(), 1u);
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, ArrayTasksWaitForTheClaimantAndLearnOfItsFailure) {
    const std::vector<FollowUpSubmission> what = {FollowUpSubmission{"/w/next.sbatch", "", {}, "/", nullptr, {}, {}}};
    // Task 1 claimed them and has not published yet: task 3 waits, then gives up.
    EXPECT_EQ(spool_.claim_array_followups(me_, "4242", "eval", "1"), "1");
    EXPECT_EQ(spool_.claim_array_followups(me_, "4242", "eval", "3"), "1");  // the first claim wins
    const Checkpoint task3 = open_checkpoint(spool_, spec("4242_3:eval"), plugin_);
    EXPECT_HAWF_ERROR(submit_array_followups(spool_, slurm_, task3, what, plugin_, std::chrono::milliseconds(300)),
                      ErrorKind::System, "claimed by task 4242_1 but not submitted within 0 s");
    EXPECT_TRUE(fake_.calls().empty());
    // The claimant failed to submit: the others fail at once with its reason.
    spool_.publish_array_followups(me_, "4242", "eval", R"({"error": "sbatch: Invalid partition"})");
    EXPECT_HAWF_ERROR(submit_array_followups(spool_, slurm_, task3, what, plugin_), ErrorKind::System,
                      "failed in the task that submits them: sbatch: Invalid partition");
    EXPECT_HAWF_ERROR(spool_.publish_array_followups(me_, "4242", "eval", "{}"), ErrorKind::Conflict, "exists already");
    // What a task reads back is checked: a job id that is not one is refused.
    spool_.publish_array_followups(me_, "4343", "eval", R"({"followups": [{"script": "/w/next.sbatch", "job": "1;x"}]})");
    EXPECT_HAWF_ERROR(submit_array_followups(spool_, slurm_, open_checkpoint(spool_, spec("4343_1:eval"), plugin_), what,
                                             plugin_),
                      ErrorKind::Untrusted, "not as hawf writes them");
}

TEST_F(FollowUpsTest, AClaimantThatCannotSubmitPublishesWhy) {
    fake_.set_output("squeue.4242", "1\n2\n");
    fake_.fail("sbatch", "sbatch: error: Batch job submission failed: Invalid partition name specified");
    const std::vector<FollowUpSubmission> what = {FollowUpSubmission{"/w/next.sbatch", "", {}, "/", nullptr, {}, {}}};
    EXPECT_HAWF_ERROR(submit_array_followups(spool_, slurm_, open_checkpoint(spool_, spec("4242_1:eval"), plugin_),
                                             what, plugin_),
                      ErrorKind::System, "Invalid partition name");
    EXPECT_THAT(*spool_.array_followups(me_, "4242", "eval"), HasSubstr("Invalid partition name"));
}

// A bulk decision releases a follow-up array's tasks in one command.
TEST_F(FollowUpsTest, SyncingSeveralCheckpointsReleasesAnArraysTasksAtOnce) {
    std::vector<Checkpoint> ckpts;
    for (const char* task : {"1", "2", "3", "5"}) {
        const CheckpointSpec s = spec(std::string("4242_") + task + ":eval");
        open_checkpoint(spool_, s, plugin_);
        add_followup(spool_, FollowUp{s.id, me_, std::string("4301_") + task, "/w/a.sbatch", {}}, plugin_);
        add_followup(spool_, FollowUp{s.id, me_, std::string("4302_") + task, "/w/b.sbatch", {"reject"}}, plugin_);
        end_checkpoint(spool_, me_, s.id, 0, plugin_);
        ckpts.push_back(decide(spool_, me_, s.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_));
    }
    const auto changes = sync_followups(slurm_, ckpts, quick_);
    ASSERT_EQ(changes.size(), 8u);
    EXPECT_TRUE(same_change(changes[0], "4301_1", "released"));
    EXPECT_TRUE(same_change(changes[7], "4302_5", "cancelled"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "4301_[1-3,5]"}, {"scancel", "4302_[1-3,5]"}}));
    // Refused as a whole: each is released on its own, and checked.
    fake_.clear_calls();
    fake_.fail("release.4301_[1-3,5]", "scontrol: error: Invalid job id specified for job 4301_5");
    fake_.fail("release.4301_5", "scontrol: error: Invalid job id specified");
    const auto again = sync_followups(slurm_, ckpts, quick_);
    EXPECT_TRUE(same_change(again[0], "4301_1", "released"));
    EXPECT_EQ(again[6].job, "4301_5");
    EXPECT_EQ(again[6].action, FollowUpAction::AlreadyEnded);
    EXPECT_EQ(fake_.calls()[2], (Argv{"scontrol", "release", "4301_1"}));
    // Revoked, all wait again: held in one command.
    fake_.clear_calls();
    std::vector<Checkpoint> revoked;
    for (const auto& c : ckpts) revoked.push_back(revoke(spool_, me_, c.spec.id, cli_));
    EXPECT_EQ(sync_followups(slurm_, revoked, quick_).size(), 8u);
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "hold", "4301_[1-3,5]", "4302_[1-3,5]"}}));
}

TEST_F(FollowUpsTest, TakeDefaultAndSyncOnlyPastTheDeadlineAndLeavesTheStartingOneAlone) {
    const CheckpointSpec s = spec("100:eval", 60);
    const Checkpoint pending = pending_with_followups(s);
    fake_.clear_calls();
    EXPECT_EQ(take_default_and_sync(spool_, slurm_, spool_.load(me_, s.id), pending.deadline() - 1).state, State::Pending);
    EXPECT_TRUE(fake_.calls().empty());
    std::vector<FollowUpChange> changes;
    const Checkpoint c = take_default_and_sync(spool_, slurm_, spool_.load(me_, s.id), pending.deadline(), "102", &changes);
    ASSERT_EQ(c.state, State::Decided);
    EXPECT_EQ((std::make_pair(c.decision()->choice, c.decided_by())), std::make_pair(std::string("reject"),
                                                                                      std::string("timeout")));
    // 102 (reject) is the one starting: left alone; 101 and 103 are for approve: cancelled.
    EXPECT_EQ(describe(changes), "cancelled 101, cancelled 103");
    for (const auto& call : fake_.calls()) EXPECT_EQ(std::find(call.begin(), call.end(), "102"), call.end());
    // Decided already: nothing more.
    fake_.clear_calls();
    EXPECT_EQ(take_default_and_sync(spool_, slurm_, spool_.load(me_, s.id), pending.deadline() + 100).history.size(),
              c.history.size());
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, TakeDefaultAndSyncLeavesADelegatedCheckpointToHawfd) {
    CheckpointSpec s = spec("100:eval", 60);
    s.reviewers = {"bob"};
    const Checkpoint pending = pending_with_followups(s);
    EXPECT_EQ(take_default_and_sync(spool_, slurm_, spool_.load(me_, s.id), pending.deadline() + 1).state, State::Pending);
}

// ---------------------------------------------------------------- schedule_deadline

TEST_F(FollowUpsTest, ScheduleDeadlineMakesFollowUpsEligibleAtTheDeadline) {
    const Checkpoint c = pending_with_followups(spec("100:eval", 600));
    const std::string at = format_local_time(c.deadline());
    const auto changes = schedule_deadline(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    for (const auto& ch : changes) EXPECT_TRUE(same_change(ch, ch.job, "eligible at " + at)) << ch.job;
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "update", "JobId=101", "StartTime=" + at},
                                                {"scontrol", "release", "101"},
                                                {"scontrol", "update", "JobId=102", "StartTime=" + at},
                                                {"scontrol", "release", "102"},
                                                {"scontrol", "update", "JobId=103", "StartTime=" + at},
                                                {"scontrol", "release", "103"}}));
}

TEST_F(FollowUpsTest, ScheduleDeadlineLeavesADelegatedCheckpointsFollowUpsToHawfd) {
    CheckpointSpec s = spec("100:eval", 600);
    s.reviewers = {"bob"};  // its default needs hawfd's seal: hawfd releases them after taking it
    const Checkpoint c = pending_with_followups(s);
    EXPECT_TRUE(schedule_deadline(slurm_, c).empty());
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, ScheduleDeadlineOnlyOne) {
    const Checkpoint c = pending_with_followups(spec("100:eval", 600));
    const std::string at = format_local_time(c.deadline());
    const auto changes = schedule_deadline(slurm_, c, "102");
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].job, "102");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "update", "JobId=102", "StartTime=" + at},
                                                {"scontrol", "release", "102"}}));
}

TEST_F(FollowUpsTest, ScheduleDeadlineOnlyWhenPendingWithADeadline) {
    // No timeout.
    Checkpoint c = pending_with_followups(spec("100:eval"));
    EXPECT_TRUE(schedule_deadline(slurm_, c).empty());
    // Running, and decided.
    const CheckpointSpec s = spec("200:eval", 600);
    c = open_checkpoint(spool_, s, plugin_);
    add_followup(spool_, FollowUp{s.id, me_, "201", "/w/a.sbatch", {}}, cli_);
    EXPECT_TRUE(schedule_deadline(slurm_, spool_.load(me_, s.id)).empty());
    end_checkpoint(spool_, me_, s.id, 0, plugin_);
    c = decide(spool_, me_, s.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_TRUE(schedule_deadline(slurm_, c).empty());
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, ScheduleDeadlineReportsRefusals) {
    const Checkpoint c = pending_with_followups(spec("100:eval", 600));
    fake_.fail("release.101", "scontrol: error: Access/permission denied\n");
    const auto changes = schedule_deadline(slurm_, c);
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_THAT(changes[0].error, HasSubstr("Access/permission denied"));
    EXPECT_TRUE(changes[1].error.empty());
}

// ---------------------------------------------------------------- reshape_followups

// squeue's line for Slurm::shape: STATE|TIME_LIMIT|PARTITION|NODES|MAX_NODES|CPUS|TASKS.
const char* const held_shape = "PENDING|UNLIMITED|debug|1|1|1|1\n";
Argv shape_argv(const std::string& job) {
    return {"squeue", "--noheader", "--states=all", "--jobs=" + job,
            "--Format=State:0|,TimeLimit:0|,Partition:0|,NumNodes:0|,MaxNodes:0|,NumCPUs:0|,NumTasks:0"};
}
Argv update_argv(const std::string& job, std::vector<std::string> assignments) {
    Argv argv = {"scontrol", "update", "JobId=" + job};
    argv.insert(argv.end(), assignments.begin(), assignments.end());
    return argv;
}

TEST_F(FollowUpsTest, ReshapeChangesExactlyTheFollowUpsTheChoiceReleases) {
    const Checkpoint c = pending_with_followups(spec("100:eval"));
    for (const char* job : {"101", "102", "103"}) fake_.set_output(std::string("squeue.") + job, held_shape);
    EXPECT_EQ(reshape_followups(slurm_, c, "approve", {"TimeLimit=1:00:00", "Partition=gpu"}),
              (std::vector<std::string>{"follow-up 101 unchanged", "follow-up 103 unchanged"}));  // the fake keeps no shapes
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{shape_argv("101"), update_argv("101", {"TimeLimit=1:00:00", "Partition=gpu"}),
                                                shape_argv("101"), shape_argv("103"),
                                                update_argv("103", {"TimeLimit=1:00:00", "Partition=gpu"}),
                                                shape_argv("103")}));
    fake_.clear_calls();
    reshape_followups(slurm_, c, "reject", {"NumNodes=2"});
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{shape_argv("102"), update_argv("102", {"NumNodes=2"}), shape_argv("102")}));
    fake_.clear_calls();
    EXPECT_TRUE(reshape_followups(slurm_, c, "approve", {}).empty());
    EXPECT_TRUE(fake_.calls().empty());
    // A follow-up that has ended is left alone: the decision reports it.
    fake_.set_output("squeue.101", "CANCELLED|UNLIMITED|debug|1|1|1|1\n");
    EXPECT_EQ(reshape_followups(slurm_, c, "approve", {"TimeLimit=5"}),
              (std::vector<std::string>{"follow-up 103 unchanged"}));
}

TEST_F(FollowUpsTest, ReshapeIsAllOrNothing) {
    const Checkpoint c = pending_with_followups(spec("100:eval"));
    fake_.set_output("squeue.101", "PENDING|1-00:00:00|debug|1|2|1|1\n");
    fake_.set_output("squeue.103", held_shape);
    // Slurm applies part of what it refuses (NumNodes, NumCPUs, NumTasks): every
    // follow-up gets back what squeue showed before, the last changed first.
    fake_.fail("update.103", "scontrol: error: Requested partition configuration not available now for job 103\n", 1);
    EXPECT_HAWF_ERROR(reshape_followups(slurm_, c, "approve", {"TimeLimit=5", "NumNodes=5"}), K::System,
                      "/scontrol update JobId=103 TimeLimit=5 NumNodes=5: scontrol: error: Requested partition "
                      "configuration not available now for job 103; nothing recorded or released, every follow-up "
                      "is as it was");
    const std::vector<Argv> calls = fake_.calls();
    ASSERT_EQ(calls.size(), 9u);
    EXPECT_EQ(calls[4], update_argv("103", {"TimeLimit=5", "NumNodes=5"}));  // refused
    EXPECT_EQ(calls[5], update_argv("103", {"TimeLimit=UNLIMITED", "NumNodes=1", "NumCPUs=1", "NumTasks=1"}));
    EXPECT_EQ(calls[6], shape_argv("103"));
    EXPECT_EQ(calls[7], update_argv("101", {"TimeLimit=1-00:00:00", "NumNodes=1-2", "NumCPUs=1", "NumTasks=1"}));
    EXPECT_EQ(calls[8], shape_argv("101"));
    EXPECT_EQ(spool_.load(me_, c.spec.id).state, State::Pending);
}

TEST_F(FollowUpsTest, ReshapeSaysWhatAFollowUpIsLeftWith) {
    const Checkpoint c = pending_with_followups(spec("100:eval"));
    fake_.set_output("squeue.101", held_shape);
    fake_.set_output("squeue.103", held_shape);
    fake_.fail("update.103", "scontrol: error: Invalid partition name specified\n");
    // 101 was changed; Slurm refuses to put it back, and then does not answer squeue.
    const auto refuse_to_put_back = [&] {
        fake_.fail_after("update.101", "scontrol: error: Access/permission denied\n", 1);
        fake_.fail_after("squeue.101", "squeue: error: Socket timed out on send/recv operation\n", 2);
    };
    refuse_to_put_back();
    EXPECT_HAWF_ERROR(reshape_followups(slurm_, c, "approve", {"Partition=nosuch"}), K::System,
                      "/scontrol update JobId=103 Partition=nosuch: scontrol: error: Invalid partition name "
                      "specified; nothing recorded or released, put back what Slurm allowed; follow-up 101 could "
                      "not be put back (");
    refuse_to_put_back();
    EXPECT_HAWF_ERROR(reshape_followups(slurm_, c, "approve", {"Partition=nosuch"}), K::System,
                      "/scontrol update JobId=101 Partition=debug: scontrol: error: Access/permission denied): its "
                      "state is unknown, check squeue --jobs=101");
    // Slurm not answering before anything changed: all is as it was.
    fake_.ok("update.101");
    fake_.fail("squeue.101", "squeue: error: Socket timed out on send/recv operation\n");
    EXPECT_HAWF_ERROR(reshape_followups(slurm_, c, "approve", {"Partition=gpu"}), K::System,
                      "every follow-up is as it was");
}

// ---------------------------------------------------------------- actions

TEST(FollowUpActions, NamedForPeopleAndInJson) {
    for (FollowUpAction a : {FollowUpAction::Released, FollowUpAction::Cancelled, FollowUpAction::Held,
                             FollowUpAction::Eligible, FollowUpAction::AlreadyEnded})
        EXPECT_EQ(parse_followup_action(to_string(a)), a);
    const FollowUpChange eligible{"101", FollowUpAction::Eligible, "2026-12-02T10:00:00", "", false};
    EXPECT_EQ(eligible.action_text(), "eligible at 2026-12-02T10:00:00");
    EXPECT_EQ(changes_json({eligible}).dump(), R"([{"action":"eligible","at":"2026-12-02T10:00:00","job":"101"}])");
    EXPECT_EQ(changes_json({{"102", FollowUpAction::AlreadyEnded, "", "", false}}).dump(),
              R"([{"action":"already ended","job":"102"}])");
    EXPECT_HAWF_ERROR(parse_followup_action("eligible at 10:00"), K::Untrusted, "unknown follow-up action");
}

// ---------------------------------------------------------------- decide_and_sync

TEST_F(FollowUpsTest, DecideAndSyncRecordsReleasesAndSignalsARunningJob) {
    CheckpointSpec s = spec("100:eval");
    s.signal = "USR1";
    const Checkpoint before = pending_with_followups(s);
    fake_.set_output("squeue.100", squeue_line("RUNNING", 1, 0, "None"));
    fake_.set_output("squeue.101", held_shape);
    fake_.set_output("squeue.103", held_shape);
    const DecideRequest request{Decision{"approve", {{"lr", "0.1"}}, ""}, DecideMode::Decide, {"TimeLimit=30"}};
    EXPECT_EQ(prepare_decision(slurm_, before, request, me_, limits_).size(), 2u);
    const DecideOutcome out = decide_and_sync(spool_, slurm_, me_, s.id, request, cli_, limits_);
    EXPECT_EQ(out.ckpt.state, State::Decided);
    EXPECT_EQ(describe(out.changes), "released 101, cancelled 102, released 103");
    EXPECT_EQ(out.signalled, "USR1");
    const std::vector<Argv> calls = fake_.calls();
    ASSERT_EQ(calls.size(), 11u);  // reshaped (asked before and after), released, cancelled, released, asked, signalled
    EXPECT_EQ(calls[1], update_argv("101", {"TimeLimit=30"}));
    EXPECT_EQ(calls[4], update_argv("103", {"TimeLimit=30"}));
    EXPECT_EQ(calls[6], (Argv{"scontrol", "release", "101"}));
    EXPECT_EQ(calls[9], squeue_argv("100"));
    EXPECT_EQ(calls[10][0], "scancel");
    // Revoked: pending again, its follow-ups held again, the job not signalled.
    fake_.clear_calls();
    const DecideOutcome revoked =
        decide_and_sync(spool_, slurm_, me_, s.id, DecideRequest{std::nullopt, DecideMode::Decide, {}}, cli_, limits_);
    EXPECT_EQ(revoked.ckpt.state, State::Pending);
    EXPECT_EQ(revoked.signalled, "");
    EXPECT_EQ(describe(revoked.changes), "held 101, held 102, held 103");  // the fake keeps no job states
}

TEST_F(FollowUpsTest, PrepareDecisionRefusesBeforeTouchingSlurm) {
    const Checkpoint before = pending_with_followups(spec("100:eval"));
    const auto prepare = [&](const DecideRequest& request) {
        prepare_decision(slurm_, before, request, me_, limits_);
    };
    EXPECT_HAWF_ERROR(prepare({Decision{"maybe", {}, ""}, DecideMode::Decide, {"TimeLimit=30"}}), K::Usage,
                      "bad choice \"maybe\"");
    EXPECT_HAWF_ERROR(prepare({Decision{"approve", {}, ""}, DecideMode::Amend, {"TimeLimit=30"}}), K::Conflict,
                      "cannot amend 100:eval");
    EXPECT_HAWF_ERROR(prepare({std::nullopt, DecideMode::Decide, {"TimeLimit=30"}}), K::Usage, "revoke");
    EXPECT_HAWF_ERROR(prepare_decision(slurm_, before, {Decision{"approve", {}, ""}, DecideMode::Decide, {"TimeLimit=30"}},
                                       me_ + 1, limits_),
                      K::Denied, "");
    EXPECT_TRUE(fake_.calls().empty());
    // A reshape Slurm refuses: nothing recorded, nothing released.
    fake_.set_output("squeue.101", held_shape);
    fake_.set_output("squeue.103", held_shape);
    fake_.fail("update.103", "scontrol: error: Invalid time limit specification\n");
    EXPECT_HAWF_ERROR(prepare({Decision{"approve", {}, ""}, DecideMode::Decide, {"TimeLimit=99"}}), K::System,
                      "follow-up 103 not reshaped");
    for (const auto& call : fake_.calls()) EXPECT_NE(call[1], "release");
    EXPECT_EQ(spool_.load(me_, before.spec.id).state, State::Pending);
}

// ---------------------------------------------------------------- decision_environment

TEST_F(FollowUpsTest, DecisionEnvironment) {
    const std::string note = "line1\nline2 \"double\" 'single' $(id) `x` \\ \xe2\x82\xac";
    const Checkpoint c = decided(spec("100:eval"), "retry", {{"lr", "1e-4"}, {"note", note}, {"batchSize", "64"}},
                                 "comment with\nnewline and \"quotes\"");
    const std::string dir = spool_.files_dir(me_, c.spec.id);
    const Environment env = decision_environment(c, dir, "/spool/delivered/101.json");
    const Environment expected = {
        {"HAWF_AFTER", "100:eval"},
        {"HAWF_AFTER_DIR", dir},
        {"HAWF_DECISION", "retry"},
        {"HAWF_DECIDED_BY", user_name(me_)},
        {"HAWF_COMMENT", "comment with\nnewline and \"quotes\""},
        {"HAWF_PARAM_BATCHSIZE", "64"},
        {"HAWF_PARAM_LR", "1e-4"},
        {"HAWF_PARAM_NOTE", note},
        {"HAWF_DECISION_FILE", "/spool/delivered/101.json"},
    };
    EXPECT_EQ(env, expected);

    const Environment without_file = decision_environment(c, dir);
    EXPECT_FALSE(env_has(without_file, "HAWF_DECISION_FILE"));
    EXPECT_EQ(without_file.size(), expected.size() - 1);
}

TEST_F(FollowUpsTest, DecisionEnvironmentWithoutParams) {
    const Checkpoint c = decided(spec("100:eval"), "approve");
    const Environment env = decision_environment(c, "/d");
    EXPECT_EQ(env, (Environment{{"HAWF_AFTER", "100:eval"},
                                {"HAWF_AFTER_DIR", "/d"},
                                {"HAWF_DECISION", "approve"},
                                {"HAWF_DECIDED_BY", user_name(me_)},
                                {"HAWF_COMMENT", ""}}));
}

// ---------------------------------------------------------------- start_followup

TEST_F(FollowUpsTest, StartRefusesAJobThatIsNotRegistered) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "999", std::time(nullptr)), K::Conflict,
                      "job 999 is not a follow-up of 100:eval");
    EXPECT_EQ(spool_.load(me_, s.id).state, State::Decided);
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, StartRefusesWhenNotDecidedBeforeTheDeadline) {
    const CheckpointSpec s = spec("100:eval", 3600);
    const Checkpoint c = pending_with_followups(s);
    // Released by hand: back to held, for the decision to release.
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "102", c.deadline() - 61), K::Conflict,
                      "100:eval is pending, not decided: job 102 went back to held waiting for 100:eval");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "requeuehold", "102"}}));
    // Started a second before its deadline (this node's clock behind slurmctld's): it
    // must not wait held for ever, but start again after the deadline.
    fake_.clear_calls();
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "102", c.deadline() - 1), K::Conflict,
                      "job 102 went back to the queue, to start again after the deadline of 100:eval and take its default");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "requeue", "102"}}));
    fake_.fail("requeuehold.102", "scontrol: error: Requested operation is presently disabled for job 102\n");
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "102", c.deadline() - 100), K::Conflict,
                      "100:eval is pending, not decided, and job 102 could not go back to held: ");
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "102", c.deadline() - 100), K::Conflict,
                      "/scontrol requeuehold 102: scontrol: error: Requested operation is presently disabled");
    const Checkpoint after = spool_.load(me_, s.id);
    EXPECT_EQ(after.state, State::Pending);
    EXPECT_EQ(after.history.size(), c.history.size());
    struct stat st;
    EXPECT_NE(stat((root_ / (std::to_string(me_) + "/ckpt/100/eval/delivered")).c_str(), &st), 0);
}

TEST_F(FollowUpsTest, StartRefusesWhileRunningOrWithoutTimeout) {
    const CheckpointSpec s = spec("100:eval");
    open_checkpoint(spool_, s, plugin_);
    add_followup(spool_, FollowUp{s.id, me_, "101", "/w/a.sbatch", {}}, cli_);
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr)), K::Conflict,
                      "100:eval is running, not decided: job 101 went back to held");
    end_checkpoint(spool_, me_, s.id, 0, plugin_);
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr) + 100000000), K::Conflict,
                      "went back to held");
    EXPECT_EQ(spool_.load(me_, s.id).state, State::Pending);
}

TEST_F(FollowUpsTest, StartAfterAFailedCheckpointNeverRuns) {
    const CheckpointSpec s = spec("100:eval");
    open_checkpoint(spool_, s, plugin_);
    add_followup(spool_, FollowUp{s.id, me_, "101", "/w/a.sbatch", {}}, cli_);
    end_checkpoint(spool_, me_, s.id, 1 << 8, plugin_);
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr)), K::Conflict,
                      "100:eval failed: this follow-up will never run");
    EXPECT_TRUE(fake_.calls().empty());  // not held again: nothing would release it
}

TEST_F(FollowUpsTest, StartPastTheDeadlineTakesTheDefaultAndSyncsTheOthers) {
    const CheckpointSpec s = spec("100:eval", 60);
    const Checkpoint c = pending_with_followups(s);
    const Environment env = start_followup(spool_, slurm_, me_, s.id, "102", c.deadline() + 5);
    const Checkpoint after = spool_.load(me_, s.id);
    EXPECT_EQ(after.state, State::Applied);
    ASSERT_TRUE(after.decision());
    EXPECT_EQ(after.decision()->choice, "reject");
    EXPECT_EQ(after.decided->by, "timeout");
    EXPECT_EQ(after.decided->via, Via::Timeout);
    EXPECT_EQ(after.history.back().job, "102");
    EXPECT_EQ(env_value(env, "HAWF_DECISION"), "reject");
    EXPECT_EQ(env_value(env, "HAWF_DECIDED_BY"), "timeout");
    // The starting one is left alone; the others follow the default.
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"}, {"scancel", "103"}}));
}

TEST_F(FollowUpsTest, StartPastTheDeadlineForAnotherBranchRefusesButSyncs) {
    const CheckpointSpec s = spec("100:eval", 60);
    const Checkpoint c = pending_with_followups(s);
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "103", c.deadline()), K::Conflict,
                      "this follow-up runs only for approve,retry");
    const Checkpoint after = spool_.load(me_, s.id);
    EXPECT_EQ(after.state, State::Decided);  // the default is taken, not applied
    EXPECT_EQ(after.decision()->choice, "reject");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scancel", "101"},
                                                {"scontrol", "update", "JobId=102", "StartTime=now"},
                                                {"scontrol", "release", "102"}}));
}

TEST_F(FollowUpsTest, StartRefusesAFollowUpTheChoiceIsNotFor) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "reject");
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr)), K::Conflict,
                      "100:eval was decided \"reject\" by " + user_name(me_) + ": this follow-up runs only for approve");
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "103", std::time(nullptr)), K::Conflict,
                      "runs only for approve,retry");
    EXPECT_EQ(spool_.load(me_, s.id).state, State::Decided);
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpsTest, StartMarksAppliedAndDeliversTheDecision) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve", {{"lr", "0.01"}, {"note", "a\nb"}}, "ship it");
    const Environment env = start_followup(spool_, slurm_, me_, s.id, "103", std::time(nullptr));
    const Checkpoint after = spool_.load(me_, s.id);
    EXPECT_EQ(after.state, State::Applied);
    EXPECT_EQ(after.history.back().type, EventType::Applied);
    EXPECT_EQ(after.history.back().job, "103");

    const std::string file = root_ / (std::to_string(me_) + "/ckpt/100/eval/delivered/103.json");
    EXPECT_EQ(test::read_text(file), decision_json(after).dump(2) + "\n");
    const auto delivered = nlohmann::json::parse(test::read_text(file));
    EXPECT_EQ(delivered["choice"], "approve");
    EXPECT_EQ(delivered["params"]["note"], "a\nb");
    EXPECT_EQ(delivered["comment"], "ship it");
    EXPECT_EQ(delivered["checkpoint"], "100:eval");

    EXPECT_EQ(env, decision_environment(after, spool_.files_dir(me_, s.id), file));
    EXPECT_EQ(env_value(env, "HAWF_DECISION_FILE"), file);
    EXPECT_EQ(env_value(env, "HAWF_PARAM_NOTE"), "a\nb");
    EXPECT_TRUE(fake_.calls().empty());  // a decided checkpoint's follow-ups were synced by the decider
}

TEST_F(FollowUpsTest, RequeuedFollowUpKeepsTheFirstDelivery) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    const Environment first = start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr));
    const std::string file = env_value(first, "HAWF_DECISION_FILE");
    const std::string original = test::read_text(file);
    ASSERT_FALSE(original.empty());
    const std::size_t events = spool_.load(me_, s.id).history.size();
    // Mark the file: a second start must not replace it.
    test::write_text(file, "{\"first\": true}\n");
    const Environment second = start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr));
    EXPECT_EQ(second, first);
    EXPECT_EQ(test::read_text(file), "{\"first\": true}\n");
    EXPECT_EQ(spool_.load(me_, s.id).history.size(), events);

    // Another follow-up of the same choice starts too: its own file, no new event.
    const Environment other = start_followup(spool_, slurm_, me_, s.id, "103", std::time(nullptr));
    EXPECT_THAT(env_value(other, "HAWF_DECISION_FILE"), HasSubstr("/delivered/103.json"));
    EXPECT_EQ(test::read_text(env_value(other, "HAWF_DECISION_FILE")), original);
    EXPECT_EQ(spool_.load(me_, s.id).history.size(), events);
    EXPECT_EQ(spool_.load(me_, s.id).history.back().job, "101");
    // The other branch still may not run.
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s.id, "102", std::time(nullptr)), K::Conflict,
                      "runs only for reject");
}

TEST_F(FollowUpsTest, StartOfAnUnknownCheckpointIsNotFound) {
    EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, parse_checkpoint_id("555:none"), "556", std::time(nullptr)),
                      K::NotFound, "555:none");
}

// ---------------------------------------------------------------- delivery in delegated mode

// A checkpoint reviewers bob and carol decide (quorum 2), and a private munged for
// hawfd's seal. Delivery checks only the seal (the approvals are verify_events').
class DelegatedDeliveryTest : public FollowUpsTest {
protected:
    void SetUp() override {
        if (!test::is_root()) GTEST_SKIP() << "a private munged needs root";
        if (test::find_munged().empty()) GTEST_SKIP() << "munged is not installed";
        munged_ = std::make_unique<test::Munged>(test::find_munged());
        s_ = spec("100:eval");
        s_.reviewers = {"bob", "carol"};
        s_.quorum = 2;
        pending_with_followups(s_);
        approve(spool_, me_, s_.id, chosen_, bob_, "MUNGE:AwQDAA1=:", limits_);
        quorum_ = *reached_quorum(approve(spool_, me_, s_.id, chosen_, carol_, "MUNGE:AwQDAA2=:", limits_));
    }
    std::string socket() const { return munged_->socket(); }
    // hawfd's seal over DECISION with QUORUM's approvals, as root.
    std::string seal(const Decision& decision) const {
        Event d;
        d.type = EventType::Decided;
        d.decision = decision;
        d.approvals = quorum_.approvals;
        return munge_encode(decision_seal_payload(spool_.load(me_, s_.id), d), socket());
    }
    // The owner writes a decision into their own tree.
    void forge(Via via, const std::string& credential, std::vector<std::uint64_t> approvals = {}) {
        Event ev;
        ev.seq = spool_.load(me_, s_.id).last_seq() + 1;
        ev.type = EventType::Decided;
        ev.by = cli_.user;
        ev.by_uid = me_;
        ev.via = via;
        ev.host = "login1";
        ev.decision = chosen_;
        ev.approvals = std::move(approvals);
        ev.credential = credential;
        ASSERT_TRUE(spool_.append(me_, s_.id, ev));
    }
    void expect_refused(const std::string& why) {
        EXPECT_HAWF_ERROR(start_followup(spool_, slurm_, me_, s_.id, "101", std::time(nullptr), socket()),
                          K::Untrusted, "the decision at 100:eval is not one its reviewers made through hawfd: " + why);
        const Checkpoint after = spool_.load(me_, s_.id);
        EXPECT_EQ(after.state, State::Decided);  // not applied, nothing delivered
        struct stat st;
        EXPECT_NE(stat((root_ / (std::to_string(me_) + "/ckpt/100/eval/delivered/101.json")).c_str(), &st), 0);
        EXPECT_TRUE(fake_.calls().empty());
    }

    std::unique_ptr<test::Munged> munged_;
    CheckpointSpec s_;
    Actor bob_{"bob", 5001, Via::Hawfd, "svc1"};
    Actor carol_{"carol", 5002, Via::Hawfd, "svc1"};
    Decision chosen_{"approve", {{"lr", "0.1"}}, ""};
    Quorum quorum_;
};

TEST_F(DelegatedDeliveryTest, ASealedQuorumDecisionIsDelivered) {
    record_quorum(spool_, me_, s_.id, quorum_, seal(quorum_.decision), Actor{"root", 0, Via::Hawfd, "svc1"});
    const Environment env = start_followup(spool_, slurm_, me_, s_.id, "101", std::time(nullptr), socket());
    const Checkpoint after = spool_.load(me_, s_.id);
    EXPECT_EQ(after.state, State::Applied);
    EXPECT_EQ(env_value(env, "HAWF_DECISION"), "approve");
    EXPECT_EQ(env_value(env, "HAWF_PARAM_LR"), "0.1");
    EXPECT_EQ(env_value(env, "HAWF_DECIDED_BY"), "bob,carol");
    const auto delivered = nlohmann::json::parse(test::read_text(env_value(env, "HAWF_DECISION_FILE")));
    EXPECT_EQ(delivered["decided_by"], "bob,carol");
    EXPECT_EQ(delivered["approved_by"], nlohmann::json({"bob", "carol"}));
    EXPECT_EQ(delivered["via"], "hawfd");
}

TEST_F(DelegatedDeliveryTest, AnOwnersDecisionIsRefused) {
    forge(Via::Cli, "");
    expect_refused("not sealed by hawfd");
}

TEST_F(DelegatedDeliveryTest, ASealMadeByAUserIsRefused) {
    // Claims hawfd and names the approvals, but the owner made the credential.
    const passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    const std::string payload = [&] {
        Event d;
        d.decision = chosen_;
        d.approvals = quorum_.approvals;
        return decision_seal_payload(spool_.load(me_, s_.id), d);
    }();
    ASSERT_EQ(test::run_as(nobody->pw_uid, nobody->pw_gid, [&] {
                  const std::string c = munge_encode(payload, socket());
                  return write(out[1], c.data(), c.size()) == static_cast<ssize_t>(c.size()) ? 0 : 1;
              }),
              0);
    close(out[1]);
    std::string credential(8192, '\0');
    credential.resize(static_cast<std::size_t>(std::max<ssize_t>(0, read(out[0], credential.data(), credential.size()))));
    close(out[0]);
    forge(Via::Hawfd, credential, quorum_.approvals);
    expect_refused("sealed by uid " + std::to_string(nobody->pw_uid) + ", not root");
}

TEST_F(DelegatedDeliveryTest, ARootSealForAnotherDecisionIsRefused) {
    forge(Via::Hawfd, seal(Decision{"approve", {{"lr", "0.1"}}, "some other comment"}), quorum_.approvals);
    expect_refused("the seal is for another decision");
}

// ---------------------------------------------------------------- delivery with hawfd: sealed specs

// Where hawfd is configured (REQUIRE_SEALED_SPEC) every checkpoint's spec carries root's
// seal, owner mode included: an owner who rewrote a delegated spec into an owner-mode
// one (without its reviewers, or a policy's requirement) and decided it starts nothing.
class SealedSpecDeliveryTest : public FollowUpsTest {
protected:
    void SetUp() override {
        if (!test::is_root()) GTEST_SKIP() << "a private munged needs root";
        if (test::find_munged().empty()) GTEST_SKIP() << "munged is not installed";
        munged_ = std::make_unique<test::Munged>(test::find_munged());
    }
    std::string socket() const { return munged_->socket(); }
    // S sealed by root (this test) over PAYLOAD ("": its own).
    CheckpointSpec sealed(CheckpointSpec s, const std::string& payload = "") const {
        s.seal = munge_encode(payload.empty() ? spec_seal_payload(s) : payload, socket());
        return s;
    }
    Environment start(const CheckpointSpec& s, std::int64_t now = std::time(nullptr)) {
        return start_followup(spool_, slurm_, me_, s.id, "101", now, socket(), true);
    }
    void expect_refused(const CheckpointSpec& s, const std::string& why, std::int64_t now = std::time(nullptr)) {
        const std::size_t events = spool_.load(me_, s.id).history.size();
        EXPECT_HAWF_ERROR(start(s, now), K::Untrusted,
                          "the checkpoint 100:eval was not opened by hawf (its spec is not sealed): " + why);
        EXPECT_EQ(spool_.load(me_, s.id).history.size(), events);  // nothing written: no default, not applied
        struct stat st;
        EXPECT_NE(stat((root_ / (std::to_string(me_) + "/ckpt/100/eval/delivered/101.json")).c_str(), &st), 0);
        EXPECT_TRUE(fake_.calls().empty());
    }
    std::unique_ptr<test::Munged> munged_;
};

TEST_F(SealedSpecDeliveryTest, AnOwnerModeDecisionOnASealedSpecIsDelivered) {
    const CheckpointSpec s = sealed(spec("100:eval"));
    decided(s, "approve");
    const Environment env = start(s);
    EXPECT_EQ(env_value(env, "HAWF_DECISION"), "approve");
    EXPECT_EQ(spool_.load(me_, s.id).state, State::Applied);
}

TEST_F(SealedSpecDeliveryTest, AnUnsealedSpecIsRefusedOnlyWhereHawfdIsConfigured) {
    const CheckpointSpec s = spec("100:eval");
    decided(s, "approve");
    expect_refused(s, "it has no seal");
    // Without hawfd nothing changed: the same checkpoint is delivered.
    EXPECT_EQ(env_value(start_followup(spool_, slurm_, me_, s.id, "101", std::time(nullptr), socket()),
                        "HAWF_DECISION"),
              "approve");
}

// The rewrite the seal closes: the delegated spec hawf sealed, its reviewers dropped,
// the seal kept (or another spec's), decided by the owner.
TEST_F(SealedSpecDeliveryTest, ASpecRewrittenWithoutItsReviewersIsRefused) {
    CheckpointSpec delegated = spec("100:eval");
    delegated.reviewers = {"bob", "carol"};
    delegated.quorum = 2;
    CheckpointSpec rewritten = spec("100:eval");
    rewritten.seal = sealed(delegated).seal;
    decided(rewritten, "approve");
    expect_refused(rewritten, "the seal is for another spec");
}

TEST_F(SealedSpecDeliveryTest, ASpecSealedByTheOwnerIsRefused) {
    const passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    CheckpointSpec s = spec("100:eval");
    const std::string payload = spec_seal_payload(s);
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    ASSERT_EQ(test::run_as(nobody->pw_uid, nobody->pw_gid, [&] {
                  const std::string c = munge_encode(payload, socket());
                  return write(out[1], c.data(), c.size()) == static_cast<ssize_t>(c.size()) ? 0 : 1;
              }),
              0);
    close(out[1]);
    s.seal.assign(8192, '\0');
    s.seal.resize(static_cast<std::size_t>(std::max<ssize_t>(0, read(out[0], s.seal.data(), s.seal.size()))));
    close(out[0]);
    decided(s, "approve");
    expect_refused(s, "sealed by nobody (uid " + std::to_string(nobody->pw_uid) + "), not root");
}

// Past the deadline the follow-up would take the default itself: not on an unsealed spec.
TEST_F(SealedSpecDeliveryTest, NoDefaultIsTakenOnAnUnsealedSpec) {
    const CheckpointSpec s = spec("100:eval", 60);
    const Checkpoint c = pending_with_followups(s);
    expect_refused(s, "it has no seal", c.deadline() + 5);
    EXPECT_EQ(spool_.load(me_, s.id).state, State::Pending);
}

}  // namespace
}  // namespace hawf
