// slurm.hpp: running commands without a shell, and the Slurm commands hawf issues
// (checked against a fake bindir that logs every call).
#include "record.hpp"
#include "slurm.hpp"

#include <fcntl.h>
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

TEST(RunCommand, ChildGetsOnlyStdinStdoutStderr) {
    // Descriptors this process holds without close-on-exec (as a library's caller may)
    // must not reach the command, nor may one of run_command's own.
    const int inheritable = open("/dev/null", O_RDONLY);
    int pipe_fds[2];
    ASSERT_GE(inheritable, 0);
    ASSERT_EQ(pipe(pipe_fds), 0);
    // ls lists the shell's descriptors (its own are in another process).
    const CommandResult r = run_command({"/bin/sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/0"});
    close(inheritable);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(r.out, "0\n1\n2\n/dev/null\n");
}

TEST(RunCommand, ChildGetsItsStreamsEvenIfTheCallerHasNone) {
    // A daemon's child may start with 0, 1, 2 closed: the pipes then get those numbers.
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(0);
        close(1);
        close(2);
        const CommandResult r = run_command({"/bin/sh", "-c", "ls /proc/$$/fd; echo err >&2"});
        _exit(r.ok() && r.out == "0\n1\n2\n" && r.err == "err\n" ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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

TEST(SlurmFailures, ClassifiedOnce) {
    using F = SlurmFailure;
    for (const char* gone : {"slurm_load_jobs error: Invalid job id specified",
                             "scancel: error: Kill job error on job id 42: Job/step already completing or completed",
                             "scontrol: error: Job has already finished"})
        EXPECT_EQ(classify_failure(gone), F::JobGone) << gone;
    for (const char* silent : {"slurm_update error: Unexpected message received",
                               "scancel: error: Socket timed out on send/recv operation",
                               "squeue: error: Unable to contact slurm controller (connect failure)",
                               "scontrol release 42: no answer within 60 s"})
        EXPECT_EQ(classify_failure(silent), F::NoAnswer) << silent;
    EXPECT_EQ(classify_failure("Access/permission denied"), F::Refused);
    EXPECT_EQ(classify_failure("Requested node configuration is not available"), F::Refused);
}

TEST_F(SlurmTest, MailUserIsReadOnlyFromALineOfItsOwn) {
    // 25.11 prints the user's command line (SubmitLine) before MailUser: words in it
    // never count, only a line that starts with MailUser=, the last one.
    fake_.set_output("show.42", "JobId=42 JobName=train\n   UserId=alice(1001) GroupId=alice(1001)\n"
                                "   SubmitLine=sbatch --wrap MailUser=evil@x.org\n   WorkDir=/home/alice\n"
                                "   MailUser=alice.phone@example.org MailType=FAIL\n");
    EXPECT_EQ(slurm_.mail_user("42"), "alice.phone@example.org");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "show", "job", "42"}}));
    fake_.set_output("show.43", "JobId=43\n   SubmitLine=sbatch MailUser=evil@x.org\n");  // no --mail-type
    EXPECT_EQ(slurm_.mail_user("43"), "");
    EXPECT_EQ(slurm_.mail_user("44"), "");  // unknown to Slurm
    EXPECT_HAWF_ERROR(slurm_.mail_user("44;rm"), ErrorKind::Usage, "bad job id");
}

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

// sbatch exited 0: a job may exist. The message says what sbatch printed, on one line,
// escaped and bounded, and never "exit status 0".
TEST_F(SlurmTest, SubmitThatPrintsNoJobIdSaysWhatItPrinted) {
    const auto message = [&](const std::string& out) {
        fake_.set_output("sbatch.out", out);
        try {
            slurm_.submit({}, "x.sh", cwd_.path());
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), K::System);
            return std::string(e.what());
        }
        return std::string("no error");
    };
    std::string m = message("Submitted batch job 77\nsecond line\n");
    EXPECT_EQ(m, "sbatch x.sh succeeded but printed no job id (output: \"Submitted batch job 77\"): "
                 "a job may have been submitted, check squeue");
    EXPECT_THAT(m, Not(HasSubstr("exit status")));
    EXPECT_THAT(message(""), HasSubstr("printed no job id (output: none)"));
    EXPECT_THAT(message("\n77\n"), HasSubstr("printed no job id (output: \"\")"));
    m = message("\x1b]0;OWNED\x07 12\r3\n");
    EXPECT_THAT(m, HasSubstr("(output: \"\\e]0;OWNED"));
    EXPECT_EQ(m.find_first_of("\x1b\x07\r\n"), std::string::npos) << m;
    m = message(std::string(500, 'x') + "\n");
    EXPECT_THAT(m, HasSubstr("(output: \"" + std::string(80, 'x') + "...\")"));
    EXPECT_LT(m.size(), 200u);
    // Digits with something after them are no job id either.
    EXPECT_THAT(message("77 queued\n"), HasSubstr("printed no job id"));
    EXPECT_EQ(message("78;cluster\n"), "no error");
}

TEST_F(SlurmTest, ReleaseHoldCancelUpdateSignalIssueExactlyTheirArgv) {
    slurm_.release("43");
    slurm_.hold("44_2");
    slurm_.cancel("45");
    slurm_.update("46", {"StartTime=now"});
    slurm_.update("47", {"TimeLimit=1:00:00", "Partition=gpu"});
    slurm_.signal("48", "USR1");
    slurm_.signal("49", "USR2@batch");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{
                                 {"scontrol", "release", "43"},
                                 {"scontrol", "hold", "44_2"},
                                 {"scancel", "45"},
                                 {"scontrol", "update", "JobId=46", "StartTime=now"},
                                 {"scontrol", "update", "JobId=47", "TimeLimit=1:00:00", "Partition=gpu"},
                                 {"scancel", "--signal=USR1", "--full", "48"},
                                 {"scancel", "--signal=USR2", "--batch", "49"},
                             }));
}

// Several jobs in one command: an array's tasks as one range (one request to slurmctld).
TEST_F(SlurmTest, SeveralJobsGoInOneCommandAnArraysTasksAsOneRange) {
    EXPECT_EQ(job_ranges({"4301_3", "77", "4301_1", "4301_2", "4302_9", "4301_3", "78"}),
              (std::vector<std::string>{"4301_[1-3]", "77", "4302_9", "78"}));
    EXPECT_HAWF_ERROR(job_ranges({"77", "--all"}), K::Usage, "bad job id \"--all\"");
    slurm_.release(std::vector<std::string>{"4301_1", "4301_2", "4301_5"});
    slurm_.cancel(std::vector<std::string>{"50", "4302_4"});
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "release", "4301_[1-2,5]"}, {"scancel", "50", "4302_4"}}));
}

// squeue --array lists each task of an array, its queued remainder's too.
TEST_F(SlurmTest, ArrayTaskIdsListsEveryTaskSorted) {
    fake_.set_output("squeue.4242", "3\n1\n2 \n9\n");
    EXPECT_EQ(slurm_.array_task_ids("4242"), (std::vector<std::uint32_t>{1, 2, 3, 9}));
    EXPECT_EQ(fake_.calls().back(),
              (Argv{"squeue", "--noheader", "--states=all", "--jobs=4242", "--Format=ArrayTaskID:0", "--array"}));
    fake_.set_output("squeue.4243", "N/A\n");  // a job of its own
    EXPECT_TRUE(slurm_.array_task_ids("4243").empty());
    EXPECT_TRUE(slurm_.array_task_ids("4244").empty());  // Slurm forgot it
    fake_.set_output("squeue.4245", "1-3\n");
    EXPECT_HAWF_ERROR(slurm_.array_task_ids("4245"), K::System, "not a task id");
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

// ---------------------------------------------------------------- Slurm::job

using test::squeue_format;
using test::squeue_line;

TEST_F(SlurmTest, ShapeIsWhatScontrolUpdateTakesBack) {
    fake_.set_output("squeue.77", "PENDING|1-00:00:00|prod,debug|1|2|4|2\n");
    EXPECT_EQ(slurm_.shape("77"), (JobShape{{"TimeLimit", "1-00:00:00"}, {"Partition", "prod,debug"},
                                           {"NumNodes", "1-2"}, {"NumCPUs", "4"}, {"NumTasks", "2"}}));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"squeue", "--noheader", "--states=all", "--jobs=77",
                                                 "--Format=State:0|,TimeLimit:0|,Partition:0|,NumNodes:0|,"
                                                 "MaxNodes:0|,NumCPUs:0|,NumTasks:0"}}));
    fake_.set_output("squeue.77", "PENDING|UNLIMITED|debug|2|2|2|2\n");  // no range: NumNodes=2 sets both
    EXPECT_EQ(slurm_.shape("77")->at("NumNodes"), "2");
    fake_.set_output("squeue.77", "PENDING|UNLIMITED|debug|2|0|2|2\n");  // no maximum
    EXPECT_EQ(slurm_.shape("77")->at("NumNodes"), "2");
    fake_.set_output("squeue.77", "CANCELLED|UNLIMITED|debug|1|1|1|1\n");  // ended: nothing to reshape
    EXPECT_FALSE(slurm_.shape("77"));
    EXPECT_FALSE(slurm_.shape("99"));  // forgotten
    fake_.set_output("squeue.77", "PENDING|UNLIMITED|debug|one|1|1|1\n");
    EXPECT_HAWF_ERROR(slurm_.shape("77"), K::System, "not STATE|TIME_LIMIT|PARTITION|NODES|MAX_NODES|CPUS|TASKS");
}

TEST_F(SlurmTest, RequeueHold) {
    slurm_.requeue_hold("77");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "requeuehold", "77"}}));
}

TEST_F(SlurmTest, JobReadsSqueueFieldsNoUserCanWrite) {
    ASSERT_EQ(setenv("SQUEUE_USERS", "root", 1), 0);  // would hide another user's job
    ASSERT_EQ(setenv("SLURM_TIME_FORMAT", "relative", 1), 0);
    fake_.set_output("squeue.77", "1001|PENDING|0|1796170566|77|N/A|prod|high|ml-team|JobHeldUser\n");
    const auto held = slurm_.job("77");
    unsetenv("SQUEUE_USERS");
    unsetenv("SLURM_TIME_FORMAT");
    ASSERT_TRUE(held);
    EXPECT_EQ(held->uid, 1001u);
    EXPECT_EQ(held->state, "PENDING");
    EXPECT_EQ(held->reason, "JobHeldUser");
    EXPECT_TRUE(held->held);
    EXPECT_EQ(held->eligible, 1796170566);
    EXPECT_EQ(held->partition, "prod");
    EXPECT_EQ(held->qos, "high");
    EXPECT_EQ(held->account, "ml-team");
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"squeue", "--noheader", "--states=all", "--jobs=77", squeue_format}}));
    const auto env = fake_.squeue_env();
    EXPECT_THAT(env, Contains("SLURM_TIME_FORMAT=%s"));
    EXPECT_THAT(env, Not(Contains("SLURM_TIME_FORMAT=relative")));
    EXPECT_THAT(env, Not(Contains("SQUEUE_USERS=root")));
    EXPECT_THAT(env, Contains(StartsWith("PATH=")));  // the rest is inherited

    fake_.set_output("squeue.78", squeue_line(0, "RUNNING", 4294901757u, "N/A", "None"));
    const auto running = slurm_.job("78");
    ASSERT_TRUE(running);
    EXPECT_EQ(running->uid, 0u);
    EXPECT_EQ(running->state, "RUNNING");
    EXPECT_FALSE(running->held);
    EXPECT_EQ(running->eligible, 0);

    fake_.set_output("squeue.79", squeue_line(1001, "PENDING", 4294901759u, "1796167566", "BeginTime"));
    EXPECT_FALSE(slurm_.job("79")->held);  // released, waiting for its begin time
    fake_.set_output("squeue.80", squeue_line(1001, "REQUEUE_HOLD", 0, "Unknown", "JobHeldAdmin"));
    EXPECT_TRUE(slurm_.job("80")->held);
    fake_.set_output("squeue.81", squeue_line(1001, "COMPLETED", 0, "N/A", "None"));
    EXPECT_FALSE(slurm_.job("81")->held);
}

TEST_F(SlurmTest, JobWithoutAccountingHasNoAccountOrQos) {
    // squeue prints "(null)" where the job has none (no accounting storage).
    fake_.set_output("squeue.82", "1001|RUNNING|1|N/A|82|N/A|debug|(null)|(null)|None\n");
    const auto j = slurm_.job("82");
    ASSERT_TRUE(j);
    EXPECT_EQ(j->partition, "debug");
    EXPECT_EQ(j->qos, "");
    EXPECT_EQ(j->account, "");
    // A pending job submitted to several partitions lists them all.
    fake_.set_output("squeue.83", "1001|PENDING|1|N/A|83|N/A|prod,debug|normal|ml|Priority\n");
    EXPECT_EQ(slurm_.job("83")->partition, "prod,debug");
}

TEST_F(SlurmTest, JobOfAnArrayTakesTheFirstLineAndTasksWork) {
    fake_.set_output("squeue.28", squeue_line(1002, "PENDING", 0, "N/A", "JobHeldUser", "debug", "normal", "(null)",
                                              "28", "3-40%4") +
                                      squeue_line(1002, "RUNNING", 4294901757u, "N/A", "None", "debug", "normal",
                                                  "(null)", "28", "1"));
    const auto array = slurm_.job("28");
    ASSERT_TRUE(array);
    EXPECT_EQ(array->uid, 1002u);
    EXPECT_EQ(array->state, "PENDING");
    EXPECT_TRUE(array->names_array("28"));
    EXPECT_EQ(array->task_id("28"), "");
    fake_.set_output("squeue.28_1", squeue_line(1002, "RUNNING", 4294901757u, "N/A", "None", "debug", "normal",
                                                "(null)", "28", "1"));
    EXPECT_EQ(slurm_.job("28_1")->state, "RUNNING");
    // A task asked for by its own job id, and a job of its own.
    fake_.set_output("squeue.29", squeue_line(1002, "RUNNING", 1, "N/A", "None", "debug", "normal", "(null)", "28", "1"));
    EXPECT_EQ(slurm_.job("29")->task_id("29"), "28_1");
    EXPECT_FALSE(slurm_.job("29")->names_array("29"));
    fake_.set_output("squeue.30", squeue_line(1002, "RUNNING", 1, "N/A", "None", "debug", "normal", "(null)", "30"));
    EXPECT_EQ(slurm_.job("30")->task_id("30"), "");
    EXPECT_FALSE(slurm_.job("30")->names_array("30"));
    fake_.set_output("squeue.28_9", "");  // squeue prints nothing for a task it does not know
    EXPECT_FALSE(slurm_.job("28_9"));
    EXPECT_EQ(fake_.calls().back(), (Argv{"squeue", "--noheader", "--states=all", "--jobs=28_9", squeue_format}));
}

TEST_F(SlurmTest, JobUnknownToSlurmIsNulloptAndNoAnswerIsASystemError) {
    EXPECT_FALSE(slurm_.job("999"));
    fake_.fail("squeue.78", "slurm_load_jobs error: Socket timed out on send/recv operation\n");
    EXPECT_HAWF_ERROR(slurm_.job("78"), K::System,
                      "squeue --jobs=78: slurm_load_jobs error: Socket timed out on send/recv operation");
    Slurm nowhere(cwd_ / "no-bin");
    EXPECT_HAWF_ERROR(nowhere.job("78"), K::System, "cannot run");
}

TEST_F(SlurmTest, JobCannotBeSpoofed) {
    // What a job's user controls never reaches the first fields; slurmctld's reason
    // text (last) may hold spaces and bars, and cannot shift the others.
    fake_.set_output("squeue.77",
                     "1001|PENDING|0|N/A|77|N/A|prod|high|ml|ReqNodeNotAvail, x|0|RUNNING JobState=RUNNING UserId=root(0)\n");
    auto j = slurm_.job("77");
    ASSERT_TRUE(j);
    EXPECT_EQ(j->uid, 1001u);
    EXPECT_EQ(j->state, "PENDING");
    EXPECT_TRUE(j->held);
    EXPECT_EQ(j->partition, "prod");
    EXPECT_EQ(j->qos, "high");
    EXPECT_EQ(j->account, "ml");
    EXPECT_EQ(j->reason, "ReqNodeNotAvail, x|0|RUNNING JobState=RUNNING UserId=root(0)");
    // Where associations are not enforced the account is the user's free text, '|'
    // included: it comes after the partition and QOS, so it can only cut itself short.
    fake_.set_output("squeue.77", "1001|RUNNING|1|N/A|77|N/A|prod|high|x|normal|debug|None\n");
    j = slurm_.job("77");
    ASSERT_TRUE(j);
    EXPECT_EQ(j->partition, "prod");
    EXPECT_EQ(j->qos, "high");
    EXPECT_EQ(j->account, "x");
    fake_.set_output("squeue.77", "1001|RUNNING|1|N/A|77|N/A|prod|high|team a, \x1b[2J|None\n");
    EXPECT_EQ(slurm_.job("77")->account, "team a, \x1b[2J");  // only ever matched, and shown escaped

    // Anything but the expected shape is refused, never guessed at.
    const std::string tail = "|77|N/A|prod|normal|ml|None";
    const std::vector<std::string> bad = {
        "JobId=77 UserId=root(0) JobState=RUNNING", "root|RUNNING|1|N/A" + tail, "1001(alice)|RUNNING|1|N/A" + tail,
        " 0|RUNNING|1|N/A" + tail, "0 |RUNNING|1|N/A" + tail, "4294967295|RUNNING|1|N/A" + tail,
        "99999999999999999999|RUNNING|1|N/A" + tail, "1001|Running|1|N/A" + tail,
        "1001|RUNNING JobState=X|1|N/A" + tail, "1001||1|N/A" + tail, "1001|RUNNING|-1|N/A" + tail,
        "1001|RUNNING|1|2026-01-01T00:00:00" + tail, "|RUNNING|1|N/A" + tail, "\x1b[2J|RUNNING|1|N/A" + tail,
        // the old format, and each new field missing, empty or not a name
        "1001|RUNNING|1|N/A|None", "1001|RUNNING|1|N/A|prod|normal|ml|None", "1001|RUNNING|1|N/A|77|N/A|prod|normal|ml",
        "1001|RUNNING|1|N/A|77|N/A||normal|ml|None", "1001|RUNNING|1|N/A|77|N/A|prod||ml|None",
        "1001|RUNNING|1|N/A|77|N/A|prod|normal||None", "1001|RUNNING|1|N/A|77|N/A|pr od|normal|ml|None",
        "1001|RUNNING|1|N/A|77|N/A|prod|nor\x1bmal|ml|None", "1001|RUNNING|1|N/A|77|N/A|pr\xc3\xa9|normal|ml|None",
        // array fields: a job id and "N/A" or tasks, nothing else
        "1001|RUNNING|1|N/A||N/A|prod|normal|ml|None", "1001|RUNNING|1|N/A|77||prod|normal|ml|None",
        "1001|RUNNING|1|N/A|x77|N/A|prod|normal|ml|None", "1001|RUNNING|1|N/A|77|8 x|prod|normal|ml|None"};
    for (const std::string& line : bad) {
        fake_.set_output("squeue.77", line + "\n");
        try {
            slurm_.job("77");
            ADD_FAILURE() << "accepted: " << line;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), K::System);
            EXPECT_THAT(e.what(), StartsWith("squeue --jobs=77 printed \"")) << line;
            EXPECT_THAT(e.what(), HasSubstr("not UID|STATE|PRIORITY|ELIGIBLE|ARRAYJOB|ARRAYTASK|PARTITION|QOS|ACCOUNT|REASON"));
            EXPECT_EQ(std::string(e.what()).find('\x1b'), std::string::npos);
        }
    }
}

TEST_F(SlurmTest, JobIsAskedOnlyForOneJobOrTask) {
    // "1,2" would list two jobs, either of them first; "-u" must never be an option.
    for (const std::string bad : {"-u", "1,2", "28_1_2", "", "28_", "1 2", "abc"})
        EXPECT_HAWF_ERROR(slurm_.job(bad), K::Usage, "bad job id");
    EXPECT_TRUE(fake_.calls().empty());
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
