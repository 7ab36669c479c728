// plugin/submit_side.cpp: srun, sbatch and salloc checking the --hawf-* options, marking
// the step and copying the --hawf-then script into the spool.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error.hpp"
#include "helpers.hpp"
#include "plugin_fakes.hpp"
#include "request.hpp"
#include "spool.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::SaveArg;
using ::testing::StartsWith;
using ::testing::StrictMock;
using test::write_text;
using fakes::MockHost;
using fakes::NotifyTest;
using fakes::ReviewersTest;
using fakes::SubmitTest;
using fakes::one_line;

// ================================================================ submit side

TEST_F(SubmitTest, GoodOptionValuesAreAcceptedSilently) {
    StrictMock<MockHost> host;  // any Host call fails the test
    Request r;
    EXPECT_EQ(submit_option(host, r, Opt::Checkpoint, "eval"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Options, "go,stop"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Params, "lr:float,mode:enum(a|b)"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Timeout, "24h"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Default, "stop"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Then, "next.sbatch:go"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Reviewers, "root,@root,daemon"), 0);
    EXPECT_EQ(submit_option(host, r, Opt::Quorum, "2"), 0);
    EXPECT_TRUE(r.any());
    Request reviewers_only;
    EXPECT_EQ(submit_option(host, reviewers_only, Opt::Reviewers, "root"), 0);
    EXPECT_TRUE(reviewers_only.any());  // then refused for want of --hawf-checkpoint
    Request quorum_only;
    EXPECT_EQ(submit_option(host, quorum_only, Opt::Quorum, "1"), 0);
    EXPECT_TRUE(quorum_only.any());
    EXPECT_EQ(r.checkpoint(), "eval");
}

TEST_F(SubmitTest, BadOptionValueIsOneErrorLine) {
    struct Case {
        Opt id;
        const char* value;
        const char* option;
        const char* shown;
    };
    const Case cases[] = {
        {Opt::Checkpoint, ".eval", "--hawf-checkpoint", ".eval"},
        {Opt::Checkpoint, "ev al", "--hawf-checkpoint", "ev al"},
        {Opt::Checkpoint, "a\nb", "--hawf-checkpoint", "a\\nb"},
        {Opt::Options, "go,go", "--hawf-options", "go"},
        {Opt::Params, "lr:double", "--hawf-params", "double"},
        {Opt::Timeout, "5x", "--hawf-timeout", "5x"},
        {Opt::Timeout, "1.3s", "--hawf-timeout", "1.3s"},
        {Opt::Default, "no way", "--hawf-default", "no way"},
        {Opt::Then, ":go", "--hawf-then", ":go"},
        {Opt::Checkpoint, nullptr, "--hawf-checkpoint", "\"\""},
    };
    for (const Case& c : cases) {
        StrictMock<MockHost> host;
        std::string line;
        EXPECT_CALL(host, error(StartsWith(std::string("hawf: ") + c.option + ":")))
            .WillOnce(SaveArg<0>(&line));
        Request r;
        EXPECT_EQ(submit_option(host, r, c.id, c.value), -1) << c.option;
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, HasSubstr(c.shown));
        EXPECT_FALSE(r.any()) << "a refused value must not be kept";
    }
}

TEST_F(SubmitTest, NoOptionsDoesNothingAndReadsNoConfig) {
    StrictMock<MockHost> host;  // not even client() may be asked
    Request none;
    EXPECT_EQ(submit_post_opt(host, none, dir_ / "does-not-exist.yaml"), 0);
    write_text(dir_ / "garbage.yaml", "spool: [unclosed\n\tbogus: : :\n", 0644);
    EXPECT_EQ(submit_post_opt(host, none, dir_ / "garbage.yaml"), 0);
    write_text(dir_ / "unknown.yaml", "nonsense: 1\n", 0644);
    EXPECT_EQ(submit_post_opt(host, none, dir_ / "unknown.yaml"), 0);
    EXPECT_EQ(submit_post_opt(host, none, "relative/../../../\x01"), 0);
}

TEST_F(SubmitTest, SbatchWithValidOptionsSucceedsWithoutMarker) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_CALL(host, setenv(_, _)).Times(0);
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Timeout, "24h"}, {Opt::Default, "reject"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
}

// sbatch --export without ALL passes no --hawf-* option to the job before Slurm 23.11
// (NONE) or 24.05 (a list): refused at submission, not a job that silently never stops.
TEST_F(SubmitTest, SbatchExportWithoutAllIsRefusedWhereSlurmDropsTheOptions) {
    const auto refusal = [&](const char* exported, std::uint32_t version, bool then) {
        NiceMock<MockHost> host;
        ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
        ON_CALL(host, getenv("SLURM_EXPORT_ENV")).WillByDefault(Return(std::string(exported)));
        ON_CALL(host, slurm_version()).WillByDefault(Return(version));
        std::string line;
        EXPECT_CALL(host, error(_)).Times(::testing::AtMost(1)).WillRepeatedly(SaveArg<0>(&line));
        const std::string script = dir_ / "next.sh";
        test::write_text(script, "#!/bin/sh\n");
        const Request r = then ? request({{Opt::Checkpoint, "eval"}, {Opt::Then, script.c_str()}})
                               : request({{Opt::Checkpoint, "eval"}});
        const int rc = submit_post_opt(host, r, conf_);
        EXPECT_EQ(rc, line.empty() ? 0 : -1) << line;
        EXPECT_TRUE(line.empty() || one_line(line)) << line;
        return line;
    };
    constexpr std::uint32_t v22_05 = 0x160508, v23_11 = 0x170b00, v24_05 = 0x180500;
    EXPECT_EQ(refusal("NONE", v22_05, false),
              "hawf: sbatch --export \"NONE\" passes no --hawf-* option to the job in Slurm 22.05 (23.11 and later "
              "do): it would run without its checkpoint; use --export=ALL (the default) or ALL,VAR=value");
    EXPECT_EQ(refusal("none", v23_11, false), "");
    EXPECT_THAT(refusal("PATH,HOME", v23_11, false), HasSubstr("in Slurm 23.11 (24.05 and later do)"));
    EXPECT_EQ(refusal("PATH,HOME", v24_05, false), "");
    EXPECT_EQ(refusal("ALL,LR=1", v22_05, true), "");  // ALL keeps everything
    // Where the options pass, --hawf-then still needs HAWF_THEN_SCRIPT in the job.
    EXPECT_THAT(refusal("NONE", v24_05, true), HasSubstr("--hawf-then: with sbatch --export \"NONE\" the job cannot find"));
    EXPECT_EQ(refusal("PATH,HAWF_THEN_SCRIPT", v24_05, true), "");
}

TEST_F(SubmitTest, TimeoutWithoutDefaultRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Timeout, "24h"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("--hawf-default"));
    EXPECT_THAT(line, HasSubstr("approve,reject"));  // what is allowed
}

TEST_F(SubmitTest, DefaultWithoutTimeoutRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Default, "approve"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("--hawf-timeout"));
}

TEST_F(SubmitTest, DefaultNotAmongOptionsRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    const Request r = request(
        {{Opt::Checkpoint, "eval"}, {Opt::Options, "go,stop"}, {Opt::Timeout, "1h"}, {Opt::Default, "maybe"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("\"maybe\""));
    EXPECT_THAT(line, HasSubstr("go,stop"));
}

TEST_F(SubmitTest, DefaultCheckedAgainstConfiguredDefaultOptions) {
    write_text(conf_, "spool: " + spool_.path() + "\ndefault_options: [go, stop]\n");
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, error(HasSubstr("\"approve\""))).Times(1);
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Timeout, "1h"}, {Opt::Default, "approve"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
}

TEST_F(SubmitTest, ThenChoiceNotAmongOptionsRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, error(AllOf(StartsWith("hawf: "), HasSubstr("\"ship\"")))).Times(1);
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Then, "next.sh:ship"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
}

TEST_F(SubmitTest, OptionsWithoutCheckpointRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, error(AllOf(StartsWith("hawf: "), HasSubstr("--hawf-checkpoint")))).Times(1);
    const Request r = request({{Opt::Options, "go,stop"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
}

TEST_F(SubmitTest, SallocWithCheckpointRefused) {
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Salloc));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    EXPECT_CALL(host, setenv(_, _)).Times(0);
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("--hawf-checkpoint"));
}

TEST_F(SubmitTest, BrokenConfigRefusedWhenOptionsUsed) {
    write_text(conf_, "spool: /s\nspol: /typo\n");
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: " + conf_ + ":2:"));
}

TEST_F(SubmitTest, MissingSpoolRefusedWhenOptionsUsed) {
    write_text(conf_, "spool: " + (dir_ / "no-spool") + "\n");
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr(dir_ / "no-spool"));
}

TEST_F(SubmitTest, SrunMarksItsStep) {
    NiceMock<MockHost> host;
    as_srun(host);
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_CALL(host, setenv(step_marker_env, "eval")).Times(1);
    EXPECT_CALL(host, setenv(testing::Ne(std::string(step_marker_env)), _)).Times(0);
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
    EXPECT_STREQ(step_marker_env, "HAWF_STEP_CHECKPOINT");
}

TEST_F(SubmitTest, SrunInsideAllocationMarksItsStep) {
    NiceMock<MockHost> host;
    as_srun(host, "4242");
    EXPECT_CALL(host, setenv("HAWF_STEP_CHECKPOINT", "eval")).Times(1);
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
}

TEST_F(SubmitTest, SrunInheritingTheBatchCheckpointIsNotMarked) {
    NiceMock<MockHost> host;
    as_srun(host, "4242", "4242:eval");
    EXPECT_CALL(host, setenv(_, _)).Times(0);
    EXPECT_CALL(host, error(_)).Times(0);
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
}

TEST_F(SubmitTest, SrunWithAnotherCheckpointThanTheBatchJobIsMarked) {
    NiceMock<MockHost> host;
    as_srun(host, "4242", "4242:train");
    EXPECT_CALL(host, setenv("HAWF_STEP_CHECKPOINT", "eval")).Times(1);
    const Request r = request({{Opt::Checkpoint, "eval"}});
    EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
}

// ---------------------------------------------------------------- delegated mode (--hawf-reviewers)

TEST_F(ReviewersTest, BadReviewersAndQuorumAreOneLineEach) {
    EXPECT_EQ(option_refusal(Opt::Reviewers, "root,no-such-user-hawf"),
              "hawf: --hawf-reviewers: unknown reviewer \"no-such-user-hawf\": no such user here "
              "(a group is written @GROUP)");
    EXPECT_EQ(option_refusal(Opt::Reviewers, "@no-such-group-hawf"),
              "hawf: --hawf-reviewers: unknown reviewer \"@no-such-group-hawf\": no such group here");
    EXPECT_EQ(option_refusal(Opt::Reviewers, "root,daemon,root"),
              "hawf: --hawf-reviewers: reviewer \"root\" is named twice");
    EXPECT_EQ(option_refusal(Opt::Reviewers, "root,,daemon"),
              "hawf: --hawf-reviewers: bad reviewer \"\": use USER or @GROUP, names of letters, digits, '.', '_', "
              "'-' or '@' starting with a letter, digit or '_'");
    EXPECT_THAT(option_refusal(Opt::Reviewers, "-rf"), StartsWith("hawf: --hawf-reviewers: bad reviewer \"-rf\": "));
    EXPECT_THAT(option_refusal(Opt::Reviewers, "a\nb"), StartsWith("hawf: --hawf-reviewers: bad reviewer \"a\\nb\""));
    EXPECT_EQ(option_refusal(Opt::Reviewers, nullptr),
              "hawf: --hawf-reviewers: no reviewers: name at least one USER or @GROUP");
    for (const char* bad : {"0", "65", "-1", "two", "", "1.5", "0002"})
        EXPECT_THAT(option_refusal(Opt::Quorum, bad),
                    AllOf(StartsWith("hawf: --hawf-quorum: "), HasSubstr("\"" + std::string(bad) + "\""),
                          HasSubstr("use a whole number from 1 to 64")))
            << bad;
}

TEST_F(ReviewersTest, CombinationsRefusedAtSubmission) {
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Quorum, "2"}}),
              "hawf: --hawf-quorum needs --hawf-reviewers=USER,@GROUP,...");
    EXPECT_EQ(refusal({{Opt::Reviewers, "root"}}),
              "hawf: --hawf-options, --hawf-params, --hawf-timeout, --hawf-default, --hawf-then, --hawf-reviewers "
              "and --hawf-notify need --hawf-checkpoint=NAME");
    // A quorum the named users could never reach (a group counts its listed members).
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "root,daemon"}, {Opt::Quorum, "3"}}),
              "hawf: --hawf-quorum=3 but the reviewers name 2 users (root, daemon)");
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "daemon,@root"}, {Opt::Quorum, "2"}}),
              "hawf: --hawf-quorum=2 but the reviewers name 1 user (daemon)");
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "root,daemon"}, {Opt::Quorum, "2"}}), "");
    // A delegated checkpoint may have a timeout: hawfd takes its default, sealed.
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "root"}, {Opt::Timeout, "1h"},
                       {Opt::Default, "reject"}}),
              "");
}

TEST_F(ReviewersTest, ReviewersNeedHawfd) {
    write_text(conf_, "spool: " + spool_.path() + "\nhawfd:\n  listen: 0.0.0.0:7477\n");  // no address
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "root"}}),
              "hawf: --hawf-reviewers needs hawfd: hawfd.address is not set in " + conf_);
    // Owner mode needs no hawfd.
    EXPECT_EQ(refusal({{Opt::Checkpoint, "deploy"}}), "");
}

TEST_F(ReviewersTest, SrunWithReviewersMarksItsStep) {
    NiceMock<MockHost> host;
    as_srun(host);
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_CALL(host, setenv(step_marker_env, "deploy")).Times(1);
    EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "root,@root"}}), conf_), 0);
}

// ---------------------------------------------------------------- --hawf-notify

TEST_F(NotifyTest, ChannelsOfTheSiteAreAcceptedOthersRefusedInOneLine) {
    EXPECT_EQ(refusal({{Opt::Checkpoint, "eval"}, {Opt::Notify, "mail,ml-team"}}), "");
    EXPECT_EQ(refusal({{Opt::Checkpoint, "eval"}, {Opt::Notify, "none"}}), "");
    EXPECT_EQ(refusal({{Opt::Checkpoint, "eval"}, {Opt::Notify, "ml-team,pager"}}),
              "hawf: --hawf-notify: no channel \"pager\" in " + conf_ + ": use mail, ml-team or none");
    EXPECT_EQ(option_refusal(Opt::Notify, "https://evil.example/hook"),
              "hawf: --hawf-notify: bad choice in channels (or none alone) \"https://evil.example/hook\": use 1-64 "
              "letters, digits, '.', '_' or '-', starting with a letter or digit");
    EXPECT_EQ(option_refusal(Opt::Notify, "mail,none"), "hawf: --hawf-notify: none stands alone: it means no notifications");
    write_text(conf_, "spool: " + spool_.path() + "\n");
    EXPECT_EQ(refusal({{Opt::Checkpoint, "eval"}, {Opt::Notify, "mail"}}),
              "hawf: --hawf-notify: no notifications are configured (no notify: in " + conf_ +
                  "): leave --hawf-notify out");
}

// ---------------------------------------------------------------- --hawf-then snapshot

// A snapshot reference: 32 lowercase hex digits, '/', the file name.
::testing::Matcher<const std::string&> snapshot_ref(const std::string& name) {
    return ::testing::MatchesRegex("[0-9a-f]{32}/" + name);
}

mode_t mode_of(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// The current directory for the lifetime of the object (sbatch reads a relative
// script from its current directory).
class ChangeDir {
public:
    explicit ChangeDir(const std::string& dir) : old_(getcwd(nullptr, 0)) {
        if (chdir(dir.c_str()) != 0) throw std::runtime_error("cannot chdir to " + dir);
    }
    ~ChangeDir() {
        if (chdir(old_) != 0) std::abort();
        std::free(old_);
    }
    ChangeDir(const ChangeDir&) = delete;
    ChangeDir& operator=(const ChangeDir&) = delete;

private:
    char* old_;
};

TEST_F(SubmitTest, SbatchCopiesTheThenScriptIntoTheSpoolAtSubmission) {
    write_text(dir_ / "next.sh", "#!/bin/sh\necho original\n", 0755);
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    std::string ref;
    EXPECT_CALL(host, setenv(then_script_env, snapshot_ref("next\\.sh"))).WillOnce(SaveArg<1>(&ref));
    EXPECT_CALL(host, setenv(step_marker_env, _)).Times(0);
    EXPECT_CALL(host, error(_)).Times(0);
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Then, "next.sh:approve"}});
    {
        ChangeDir in(dir_.path());
        EXPECT_EQ(submit_post_opt(host, r, conf_), 0);
    }
    EXPECT_STREQ(then_script_env, "HAWF_THEN_SCRIPT");
    write_text(dir_ / "next.sh", "#!/bin/sh\necho replaced\n", 0755);  // too late: the copy is taken

    const std::string copy = Spool(spool_.path()).script_path(getuid(), ref);
    EXPECT_EQ(copy, spool_.path() + "/" + std::to_string(getuid()) + "/scripts/" + ref);
    EXPECT_EQ(test::read_text(copy), "#!/bin/sh\necho original\n");
    // Private like the rest of the user's tree, whatever the umask or the original's mode.
    EXPECT_EQ(mode_of(copy), 0600u);
    EXPECT_EQ(mode_of(copy.substr(0, copy.rfind('/'))), 0700u);
    EXPECT_EQ(mode_of(spool_ / (std::to_string(getuid()) + "/scripts")), 0700u);
}

TEST_F(SubmitTest, EverySubmissionGetsItsOwnCopy) {
    write_text(dir_ / "next.sh", "#!/bin/sh\n", 0644);
    std::vector<std::string> refs;
    for (int i = 0; i < 2; ++i) {
        NiceMock<MockHost> host;
        ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
        std::string ref;
        EXPECT_CALL(host, setenv(then_script_env, _)).WillOnce(SaveArg<1>(&ref));
        EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, (dir_ / "next.sh").c_str()}}),
                                  conf_), 0);
        refs.push_back(ref);
    }
    EXPECT_NE(refs[0], refs[1]);
}

TEST_F(SubmitTest, ThenScriptWithoutAValidNameIsCopiedAsScript) {
    write_text(dir_ / "-my job", "#!/bin/sh\n", 0644);
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, setenv(then_script_env, snapshot_ref("script"))).Times(1);
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, (dir_ / "-my job").c_str()}}),
                              conf_), 0);
}

TEST_F(SubmitTest, SrunStepCopiesItsThenScriptAndIsMarked) {
    write_text(dir_ / "next.sh", "#!/bin/sh\n", 0644);
    NiceMock<MockHost> host;
    as_srun(host, "4242");
    EXPECT_CALL(host, setenv(then_script_env, snapshot_ref("next\\.sh"))).Times(1);
    EXPECT_CALL(host, setenv(step_marker_env, "eval")).Times(1);
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, (dir_ / "next.sh").c_str()}}),
                              conf_), 0);
}

TEST_F(SubmitTest, SrunInheritingTheBatchCheckpointCopiesNothing) {
    NiceMock<MockHost> host;  // the script need not even exist here: the batch job copied it
    as_srun(host, "4242", "4242:eval");
    EXPECT_CALL(host, setenv(_, _)).Times(0);
    EXPECT_CALL(host, error(_)).Times(0);
    EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, "gone.sh"}}), conf_), 0);
    EXPECT_TRUE(Spool(spool_.path()).owners().empty());
}

TEST_F(SubmitTest, UnreadableThenScriptIsRefusedWithOneLine) {
    ASSERT_EQ(mkdir((dir_ / "adir").c_str(), 0755), 0);
    ASSERT_EQ(mkfifo((dir_ / "fifo").c_str(), 0644), 0);
    {  // one byte over Slurm's default max_script_size
        std::string big = "#!/bin/sh\n";
        big.resize(Spool::max_script_bytes + 1, '#');
        write_text(dir_ / "big.sh", big);
    }
    write_text(dir_ / "exact.sh", std::string(Spool::max_script_bytes, '#'));
    const std::pair<std::string, std::string> cases[] = {
        {dir_ / "nosuch.sh", "No such file or directory"},
        {dir_ / "adir", "not a regular file"},
        {dir_ / "fifo", "not a regular file"},  // and does not hang
        {dir_ / "big.sh", "larger than 4 MiB"},
    };
    for (const auto& [script, why] : cases) {
        NiceMock<MockHost> host;
        ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
        EXPECT_CALL(host, setenv(_, _)).Times(0);
        std::string line;
        EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
        EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, script.c_str()}}), conf_), -1);
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, StartsWith("hawf: --hawf-then: "));
        EXPECT_THAT(line, HasSubstr(script.substr(script.rfind('/') + 1)));
        EXPECT_THAT(line, HasSubstr(why));
    }
    NiceMock<MockHost> host;
    ON_CALL(host, client()).WillByDefault(Return(Client::Sbatch));
    EXPECT_CALL(host, setenv(then_script_env, snapshot_ref("exact\\.sh"))).Times(1);
    EXPECT_EQ(submit_post_opt(host, request({{Opt::Checkpoint, "eval"}, {Opt::Then, (dir_ / "exact.sh").c_str()}}),
                              conf_), 0);
}

TEST_F(SubmitTest, SnapshotReferencesAreCheckedStrictly) {
    const Spool spool(spool_.path());
    const std::string ref = spool.save_script(getuid(), "next.sh", "#!/bin/sh\n");
    const std::string token = ref.substr(0, 32);
    EXPECT_EQ(spool.script_path(getuid(), ref), spool_.path() + "/" + std::to_string(getuid()) + "/scripts/" + ref);
    const std::vector<std::string> bad_refs = {"", "next.sh", token, token + "/", token + "/..",
                                               token + "/../" + token + "/next.sh", "../../../etc/passwd",
                                               "/etc/passwd", token + "/next.sh/x", token.substr(1) + "/next.sh",
                                               token + "0/next.sh", "ABCDEF" + token.substr(6) + "/next.sh",
                                               token + "/next.sh\n"};
    for (const std::string& bad : bad_refs)
        EXPECT_HAWF_ERROR(spool.script_path(getuid(), bad), ErrorKind::Usage, "invalid script snapshot");
    const std::string other = std::string(32, 'a') + "/next.sh";
    EXPECT_HAWF_ERROR(spool.script_path(getuid(), other), ErrorKind::NotFound, "no script snapshot");
    EXPECT_HAWF_ERROR(spool.script_path(getuid(), token + "/other.sh"), ErrorKind::NotFound, "no script snapshot");
    EXPECT_HAWF_ERROR(spool.script_path(getuid() + 1, ref), ErrorKind::NotFound, "no script snapshot");
    EXPECT_HAWF_ERROR(spool.save_script(getuid(), "../x", ""), ErrorKind::Usage, "script name");
}

}  // namespace
}  // namespace hawf::plugin
