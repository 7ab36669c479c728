// slurm.hpp: running commands without a shell, and the Slurm commands hawf issues
// (checked against a fake bindir that logs every call).
#include "record.hpp"
#include "slurm.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <ctime>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error.hpp"
#include "fake_slurm.hpp"
#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::FakeSlurm;
using test::TempDir;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Argv = std::vector<std::string>;

bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

std::string real(const std::string& path) {
    char buf[PATH_MAX];
    return realpath(path.c_str(), buf) ? buf : path;
}

// ---------------------------------------------------------------- run_command

TEST(RunCommand, ArgumentsArriveLiterallyWithoutAShell) {
    TempDir dir;
    ASSERT_EQ(mkdir((dir / "y").c_str(), 0755), 0);
    const std::string nasty = "$(touch x); rm -rf y";
    const std::string quotes = "a \"b\" 'c' `touch z` *\n;|&";
    const CommandResult r = run_command({"printf", "[%s]\\n", nasty, quotes, ""}, dir.path());
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(r.out, "[" + nasty + "]\n[" + quotes + "]\n[]\n");
    EXPECT_EQ(r.err, "");
    EXPECT_FALSE(exists(dir / "x"));
    EXPECT_FALSE(exists(dir / "z"));
    EXPECT_TRUE(exists(dir / "y"));
}

TEST(RunCommand, CapturesStdoutStderrAndExitStatus) {
    const CommandResult r = run_command({"/bin/sh", "-c", "echo out; echo err1 >&2; echo err2 >&2; exit 3"});
    EXPECT_FALSE(r.ok());
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err1\nerr2\n");
    EXPECT_EQ(r.message(), "err1");

    const CommandResult ok = run_command({"/bin/sh", "-c", "echo fine"});
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.out, "fine\n");
}

TEST(RunCommand, MessageFallsBackToStdoutThenStatus) {
    EXPECT_EQ(run_command({"/bin/sh", "-c", "echo only out; echo more; exit 1"}).message(), "only out");
    EXPECT_EQ(run_command({"/bin/sh", "-c", "exit 4"}).message(), "exit status 4");
    const CommandResult killed = run_command({"/bin/sh", "-c", "kill -9 $$"});
    EXPECT_FALSE(killed.ok());
    ASSERT_TRUE(WIFSIGNALED(killed.status));
    EXPECT_EQ(killed.message(), "killed by signal 9");
}

TEST(RunCommand, LargeOutputOnBothStreams) {
    // More than a pipe holds, on both pipes at once: must not deadlock.
    const CommandResult r = run_command(
        {"/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789; "
                          "echo abcdefghijabcdefghijabcdefghijabcdefghij >&2; i=$((i+1)); done"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.out.size(), 3000u * 41);
    EXPECT_EQ(r.err.size(), 3000u * 41);
}

TEST(RunCommand, StdinIsEmpty) {
    const CommandResult r = run_command({"cat"}, "", nullptr, 5);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.out, "");
}

TEST(RunCommand, RunsInTheGivenDirectory) {
    TempDir dir;
    const CommandResult r = run_command({"/bin/sh", "-c", "pwd -P"}, dir.path());
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(r.out, real(dir.path()) + "\n");

    const CommandResult missing = run_command({"/bin/sh", "-c", "echo ran"}, dir / "missing");
    EXPECT_FALSE(missing.ok());
    EXPECT_EQ(missing.out, "");
    EXPECT_THAT(missing.message(), HasSubstr("cannot change to " + (dir / "missing")));
}

TEST(RunCommand, EnvironmentIsReplacedWhenGiven) {
    ASSERT_EQ(setenv("HAWF_UNIT_PARENT_ONLY", "leaked", 1), 0);
    const std::vector<std::string> env = {"FOO=bar baz", "MULTI=line1\nline2"};
    const CommandResult r = run_command({"/usr/bin/env"}, "", &env);
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(r.out, "FOO=bar baz\nMULTI=line1\nline2\n");

    const std::vector<std::string> empty;
    EXPECT_EQ(run_command({"/usr/bin/env"}, "", &empty).out, "");

    const CommandResult inherited = run_command({"/usr/bin/env"});
    EXPECT_THAT(inherited.out, HasSubstr("HAWF_UNIT_PARENT_ONLY=leaked\n"));
    unsetenv("HAWF_UNIT_PARENT_ONLY");
}

TEST(RunCommand, MissingProgramIsAFailedCommandNotAnException) {
    CommandResult r;
    EXPECT_NO_THROW(r = run_command({"/nonexistent/hawf-no-such-command", "x"}));
    EXPECT_FALSE(r.ok());
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 127);
    EXPECT_THAT(r.message(), HasSubstr("cannot run /nonexistent/hawf-no-such-command"));
}

TEST(RunCommand, TimeoutKillsAndReports) {
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = run_command({"sleep", "30"}, "", nullptr, 1);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(r.ok());
    ASSERT_TRUE(WIFSIGNALED(r.status));
    EXPECT_EQ(WTERMSIG(r.status), SIGKILL);
    EXPECT_THAT(r.message(), HasSubstr("sleep 30: no answer within 1 s"));
    EXPECT_LT(elapsed, std::chrono::seconds(5));
}

// ---------------------------------------------------------------- Slurm with a fake bindir

class SlurmTest : public ::testing::Test {
protected:
    FakeSlurm fake_;
    Slurm slurm_{fake_.bindir()};
    TempDir cwd_;
};

TEST_F(SlurmTest, SubmitIssuesSbatchParsableAndReturnsTheId) {
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "FOO=bar baz"};
    const std::string id =
        slurm_.submit({"--hold", "--job-name=a b", "--dependency=afterok:42"}, "/jobs/next.sbatch", cwd_.path(), &env);
    EXPECT_EQ(id, "123");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"sbatch", "--parsable", "--hold", "--job-name=a b",
                                                 "--dependency=afterok:42", "/jobs/next.sbatch"}}));
    EXPECT_EQ(fake_.sbatch_cwd(), real(cwd_.path()));
    const auto seen = fake_.sbatch_env();
    EXPECT_THAT(seen, Contains("FOO=bar baz"));
    EXPECT_THAT(seen, Contains("PATH=/usr/bin:/bin"));
    for (const auto& entry : seen) EXPECT_THAT(entry, Not(StartsWith("HOME="))) << "environment not replaced";
}

TEST_F(SlurmTest, SubmitWithClusterSuffix) {
    fake_.set_output("sbatch.out", "4567;cluster2\n");
    EXPECT_EQ(slurm_.submit({}, "job.sh", cwd_.path()), "4567");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"sbatch", "--parsable", "job.sh"}}));
}

TEST_F(SlurmTest, SubmitFailureIsSystemErrorWithTheFirstErrorLine) {
    fake_.fail("sbatch", "sbatch: error: Batch job submission failed: Invalid account\nsecond line\n");
    EXPECT_HAWF_ERROR(slurm_.submit({"--hold"}, "/jobs/next.sbatch", cwd_.path()), K::System,
                      "sbatch /jobs/next.sbatch: sbatch: error: Batch job submission failed: Invalid account");
    try {
        slurm_.submit({}, "x.sh", cwd_.path());
        ADD_FAILURE() << "sbatch failure not reported";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), Not(HasSubstr("second line")));
    }
}

TEST_F(SlurmTest, SubmitRefusesOutputThatIsNoJobId) {
    fake_.set_output("sbatch.out", "Submitted batch job 77\n");
    EXPECT_HAWF_ERROR(slurm_.submit({}, "x.sh", cwd_.path()), K::System, "sbatch x.sh");
    fake_.set_output("sbatch.out", "\n");
    EXPECT_HAWF_ERROR(slurm_.submit({}, "x.sh", cwd_.path()), K::System, "sbatch x.sh");
}

TEST_F(SlurmTest, ReleaseHoldCancelUpdateSignalIssueExactlyTheirArgv) {
    slurm_.release("43");
    slurm_.hold("44_2");
    slurm_.cancel("45");
    slurm_.update("46", {"StartTime=now"});
    slurm_.update("47", {"TimeLimit=1:00:00", "Partition=gpu"});
    slurm_.signal("48", "USR1");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{
                                 {"scontrol", "release", "43"},
                                 {"scontrol", "hold", "44_2"},
                                 {"scancel", "45"},
                                 {"scontrol", "update", "JobId=46", "StartTime=now"},
                                 {"scontrol", "update", "JobId=47", "TimeLimit=1:00:00", "Partition=gpu"},
                                 {"scancel", "--signal=USR1", "--full", "48"},
                             }));
}

TEST_F(SlurmTest, FailuresAreSystemErrorsWithTheCommandsFirstErrorLine) {
    const std::string finished = "scontrol: error: Job has already finished\nmore detail\n";
    fake_.fail("release.43", finished);
    EXPECT_HAWF_ERROR(slurm_.release("43"), K::System, "scontrol release 43: scontrol: error: Job has already finished");
    fake_.fail("hold.43", finished);
    EXPECT_HAWF_ERROR(slurm_.hold("43"), K::System, "scontrol hold 43: scontrol: error: Job has already finished");
    fake_.fail("update.43", "Job is no longer pending execution for job 43\n");
    EXPECT_HAWF_ERROR(slurm_.update("43", {"StartTime=now"}), K::System,
                      "scontrol update JobId=43 StartTime=now: Job is no longer pending execution for job 43");
    fake_.fail("cancel.43", "scancel: error: Kill job error on job id 43: Invalid job id specified\n");
    EXPECT_HAWF_ERROR(slurm_.cancel("43"), K::System, "scancel 43: scancel: error: Kill job error on job id 43");
    EXPECT_HAWF_ERROR(slurm_.signal("43", "TERM"), K::System, "scancel --signal=TERM --full 43: scancel: error");
    fake_.fail("release.44", "");
    EXPECT_HAWF_ERROR(slurm_.release("44"), K::System, "scontrol release 44: exit status 1");
    // Other jobs are unaffected.
    EXPECT_NO_THROW(slurm_.release("45"));
}

TEST_F(SlurmTest, ShowParsesKeyValueFields) {
    fake_.set_output("show.77",
                     "JobId=77 JobName=train UserId=alice(1001) JobState=PENDING Reason=JobHeldUser "
                     "Dependency=afterok:42(unfulfilled) StartTime=Unknown Comment=a=b Empty=\n");
    const auto fields = slurm_.show("77");
    ASSERT_TRUE(fields);
    EXPECT_EQ(fields->at("JobId"), "77");
    EXPECT_EQ(fields->at("JobName"), "train");
    EXPECT_EQ(fields->at("UserId"), "alice(1001)");
    EXPECT_EQ(fields->at("JobState"), "PENDING");
    EXPECT_EQ(fields->at("Reason"), "JobHeldUser");
    EXPECT_EQ(fields->at("Dependency"), "afterok:42(unfulfilled)");
    EXPECT_EQ(fields->at("Comment"), "a=b");  // split at the first '='
    EXPECT_EQ(fields->at("Empty"), "");
    EXPECT_EQ(fields->size(), 9u);
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "show", "job", "-o", "77"}}));
}

TEST_F(SlurmTest, ShowOfAnUnknownJobIsNullopt) {
    EXPECT_FALSE(slurm_.show("999"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "show", "job", "-o", "999"}}));
}

TEST_F(SlurmTest, ShowFailingOtherwiseIsASystemError) {
    fake_.fail("show.78", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n");
    EXPECT_HAWF_ERROR(slurm_.show("78"), K::System,
                      "scontrol show job 78: slurm_load_jobs error: Unable to contact slurm controller");
}

TEST_F(SlurmTest, EmptyBindirSearchesPath) {
    test::PathPrepend path(fake_.bindir());
    Slurm from_path;
    from_path.release("50");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "50"}}));
}

TEST_F(SlurmTest, MissingCommandIsASystemError) {
    Slurm nowhere(cwd_ / "no-bin");
    EXPECT_HAWF_ERROR(nowhere.release("50"), K::System, "cannot run");
    EXPECT_HAWF_ERROR(nowhere.submit({}, "x.sh", cwd_.path()), K::System, "sbatch x.sh: cannot run");
}

TEST(SlurmTime, LocalTimeWithoutZone) {
    const char* old = std::getenv("TZ");
    const std::string saved = old ? old : "";
    setenv("TZ", "UTC", 1);
    tzset();
    EXPECT_EQ(format_local_time(1790000000), "2026-09-21T14:13:20");
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    const std::string berlin = format_local_time(1790000000);
    if (old) setenv("TZ", saved.c_str(), 1);
    else unsetenv("TZ");
    tzset();
    // Without zone data installed Berlin falls back to UTC; either way no zone suffix.
    EXPECT_TRUE(berlin == "2026-09-21T16:13:20" || berlin == "2026-09-21T14:13:20") << berlin;
}

}  // namespace
}  // namespace hawf
