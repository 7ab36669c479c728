// plugin/run_as_user.cpp: running hawf-step-helper as the job user, in a child that
// drops root completely and execs (root only: skipped otherwise). Stand-in helpers
// are small shell scripts; the last tests run the real one.
#include <sys/stat.h>
#include <unistd.h>

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
using ::testing::StartsWith;
using fakes::nobody;
using fakes::nogroup;

// ================================================================ run_as_user (root only)

class RunAsUserTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "run_as_user drops root: run the unit tests as root";
    }
    // A root-owned helper script running BODY (sh).
    std::string helper(const std::string& body, mode_t mode = 0755) const {
        const std::string path = dir_ / "helper";
        test::write_text(path, "#!/bin/sh\n" + body + "\n", mode);
        chmod(path.c_str(), mode);
        return path;
    }
    // What the helper's credentials were: /proc/self/status's Uid, Gid and Groups lines.
    std::string identity(const JobUser& user, bool as_root = false) const {
        const Outcome out = run_as_user(helper(id_script), user, HelperCall{"probe", "", as_root});
        EXPECT_TRUE(out.ok) << out.text;
        return out.text;
    }
    static constexpr const char* id_script =
        "printf +; grep -E '^(Uid|Gid|Groups):' /proc/self/status | tr -s '\\t\\n' '  '";

    test::TempDir dir_{0755};
    const JobUser user_{nobody, nogroup, {}};
};

TEST_F(RunAsUserTest, DropsCompletely) {
    EXPECT_EQ(identity(JobUser{nobody, nogroup, {nogroup, 100}}),
              "Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: 100 65534 ");
    EXPECT_EQ(identity(user_), "Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: ");
    EXPECT_EQ(getuid(), 0u);  // the caller keeps its identity
    EXPECT_EQ(geteuid(), 0u);
}

// In user_init slurmstepd's effective uid is the job user's (its real uid root): the
// child drops completely all the same, and becomes root only when asked (seal).
TEST_F(RunAsUserTest, FromUserInitsIdentityDropsOrBecomesRoot) {
    const std::string probe = helper(id_script);
    const int rc = test::run_as(0, 0, [&] {
        if (setegid(nogroup) != 0 || seteuid(nobody) != 0) return 90;
        const Outcome user = run_as_user(probe, user_, HelperCall{"probe", ""});
        if (!user.ok || user.text != "Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: ") return 91;
        const Outcome root = run_as_user(probe, user_, HelperCall{"probe", "", true});
        if (!root.ok || root.text != "Uid: 0 0 0 0 Gid: 0 0 0 0 Groups: 0 ") return 92;
        if (geteuid() != nobody || getuid() != 0) return 93;  // the caller is as it was
        return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST_F(RunAsUserTest, TheVerbIsTheArgumentAndTheRequestIsStdin) {
    std::string big(200000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 97) big[i] = '\n';
    const Outcome out = run_as_user(helper("printf '+%s:' \"$1\"; cat"), user_, HelperCall{"open", big});
    ASSERT_TRUE(out.ok) << out.text;
    EXPECT_TRUE(out.text == "open:" + big);  // exactly, however large
    const Outcome empty = run_as_user(helper("printf +"), user_, HelperCall{"end", ""});
    EXPECT_TRUE(empty.ok);
    EXPECT_EQ(empty.text, "");
}

TEST_F(RunAsUserTest, TheErrorsKindComesBackWithIt) {
    const std::string conflict = std::to_string(static_cast<int>(ErrorKind::Conflict));
    const Outcome out = run_as_user(helper("printf '" + conflict + "already decided'; exit 1"), user_, {"end", ""});
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.kind, ErrorKind::Conflict);
    EXPECT_EQ(out.text, "already decided");
}

// Half an answer is never taken for one: a '+' answer counts only with exit 0.
TEST_F(RunAsUserTest, AnAnswerWithoutExit0IsNone) {
    const Outcome cut = run_as_user(helper("printf '+{\"dir\": \"/sp'; exit 1"), user_, {"open", ""});
    EXPECT_FALSE(cut.ok);
    EXPECT_EQ(cut.text, "hawf-step-helper failed without a whole answer");
    // What the helper said on stderr (the loader's complaint, say) is in the one line.
    const Outcome loader = run_as_user(
        helper("echo 'error while loading shared libraries: libyaml-0.so.2' >&2; exit 127"), user_, {"open", ""});
    EXPECT_FALSE(loader.ok);
    EXPECT_EQ(loader.text, "hawf-step-helper failed without a whole answer: \"error while loading shared libraries: "
                           "libyaml-0.so.2\"");
}

TEST_F(RunAsUserTest, CrashIsReported) {
    const Outcome out = run_as_user(helper("kill -TERM $$"), user_, {"open", ""});
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.text, "hawf-step-helper killed by signal 15");
}

TEST_F(RunAsUserTest, SlowHelperIsKilledAndReported) {
    const auto start = std::chrono::steady_clock::now();
    const Outcome out = run_as_user(helper("sleep 30"), user_, HelperCall{"open", "", false, 1});
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.text, "the spool did not answer within 1 s");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// Root execs the helper: one that anyone but root could change is refused before fork.
TEST_F(RunAsUserTest, OnlyARootOwnedHelperIsRun) {
    const std::string path = helper("printf '+ran'");
    ASSERT_EQ(chmod(path.c_str(), 0775), 0);
    EXPECT_EQ(run_as_user(path, user_, {"open", ""}).text,
              "refusing to run " + path + ": it must be a regular file owned by root, executable by all and writable "
                                          "by root only");
    ASSERT_EQ(chmod(path.c_str(), 0755), 0);
    ASSERT_EQ(chown(path.c_str(), nobody, nogroup), 0);
    EXPECT_THAT(run_as_user(path, user_, {"open", ""}).text, StartsWith("refusing to run " + path));
    const Outcome missing = run_as_user(dir_ / "none", user_, {"open", ""});
    EXPECT_FALSE(missing.ok);
    EXPECT_EQ(missing.text, "cannot run " + (dir_ / "none") +
                                ": No such file or directory (install the hawf-slurm-plugin package on this node, or "
                                "set step_helper= in plugstack.conf)");
}

// What fails between fork and exec is reported with async-signal-safe calls only.
TEST_F(RunAsUserTest, AnExecFailureIsReported) {
    const std::string path = dir_ / "helper";
    test::write_text(path, "#!/nonexistent/interpreter\n", 0755);
    const Outcome out = run_as_user(path, user_, {"open", ""});
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.kind, ErrorKind::System);
    EXPECT_EQ(out.text, "cannot run " + path + ": No such file or directory");
}

TEST_F(RunAsUserTest, TheRealHelperRefusesAnUnknownVerb) {
    const Outcome out = run_as_user(HAWF_TEST_STEP_HELPER, user_, {"launch", "{}"});
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.kind, ErrorKind::Usage);
    EXPECT_EQ(out.text, "hawf-step-helper: unknown verb \"launch\" (known: seal, open, deliver, end, oci; run by the hawf "
                        "SPANK plugin only)");
    const Outcome bad = run_as_user(HAWF_TEST_STEP_HELPER, user_, {"end", "{\"conf\": 7}"});
    EXPECT_FALSE(bad.ok);
    EXPECT_THAT(bad.text, StartsWith("hawf-step-helper end: a request it cannot read: "));
}

}  // namespace
}  // namespace hawf::plugin
