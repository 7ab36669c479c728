// plugin/run_as_user.cpp: running code as the job user in a child that drops root
// completely (root only: skipped otherwise).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error.hpp"
#include "helpers.hpp"
#include "plugin_fakes.hpp"
#include "run_as_user.hpp"

namespace hawf::plugin {
namespace {

using ::testing::HasSubstr;
using fakes::nobody;
using fakes::nogroup;

// ================================================================ run_as_user (root only)

class RunAsUserTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "run_as_user drops root: run the unit tests as root";
    }
};

TEST_F(RunAsUserTest, DropsCompletely) {
    const JobUser user{nobody, nogroup, {nogroup, 100}};
    const Outcome out = run_as_user(user, [] {
        uid_t r, e, s;
        gid_t rg, eg, sg;
        getresuid(&r, &e, &s);
        getresgid(&rg, &eg, &sg);
        gid_t groups[64];
        int n = getgroups(64, groups);
        std::sort(groups, groups + std::max(n, 0));
        std::string text = std::to_string(r) + " " + std::to_string(e) + " " + std::to_string(s) + " " +
                           std::to_string(rg) + " " + std::to_string(eg) + " " + std::to_string(sg) + " groups";
        for (int i = 0; i < n; ++i) text += " " + std::to_string(groups[i]);
        text += setuid(0) == 0 ? " regained-root" : " setuid0-fails";
        text += seteuid(0) == 0 ? " regained-euid" : " seteuid0-fails";
        text += setgid(0) == 0 ? " regained-gid" : " setgid0-fails";
        return text;
    });
    ASSERT_TRUE(out.ok) << out.text;
    EXPECT_EQ(out.text,
              "65534 65534 65534 65534 65534 65534 groups 100 65534 setuid0-fails seteuid0-fails setgid0-fails");
    EXPECT_EQ(getuid(), 0u);  // the caller keeps its identity
    EXPECT_EQ(geteuid(), 0u);
}

// AS_ROOT runs in the child as root again (from user_init's identity: real uid root,
// effective uid the user's), then BODY fully dropped; the caller's identity never changes.
TEST_F(RunAsUserTest, AsRootRunsAsRootBeforeTheDrop) {
    const int rc = test::run_as(0, 0, [] {
        if (setegid(nogroup) != 0 || seteuid(nobody) != 0) return 90;
        uid_t root_euid = 1;
        const Outcome out = run_as_user(
            JobUser{nobody, nogroup, {}},
            [&] {
                uid_t r, e, s;
                getresuid(&r, &e, &s);
                // What AS_ROOT saw reaches BODY (the same child).
                return std::to_string(root_euid) + (r == nobody && e == nobody && s == nobody && setuid(0) != 0
                                                        ? " dropped" : " NOT dropped");
            },
            120, [&] { root_euid = geteuid(); });
        if (!out.ok || out.text != "0 dropped") return 91;
        if (geteuid() != nobody || getuid() != 0) return 92;  // the caller is as it was
        // What AS_ROOT throws is the outcome; BODY never runs.
        const Outcome refused = run_as_user(
            JobUser{nobody, nogroup, {}}, [&] { return std::string("body ran"); }, 120,
            [] { throw Error(ErrorKind::System, "munged is not there"); });
        if (refused.ok || refused.text != "munged is not there") return 93;
        return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST_F(RunAsUserTest, NoSupplementaryGroupsKept) {
    const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, [] {
        return std::to_string(getgroups(0, nullptr));
    });
    ASSERT_TRUE(out.ok) << out.text;
    EXPECT_EQ(out.text, "0");
}

TEST_F(RunAsUserTest, CompleteDropWhenOnlyTheEffectiveUidWasSwitched) {
    // slurmstepd in user_init has switched only its effective uid; the drop must
    // still be complete. Simulate that in a child process.
    const int rc = test::run_as(0, 0, [] {
        if (setegid(nogroup) != 0 || seteuid(nobody) != 0) return 90;
        const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, [] {
            uid_t r, e, s;
            getresuid(&r, &e, &s);
            return std::string(r == nobody && e == nobody && s == nobody && getgid() == nogroup && setuid(0) != 0
                                   ? "dropped"
                                   : "NOT dropped");
        });
        return out.ok && out.text == "dropped" ? 0 : 91;
    });
    EXPECT_EQ(rc, 0);
}

TEST_F(RunAsUserTest, ReturnsTheBodysStringExactly) {
    std::string big(200000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 97) big[i] = '\n';
    const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, [&] { return big; });
    ASSERT_TRUE(out.ok);
    EXPECT_EQ(out.text.size(), big.size());
    EXPECT_TRUE(out.text == big);
    const Outcome empty = run_as_user(JobUser{nobody, nogroup, {}}, [] { return std::string(); });
    EXPECT_TRUE(empty.ok);
    EXPECT_EQ(empty.text, "");
}

TEST_F(RunAsUserTest, ThrownErrorComesBack) {
    const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, []() -> std::string {
        throw Error(ErrorKind::NotFound, "spool /x does not exist");
    });
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.text, "spool /x does not exist");
    const Outcome other = run_as_user(JobUser{nobody, nogroup, {}}, []() -> std::string { throw 42; });
    EXPECT_FALSE(other.ok);
    EXPECT_FALSE(other.text.empty());
}

TEST_F(RunAsUserTest, CrashIsReported) {
    const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, []() -> std::string {
        raise(SIGTERM);
        return std::string("survived");
    });
    EXPECT_FALSE(out.ok);
    EXPECT_THAT(out.text, HasSubstr("signal"));
}

TEST_F(RunAsUserTest, SlowBodyIsKilledAndReported) {
    const auto start = std::chrono::steady_clock::now();
    const Outcome out = run_as_user(
        JobUser{nobody, nogroup, {}},
        [] {
            sleep(30);
            return std::string("too late");
        },
        1);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(out.ok);
    EXPECT_THAT(out.text, HasSubstr("did not answer within 1 s"));
    EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(RunAsUserTest, TheErrorsKindComesBackWithIt) {
    const Outcome out = run_as_user(JobUser{nobody, nogroup, {}}, []() -> std::string {
        throw Error(ErrorKind::Conflict, "already decided");
    });
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.kind, ErrorKind::Conflict);
    EXPECT_EQ(out.text, "already decided");
}

}  // namespace
}  // namespace hawf::plugin
