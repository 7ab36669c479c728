// Shared by the plugin's unit tests (test_request, test_submit_side, test_step_side,
// test_run_as_user): a mock Host, the submit side's fixtures and the job user nobody.
#pragma once

#include <grp.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error.hpp"
#include "helpers.hpp"
#include "host.hpp"
#include "process.hpp"
#include "request.hpp"
#include "run_as_user.hpp"
#include "submit_side.hpp"

namespace hawf::plugin::fakes {

class MockHost : public Host {
public:
    MOCK_METHOD(Where, where, (), (const, override));
    MOCK_METHOD(Client, client, (), (const, override));
    MOCK_METHOD(StepIds, step, (), (const, override));
    MOCK_METHOD(std::uint32_t, node_id, (), (const, override));
    MOCK_METHOD(std::uint32_t, node_count, (), (const, override));
    MOCK_METHOD(JobUser, user, (), (const, override));
    MOCK_METHOD(int, task_exit_status, (), (const, override));
    MOCK_METHOD(std::vector<std::string>, job_env, (), (const, override));
    MOCK_METHOD(std::optional<std::string>, getenv, (const std::string&), (const, override));
    MOCK_METHOD(void, setenv, (const std::string&, const std::string&), (override));
    MOCK_METHOD(void, error, (const std::string&), (override));
    MOCK_METHOD(std::uint32_t, slurm_version, (), (const, override));
    MOCK_METHOD(std::optional<std::string>, oci_config, (), (const, override));
};

inline bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && !s.empty(); }

// The job user of the tests that drop root (run_as_user, the step side).
constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

// Runs FN in a forked child fully switched to USER and returns what it returned or
// threw, as the helper would answer: how the tests prepare a spool as the job user.
// (A test may call library code after fork: it has no other thread.)
inline Outcome as_user(const JobUser& user, const std::function<std::string()>& fn) {
    Subprocess child(-1, [&] {
        Outcome outcome;
        if (setgroups(user.groups.size(), user.groups.data()) != 0 || setresgid(user.gid, user.gid, user.gid) != 0 ||
            setresuid(user.uid, user.uid, user.uid) != 0)
            _exit(99);
        try {
            outcome = {true, fn()};
        } catch (const Error& e) {
            outcome = {false, e.what(), e.kind()};
        } catch (const std::exception& e) {
            outcome = {false, e.what()};
        }
        const std::string answer = encode_answer(outcome);
        const bool written = write(STDOUT_FILENO, answer.data(), answer.size()) == static_cast<ssize_t>(answer.size());
        _exit(written && outcome.ok ? 0 : 1);
    });
    const Subprocess::Finished done = child.finish(std::chrono::steady_clock::now() + std::chrono::seconds(120));
    return decode_answer(done.status, done.out, done.err);
}

// ================================================================ submit side

class SubmitTest : public ::testing::Test {
protected:
    void SetUp() override { test::write_text(conf_, "spool: " + spool_.path() + "\n"); }

    // Feeds the options to a request the way hawf_spank.cpp does; all must be accepted.
    Request request(std::initializer_list<std::pair<Opt, const char*>> options) {
        Request r;
        ::testing::StrictMock<MockHost> quiet;
        for (const auto& [id, value] : options) EXPECT_EQ(submit_option(quiet, r, id, value), 0) << value;
        return r;
    }

    // An srun in a job (JOB_ID, or none), inside a batch job whose checkpoint is
    // INHERITED (HAWF_CHECKPOINT, or none); every other variable is unset.
    static void as_srun(::testing::NiceMock<MockHost>& host, const char* job_id = nullptr,
                        const char* inherited = nullptr) {
        using ::testing::Return;
        ON_CALL(host, client()).WillByDefault(Return(Client::Srun));
        ON_CALL(host, getenv(::testing::_)).WillByDefault(Return(std::nullopt));
        if (job_id) ON_CALL(host, getenv("SLURM_JOB_ID")).WillByDefault(Return(std::string(job_id)));
        if (inherited) ON_CALL(host, getenv("HAWF_CHECKPOINT")).WillByDefault(Return(std::string(inherited)));
    }

    test::TempDir dir_;
    test::TempDir spool_{0755};
    std::string conf_ = dir_ / "hawf.yaml";
};

// ---------------------------------------------------------------- delegated mode (--hawf-reviewers)

// Reviewers and quorum need hawfd: these tests configure its address.
class ReviewersTest : public SubmitTest {
protected:
    void SetUp() override {
        test::write_text(conf_, "spool: " + spool_.path() + "\nhawfd:\n  address: svc1:7477\n");
    }
    // What sbatch prints for these options: "" if accepted. Nothing is exported when refused.
    std::string refusal(std::initializer_list<std::pair<Opt, const char*>> options) {
        using ::testing::_;
        ::testing::NiceMock<MockHost> host;
        ON_CALL(host, client()).WillByDefault(::testing::Return(Client::Sbatch));
        std::string line;
        EXPECT_CALL(host, error(_)).Times(::testing::AtMost(1)).WillRepeatedly(::testing::SaveArg<0>(&line));
        EXPECT_CALL(host, setenv(_, _)).Times(0);
        const int rc = submit_post_opt(host, request(options), conf_);
        EXPECT_EQ(rc, line.empty() ? 0 : -1) << line;
        return line;
    }
    // What one bad option value prints.
    static std::string option_refusal(Opt id, const char* value) {
        ::testing::StrictMock<MockHost> host;
        std::string line;
        EXPECT_CALL(host, error(::testing::_)).WillOnce(::testing::SaveArg<0>(&line));
        Request r;
        EXPECT_EQ(submit_option(host, r, id, value), -1);
        EXPECT_FALSE(r.any()) << "a refused value must not be kept";
        return line;
    }
};

// ---------------------------------------------------------------- --hawf-notify

// Jobs name the channels hawf.yaml's notify: offers (never URLs), checked at submission.
class NotifyTest : public ReviewersTest {
protected:
    void SetUp() override {
        test::write_text(conf_, "spool: " + spool_.path() + "\nhawfd:\n  address: svc1:7477\nnotify:\n"
                                "  smtp: {url: \"smtp://relay:25\", from: hawf@c.example, domain: c.example}\n"
                                "  webhooks: {ml-team: {url: \"https://chat/hook\", format: slack}}\n");
    }
};

}  // namespace hawf::plugin::fakes
