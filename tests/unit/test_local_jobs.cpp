// local_jobs.hpp: the jobs of a run without Slurm, with a stand-in for
// hawf-local-job that only notes how it was started.
#include "local_jobs.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include <gtest/gtest.h>

#include "error.hpp"
#include "helpers.hpp"
#include "record.hpp"
#include "validate.hpp"

namespace hawf {
namespace {

using test::TempDir;

class LocalJobsTest : public ::testing::Test {
protected:
    LocalJobsTest() {
        test::write_text(dir_ / "runner", "#!/bin/sh\necho \"$*\" >> '" + (dir_ / "started.log") + "'\n", 0755);
        test::write_text(dir_ / "job.sh", "#!/bin/bash\n#SBATCH --job-name=train\n# a comment\n"
                                          "#SBATCH --output=o-%j.out --time=1:30  # 90 s\necho hi\n#SBATCH --time=99\n");
    }
    // The runner's lines so far, waiting up to 5 s for COUNT of them (it starts detached).
    std::vector<std::string> started(std::size_t count = 0) const {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        for (;;) {
            std::vector<std::string> lines;
            if (access((dir_ / "started.log").c_str(), F_OK) == 0)
                for (const auto& line : split(test::read_text(dir_ / "started.log"), '\n'))
                    if (!line.empty()) lines.push_back(line);
            if (lines.size() >= count || std::chrono::steady_clock::now() > give_up) return lines;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    std::string state(const std::string& job) const { return slurm_.job(job)->state; }
    std::string submit(const std::vector<std::string>& args) const { return slurm_.submit(args, dir_ / "job.sh", dir_.path()); }

    TempDir dir_;
    LocalSlurm slurm_{dir_ / "jobs", dir_ / "runner", "/x/hawf.yaml"};
};

TEST_F(LocalJobsTest, AJobTakesItsOptionsFromTheCommandLineAndItsScript) {
    const std::string job = submit({"--hold", "--hawf-checkpoint=eval", "--gpus=1", "-N", "2", "--chdir=sub"});
    const LocalJob j = slurm_.load(job);
    EXPECT_EQ(j.name, "train");
    EXPECT_EQ(j.output, "o-%j.out");
    EXPECT_EQ(j.time_limit_s, 90);  // the #SBATCH after the first command is not read
    EXPECT_EQ(j.hawf, (std::vector<std::string>{"--hawf-checkpoint=eval"}));
    EXPECT_EQ(j.cwd, dir_ / "sub");
    EXPECT_EQ(test::read_text(slurm_.script_path(job)), test::read_text(dir_ / "job.sh"));  // the copy taken now
    const std::optional<JobInfo> info = slurm_.job(job);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->state, "PENDING");
    EXPECT_TRUE(info->held);
    EXPECT_EQ(info->reason, "JobHeldUser");
    EXPECT_EQ(info->uid, geteuid());
    EXPECT_FALSE(slurm_.job("999"));
    EXPECT_FALSE(slurm_.job("../etc"));
}

TEST_F(LocalJobsTest, WhatFreesAJobStartsItOnce) {
    const std::string first = submit({});
    EXPECT_EQ(started(1), (std::vector<std::string>{"--conf=/x/hawf.yaml " + first}));
    EXPECT_EQ(state(first), "RUNNING");
    const std::string next = submit({"--hold", "--dependency=afterok:" + first, "--kill-on-invalid-dep=yes"});
    slurm_.release(next);  // released, still waiting for FIRST
    EXPECT_EQ(slurm_.job(next)->reason, "Dependency");
    slurm_.finished(first, 0);
    EXPECT_EQ(state(first), "COMPLETED");
    EXPECT_EQ(started(2).back(), "--conf=/x/hawf.yaml " + next);
    slurm_.start_if_free(next);  // again: nothing
    slurm_.release(next);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(started().size(), 2u);
    EXPECT_HAWF_ERROR(slurm_.hold(next), ErrorKind::Conflict, "no longer pending");
}

TEST_F(LocalJobsTest, AFailedOrCancelledJobTakesWhatWaitsForItAlong) {
    const std::string a = submit({"--hold"});
    const std::string b = submit({"--dependency=afterok:" + a, "--kill-on-invalid-dep=yes"});
    const std::string c = submit({"--dependency=afterok:" + b, "--kill-on-invalid-dep=yes"});
    const std::string keeps = submit({"--dependency=afterok:" + a});  // no --kill-on-invalid-dep: waits for ever
    slurm_.cancel(a);
    EXPECT_EQ(state(a), "CANCELLED");
    EXPECT_EQ(state(b), "CANCELLED");
    EXPECT_EQ(state(c), "CANCELLED");
    EXPECT_EQ(state(keeps), "PENDING");
    // As Slurm says it, so that hawf takes it for a job that has ended.
    EXPECT_HAWF_ERROR(slurm_.cancel(a), ErrorKind::Conflict, "already finished");
    EXPECT_EQ(classify_failure("Job has already finished: 1"), SlurmFailure::JobGone);
    EXPECT_HAWF_ERROR(slurm_.release(b), ErrorKind::Conflict, "already finished");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(started().empty());

    const std::string d = submit({"--hold"});
    const std::string e = submit({"--dependency=afterok:" + d, "--kill-on-invalid-dep=yes"});
    slurm_.release(d);
    started(1);
    slurm_.finished(d, 1 << 8);
    EXPECT_EQ(state(d), "FAILED");
    EXPECT_EQ(state(e), "CANCELLED");
}

TEST_F(LocalJobsTest, AStartTimeWaitsWithOneSleeper) {
    const std::string job = submit({"--hold"});
    const std::int64_t at = std::time(nullptr) + 3600;
    slurm_.update(job, {"StartTime=" + format_local_time(at)});
    slurm_.release(job);
    const std::optional<JobInfo> info = slurm_.job(job);
    EXPECT_EQ(info->eligible, at);
    EXPECT_EQ(info->reason, "BeginTime");
    EXPECT_FALSE(info->held);
    EXPECT_EQ(started(1), (std::vector<std::string>{"--conf=/x/hawf.yaml --at=" + std::to_string(at) + " " + job}));
    slurm_.update(job, {"StartTime=now"});
    slurm_.release(job);
    EXPECT_EQ(started(2).back(), "--conf=/x/hawf.yaml " + job);
}

TEST_F(LocalJobsTest, WhatALocalRunCannotDoIsRefused) {
    const std::string job = submit({"--hold"});
    EXPECT_HAWF_ERROR(slurm_.update(job, {"TimeLimit=1:00:00"}), ErrorKind::Usage, "only the start time");
    EXPECT_HAWF_ERROR(slurm_.requeue_hold(job), ErrorKind::Usage, "cannot be requeued");
    EXPECT_HAWF_ERROR(submit({"--dependency=afterany:" + job}), ErrorKind::Usage, "only afterok");
    EXPECT_HAWF_ERROR(submit({"--time=soon"}), ErrorKind::Usage, "bad time \"soon\"");
    EXPECT_HAWF_ERROR(slurm_.signal(job, "USR1"), ErrorKind::Conflict, "not running");
    EXPECT_EQ(local_sbatch_note("--time=1-12"), "");
    EXPECT_EQ(local_sbatch_note("-J"), "");
    EXPECT_NE(local_sbatch_note("--gpus=4").find("sbatch --gpus=4 ignored: a local run has no Slurm"), std::string::npos);
}

}  // namespace
}  // namespace hawf
