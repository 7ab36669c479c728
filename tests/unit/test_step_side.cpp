// plugin/step_side.cpp: slurmstepd opening and ending checkpoints, failing the job closed,
// site policies and follow-ups (most as root: skipped otherwise).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "actions.hpp"
#include "config.hpp"
#include "error.hpp"
#include "fake_slurm.hpp"
#include "followups.hpp"
#include "helpers.hpp"
#include "munge.hpp"
#include "munged.hpp"
#include "plugin_fakes.hpp"
#include "request.hpp"
#include "review.hpp"
#include "run_as_user.hpp"
#include "step_helper.hpp"
#include "spool.hpp"
#include "step_side.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {
namespace {

using ::testing::_;
using ::testing::AnyNumber;
using ::testing::AtLeast;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::SaveArg;
using ::testing::StartsWith;
using ::testing::StrictMock;
using test::TempDir;
using test::write_text;
using Argv = std::vector<std::string>;
using fakes::MockHost;
using fakes::nobody;
using fakes::nogroup;
using fakes::one_line;

// ================================================================ step side, failing closed (any user)

// The step side with a stand-in for run_as_user: what the child answers is scripted,
// so the failures after the child's work are tested without root.
class FailClosedTest : public ::testing::Test {
protected:
    void SetUp() override {
        write_text(conf_, "spool: " + spool_.path() + "\n", 0644);
        ON_CALL(host_, where()).WillByDefault(Return(Where::Stepd));
        ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, batch_step_id, 0, 0}));
        ON_CALL(host_, user()).WillByDefault(Return(JobUser{getuid(), getgid(), {}}));
        ON_CALL(host_, node_id()).WillByDefault(Return(0u));
        ON_CALL(host_, node_count()).WillByDefault(Return(1u));
        ON_CALL(host_, getenv(_)).WillByDefault(Return(std::nullopt));
    }
    // A step side whose child answers ANSWERS in turn (the work is not done).
    StepSide side(std::vector<Outcome> answers) {
        return StepSide(conf_, [this, answers](const JobUser&, const HelperCall&) {
            return answers.at(std::min(calls_++, answers.size() - 1));
        });
    }
    // What task_init says, "" if the tasks may run.
    std::string task_init(StepSide& side) {
        std::string line;
        EXPECT_CALL(host_, error(_)).Times(testing::AtMost(1)).WillRepeatedly(SaveArg<0>(&line));
        const int rc = side.task_init(host_);
        EXPECT_EQ(rc, line.empty() ? 0 : -1) << line;
        return line;
    }
    TempDir spool_{01777}, dir_{0755};
    std::string conf_ = dir_ / "hawf.yaml";
    NiceMock<MockHost> host_;
    std::size_t calls_ = 0;
};

TEST_F(FailClosedTest, AnOpeningAnswerCutShortFailsTheJobAndTheCheckpointIsStillEnded) {
    Request req;
    req.set(Opt::Checkpoint, "eval");
    StepSide s = side({{true, "{\"dir\": \"/sp"}, {true, ""}});
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    s.user_init(host_, req);
    EXPECT_EQ(task_init(s), "hawf: cannot open checkpoint 4242:eval: the spool writer answered \"{\\\"dir\\\": \\\"/sp\"");
    s.exit(host_);
    EXPECT_EQ(calls_, 2u);  // opened, then ended (as failed: its tasks never ran)
}

TEST_F(FailClosedTest, AFollowUpWhoseDecisionAnswerIsCutShortNeverRuns) {
    Request req;
    req.set(Opt::After, "4241:eval");
    StepSide s = side({{true, "{\"HAWF_DECISION\": \"appr"}});
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    s.user_init(host_, req);
    EXPECT_THAT(task_init(s), StartsWith("hawf: cannot read the decision the spool writer answered"));
}

TEST_F(FailClosedTest, TheChildsRefusalIsTheOneLine) {
    Request req;
    req.set(Opt::After, "4241:eval");
    StepSide s = side({{false, "4241:eval is pending, not decided: this follow-up was released by hand",
                        ErrorKind::Conflict}});
    s.user_init(host_, req);
    EXPECT_EQ(task_init(s), "hawf: 4241:eval is pending, not decided: this follow-up was released by hand");
}

TEST_F(FailClosedTest, AnythingThrownInUserInitFailsTheJob) {
    Request req;
    req.set(Opt::Checkpoint, "eval");
    ON_CALL(host_, step()).WillByDefault(testing::Throw(std::runtime_error("spank_get_item failed")));
    StepSide s = side({{true, ""}});
    EXPECT_NO_THROW(s.user_init(host_, req));
    EXPECT_EQ(task_init(s), "hawf: internal error: spank_get_item failed");
}

// The helper's verbs in this process, as the calling user: the step side's whole work
// without root (the tests below run the real helper, as root, dropped to nobody).
TEST_F(FailClosedTest, InProcessTheHelpersVerbsOpenAndEndTheCheckpoint) {
    std::vector<HelperCall> calls;
    StepSide s(conf_, [&](const JobUser&, const HelperCall& call) {
        calls.push_back(call);
        try {
            return Outcome{true, run_step_verb(call.verb, call.request)};
        } catch (const Error& e) {
            return Outcome{false, e.what(), e.kind()};
        }
    });
    Request req;
    req.set(Opt::Checkpoint, "eval");
    req.set(Opt::Options, "go,stop");
    const CheckpointId id = parse_checkpoint_id("4242:eval");
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());  // the containers' copies: StepSideTest
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "4242:eval"));
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT_DIR", Spool(spool_.path()).files_dir(getuid(), id)));
    EXPECT_CALL(host_, setenv("HAWF_CONF", conf_));
    s.user_init(host_, req);
    EXPECT_EQ(task_init(s), "");
    EXPECT_EQ(Spool(spool_.path()).load(getuid(), id).state, State::Running);
    s.exit(host_);
    const Checkpoint c = Spool(spool_.path()).load(getuid(), id);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.spec.options, (std::vector<std::string>{"go", "stop"}));
    // Without hawfd: nothing as root, no seal; the options travel as given.
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].verb, "open");
    EXPECT_EQ(parse_json(calls[0].request).at("options"),
              (nlohmann::json{{"hawf-checkpoint", "eval"}, {"hawf-options", "go,stop"}}));
    EXPECT_EQ(calls[1].verb, "end");
    EXPECT_FALSE(calls[0].as_root || calls[1].as_root);
}

// A value slurmstepd refused (another hawf release on the submit host, a group this
// node does not know) fails the job before the helper is asked anything.
TEST_F(FailClosedTest, AValueSlurmstepdRefusedFailsTheJobWithoutOpening) {
    Request req;
    req.set(Opt::Checkpoint, "eval");
    EXPECT_FALSE(req.collect(Opt::Timeout, "soon").empty());
    StepSide s = side({{false, "must not be asked"}});
    s.user_init(host_, req);
    EXPECT_THAT(task_init(s), StartsWith("hawf: cannot open checkpoint 4242:eval: --hawf-timeout: "));
    s.exit(host_);
    EXPECT_EQ(calls_, 0u);
}

TEST_F(FailClosedTest, AJobWithoutHawfOptionsIsLeftAlone) {
    StepSide s = side({{false, "must not be asked"}});
    s.user_init(host_, Request{});
    EXPECT_EQ(task_init(s), "");
    s.exit(host_);
    EXPECT_EQ(calls_, 0u);
}

// ================================================================ step side (root only)

// A job user (nobody) writing into a root-owned 1777 spool, as on a cluster.
class StepSideTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "StepSide drops root via run_as_user: run the unit tests as root";
        spool_root_ = base_ / "spool";
        ASSERT_EQ(mkdir(spool_root_.c_str(), 0755), 0);
        ASSERT_EQ(chmod(spool_root_.c_str(), 01777), 0);
        conf_ = base_ / "hawf.yaml";
        write_text(conf_, "spool: " + spool_root_ + "\n", 0644);

        ON_CALL(host_, where()).WillByDefault(Return(Where::Stepd));
        ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, batch_step_id, 0, 0}));
        ON_CALL(host_, user()).WillByDefault(Return(user_));
        ON_CALL(host_, node_id()).WillByDefault(Return(0u));
        ON_CALL(host_, node_count()).WillByDefault(Return(1u));
        ON_CALL(host_, task_exit_status()).WillByDefault(Return(0));
        ON_CALL(host_, getenv(_)).WillByDefault(Return(std::nullopt));
    }

    static Request checkpoint_request(const char* name = "eval") {
        Request r;
        r.set(Opt::Checkpoint, name);
        return r;
    }
    Checkpoint load(const std::string& id) const { return Spool(spool_root_).load(nobody, parse_checkpoint_id(id)); }
    bool spool_is_empty() const { return Spool(spool_root_).owners().empty(); }

    TempDir base_{0755};
    std::string spool_root_, conf_;
    JobUser user_{nobody, nogroup, {}};
    Runner helper_ = helper_runner(HAWF_TEST_STEP_HELPER);  // the helper this build made
    NiceMock<MockHost> host_;
};

// A step in Slurm 22.05's native container: the config.json Slurm wrote (root's,
// group-readable by the user, in the user's directory) gets the variables and the
// checkpoint's directory bound, written by the job user, not root.
TEST_F(StepSideTest, NativeContainerConfigGetsTheVariablesAndBinds) {
    TempDir step_dir(0750);
    ASSERT_EQ(chown(step_dir.path().c_str(), nobody, nogroup), 0);
    const std::string config = step_dir / "config.json";
    write_text(config, R"({"process": {"env": ["PATH=/bin"]}, "mounts": []})", 0750);
    ASSERT_EQ(chown(config.c_str(), 0, nogroup), 0);
    ON_CALL(host_, oci_config()).WillByDefault(Return(config));
    EXPECT_CALL(host_, error(_)).Times(0);

    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(side.task_init(host_), 0);
    const std::string dir = Spool(spool_root_).files_dir(nobody, parse_checkpoint_id("4242:eval"));
    const nlohmann::json amended = nlohmann::json::parse(test::read_text(config));
    const auto& env = amended["process"]["env"];
    for (const std::string& entry : std::vector<std::string>{"PATH=/bin", "HAWF_CHECKPOINT=4242:eval", "HAWF_CHECKPOINT_DIR=" + dir,
                                    "APPTAINERENV_HAWF_CHECKPOINT_DIR=" + dir})
        EXPECT_NE(std::find(env.begin(), env.end(), entry), env.end()) << entry << " in " << env;
    ASSERT_EQ(amended["mounts"].size(), 1u);
    EXPECT_EQ(amended["mounts"][0]["source"], dir);
    EXPECT_EQ(amended["mounts"][0]["destination"], dir);
    struct stat st;
    ASSERT_EQ(stat(config.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, nobody);
    side.exit(host_);
}

// A config.json the user could have put there (not root's) is not trusted: the job fails.
TEST_F(StepSideTest, NativeContainerConfigNotRootsFailsTheJob) {
    TempDir step_dir(0755);
    const std::string config = step_dir / "config.json";
    write_text(config, "{}", 0644);
    ASSERT_EQ(chown(config.c_str(), nobody, nogroup), 0);
    ON_CALL(host_, oci_config()).WillByDefault(Return(config));
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    std::string error;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&error));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_NE(error.find("cannot pass the checkpoint to the step's container"), std::string::npos) << error;
    side.exit(host_);
}

TEST_F(StepSideTest, BatchStepOpensAndEndsPending) {
    const Request req = checkpoint_request();
    const CheckpointId id = parse_checkpoint_id("4242:eval");
    const std::string dir = Spool(spool_root_).files_dir(nobody, id);
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "4242:eval")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT_DIR", dir)).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_CONF", conf_)).Times(1);
    // The same for a task that runs Apptainer or Singularity (even with --cleanenv),
    // and the directory bound at the same path, after the job's own binds.
    for (const std::string prefix : {"APPTAINERENV_", "SINGULARITYENV_"}) {
        EXPECT_CALL(host_, setenv(prefix + "HAWF_CHECKPOINT", "4242:eval")).Times(1);
        EXPECT_CALL(host_, setenv(prefix + "HAWF_CHECKPOINT_DIR", dir)).Times(1);
        EXPECT_CALL(host_, setenv(prefix + "HAWF_CONF", conf_)).Times(1);
    }
    ON_CALL(host_, getenv("APPTAINER_BINDPATH")).WillByDefault(Return("/data"));
    EXPECT_CALL(host_, setenv("APPTAINER_BINDPATH", "/data," + dir + ":" + dir + ":rw")).Times(1);
    EXPECT_CALL(host_, setenv("SINGULARITY_BINDPATH", dir + ":" + dir + ":rw")).Times(1);
    EXPECT_CALL(host_, error(_)).Times(0);

    StepSide side(conf_, helper_);
    side.user_init(host_, req);
    Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Running);
    EXPECT_EQ(c.spec.scope, Scope::Job);
    EXPECT_EQ(c.spec.owner_uid, nobody);
    EXPECT_EQ(c.spec.options, (std::vector<std::string>{"approve", "reject"}));
    EXPECT_EQ(c.history[0].by_uid, nobody);  // written by the job user, not root
    EXPECT_EQ(c.history[0].via, Via::Plugin);
    // Without hawfd nothing is sealed: the record is as it always was.
    EXPECT_TRUE(c.spec.seal.empty());
    EXPECT_EQ(test::read_text(spool_root_ + "/" + std::to_string(nobody) + "/ckpt/4242/eval/log/00000001").find("seal"),
              std::string::npos);
    struct stat st;
    ASSERT_EQ(stat(Spool(spool_root_).files_dir(nobody, id).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, nobody);

    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    c = load("4242:eval");
    EXPECT_EQ(c.state, State::Pending);
    const auto pending = Spool(spool_root_).pending_ids(nobody);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0], id);
}

TEST_F(StepSideTest, BatchStepWithOptionsFromTheRequest) {
    Request req = checkpoint_request();
    req.set(Opt::Options, "go,stop");
    req.set(Opt::Params, "lr:float");
    req.set(Opt::Timeout, "2h");
    req.set(Opt::Default, "stop");
    StepSide side(conf_, helper_);
    side.user_init(host_, req);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.spec.options, (std::vector<std::string>{"go", "stop"}));
    EXPECT_EQ(c.spec.timeout_s, 7200);
    EXPECT_EQ(c.spec.default_choice, "stop");
    ASSERT_EQ(c.spec.params.size(), 1u);
    EXPECT_EQ(c.spec.params[0].type_text(), "float");
}

TEST_F(StepSideTest, NonZeroExitIsFailed) {
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(1 << 8));
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_EQ(c.history.back().exit_status, 1 << 8);
    EXPECT_TRUE(Spool(spool_root_).pending_ids(nobody).empty());
}

TEST_F(StepSideTest, AnyFailingTaskFailsTheCheckpoint) {
    EXPECT_CALL(host_, task_exit_status())
        .Times(AtLeast(2))
        .WillOnce(Return(0))
        .WillOnce(Return(SIGKILL))
        .WillRepeatedly(Return(0));
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    side.task_exit(host_);
    side.task_exit(host_);
    side.task_exit(host_);
    side.exit(host_);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_EQ(c.history.back().exit_status, SIGKILL);
}

TEST_F(StepSideTest, MarkedSrunStepOpensAStepCheckpoint) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, 3, 0, 0}));
    ON_CALL(host_, getenv(step_marker_env)).WillByDefault(Return(std::string("eval")));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "4242:eval")).Times(1);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(load("4242:eval").spec.scope, Scope::Step);
    side.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Pending);
}

TEST_F(StepSideTest, ArrayTaskUsesArrayId) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{5000, batch_step_id, 4990, 7}));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "4990_7:eval")).Times(1);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(load("4990_7:eval").state, State::Running);
}

TEST_F(StepSideTest, SrunStepOfAnArrayTaskUsesArrayId) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{5001, 0, 4990, 8}));
    ON_CALL(host_, getenv(step_marker_env)).WillByDefault(Return(std::string("eval")));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "4990_8:eval")).Times(1);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(load("4990_8:eval").spec.scope, Scope::Step);
}

TEST_F(StepSideTest, NoValArrayTaskIdUsesPlainJobId) {
    // Slurm reports NO_VAL (0xfffffffe) as the array task id of some steps.
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{5002, batch_step_id, 5002, 0xfffffffe}));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_CHECKPOINT", "5002:eval")).Times(1);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(load("5002:eval").state, State::Running);
}

TEST_F(StepSideTest, MultiNodeStepEndsWhenTheLastNodeEnds) {
    ON_CALL(host_, node_count()).WillByDefault(Return(2u));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    StepSide first(conf_, helper_), second(conf_, helper_);
    first.user_init(host_, checkpoint_request());
    ON_CALL(host_, node_id()).WillByDefault(Return(1u));
    second.user_init(host_, checkpoint_request());
    second.task_exit(host_);
    second.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Running);  // node 0 still runs
    ON_CALL(host_, node_id()).WillByDefault(Return(0u));
    first.task_exit(host_);
    first.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Pending);
}

TEST_F(StepSideTest, MultiNodeStepFailsWhenAnyNodeFails) {
    ON_CALL(host_, node_count()).WillByDefault(Return(2u));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    StepSide first(conf_, helper_), second(conf_, helper_);
    first.user_init(host_, checkpoint_request());
    first.task_exit(host_);
    first.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Running);
    ON_CALL(host_, node_id()).WillByDefault(Return(1u));
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(3 << 8));
    second.user_init(host_, checkpoint_request());
    second.task_exit(host_);
    second.exit(host_);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_EQ(c.history.back().exit_status, 3 << 8);
}

TEST_F(StepSideTest, RequeuedJobReopensItsFailedCheckpoint) {
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    {
        StepSide side(conf_, helper_);
        side.user_init(host_, checkpoint_request());
        ON_CALL(host_, task_exit_status()).WillByDefault(Return(SIGTERM));
        side.task_exit(host_);
        side.exit(host_);
    }
    EXPECT_EQ(load("4242:eval").state, State::Failed);
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(0));
    StepSide rerun(conf_, helper_);
    rerun.user_init(host_, checkpoint_request());
    EXPECT_EQ(rerun.task_init(host_), 0);
    rerun.task_exit(host_);
    rerun.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Pending);
}

TEST_F(StepSideTest, UnmarkedStepDoesNothing) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, 0, 0, 0}));
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    EXPECT_CALL(host_, error(_)).Times(0);
    EXPECT_CALL(host_, user()).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request());
    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(StepSideTest, StepMarkedForAnotherCheckpointDoesNothing) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, 0, 0, 0}));
    ON_CALL(host_, getenv(step_marker_env)).WillByDefault(Return(std::string("train")));
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, checkpoint_request("eval"));
    side.exit(host_);
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(StepSideTest, ExternAndInteractiveStepsDoNothing) {
    for (std::uint32_t step_id : {0xfffffffcu, 0xfffffffau}) {
        NiceMock<MockHost> host;
        ON_CALL(host, step()).WillByDefault(Return(StepIds{4242, step_id, 0, 0}));
        ON_CALL(host, user()).WillByDefault(Return(user_));
        ON_CALL(host, getenv(step_marker_env)).WillByDefault(Return(std::string("eval")));
        EXPECT_CALL(host, setenv(_, _)).Times(0);
        EXPECT_CALL(host, error(_)).Times(0);
        StepSide side(conf_, helper_);
        side.user_init(host, checkpoint_request());
        EXPECT_EQ(side.task_init(host), 0);
        side.task_exit(host);
        side.exit(host);
        EXPECT_TRUE(spool_is_empty()) << std::hex << step_id;
    }
}

TEST_F(StepSideTest, NoCheckpointRequestedDoesNothing) {
    StrictMock<MockHost> host;  // not a single Host call
    StepSide side(base_ / "missing.yaml", helper_);
    side.user_init(host, Request());
    EXPECT_EQ(side.task_init(host), 0);
    side.task_exit(host);
    side.exit(host);
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(StepSideTest, MissingSpoolFailsTheJobNotTheNode) {
    write_text(conf_, "spool: " + (base_ / "missing") + "\n", 0644);
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    StepSide side(conf_, helper_);
    EXPECT_NO_THROW(side.user_init(host_, checkpoint_request()));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("4242:eval"));
    EXPECT_THAT(line, HasSubstr(base_ / "missing"));
    side.task_exit(host_);
    EXPECT_NO_THROW(side.exit(host_));  // nothing to end
}

TEST_F(StepSideTest, UnwritableSpoolFailsTheJobNotTheNode) {
    ASSERT_EQ(chmod(spool_root_.c_str(), 0755), 0);  // root's, not writable by the job user
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    StepSide side(conf_, helper_);
    EXPECT_NO_THROW(side.user_init(host_, checkpoint_request()));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("4242:eval"));
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(StepSideTest, BrokenConfigFailsTheJobNotTheNode) {
    write_text(conf_, "spool: " + spool_root_ + "\nbogus: 1\n", 0644);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    StepSide side(conf_, helper_);
    EXPECT_NO_THROW(side.user_init(host_, checkpoint_request()));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr(conf_ + ":2:"));
}

// ================================================================ site policies at opening (root only)

// hawf.yaml with hawfd and the SPEC's policy (partition prod, checkpoints ev*); a
// fake squeue answers what slurmctld knows of the job.
class PolicyStepTest : public StepSideTest {
protected:
    void SetUp() override {
        StepSideTest::SetUp();
        if (IsSkipped()) return;
        // With hawfd configured the child seals the spec with root's credential.
        const std::string program = test::find_munged();
        if (program.empty()) GTEST_SKIP() << "munged is not installed";
        munged_ = std::make_unique<test::Munged>(program);
        configure("policies:\n  - partition: prod\n    checkpoint: \"ev*\"\n    reviewers: [\"@safety\"]\n"
                  "    quorum: 2\n    owner_may_decide: false\n");
        EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    }
    void configure(const std::string& policies, const std::string& socket = "") const {
        write_text(conf_,
                   "spool: " + spool_root_ + "\nhawfd:\n  address: svc1:7477\n  munge_socket: " +
                       (socket.empty() ? munged_->socket() : socket) + "\n" + policies,
                   0644);
    }
    // SPEC's seal decodes to root with exactly its payload (verify_spec), by munge itself.
    void expect_sealed_by_root(const CheckpointSpec& spec) const {
        ASSERT_FALSE(spec.seal.empty());
        const MungeCredential seal = munge_decode(spec.seal, munged_->socket());
        EXPECT_EQ(seal.uid, 0u);
        EXPECT_EQ(seal.payload, spec_seal_payload(spec));
        EXPECT_NO_THROW(verify_spec(spec, munged_->socket()));
    }
    std::unique_ptr<test::Munged> munged_;
    void job_in(const std::string& partition, const std::string& job = "4242") const {
        fake_.set_output("squeue." + job,
                         test::squeue_line(nobody, "RUNNING", 1, "N/A", "None", partition, "normal", "ml"));
    }
    // Starts the batch step of 4242 with REQ; returns the line task_init prints ("" if none).
    std::string start(const Request& req) {
        std::string line;
        EXPECT_CALL(host_, error(_)).Times(testing::AtMost(1)).WillRepeatedly(SaveArg<0>(&line));
        StepSide side(conf_, helper_);
        EXPECT_NO_THROW(side.user_init(host_, req));  // never fails in a way that drains the node
        const int rc = side.task_init(host_);
        EXPECT_EQ(rc, line.empty() ? 0 : -1);
        return line;
    }
    static Argv squeue_call(const std::string& job) {
        return {"squeue", "--noheader", "--states=all", "--jobs=" + job, test::squeue_format};
    }

    test::FakeSlurm fake_;
    test::PathPrepend path_{fake_.bindir()};
};

TEST_F(PolicyStepTest, AMatchingPolicyMakesTheCheckpointDelegated) {
    job_in("prod");
    EXPECT_EQ(start(checkpoint_request()), "");
    const Checkpoint c = load("4242:eval");
    EXPECT_TRUE(c.spec.delegated());
    EXPECT_TRUE(c.spec.reviewers.empty());  // the job asked for none
    EXPECT_EQ(c.spec.quorum, 1u);
    EXPECT_EQ(c.spec.required,
              (std::vector<CheckpointSpec::Requirement>{{{"@safety"}, 2, conf_ + ":6"}}));  // the policy's line
    EXPECT_FALSE(c.spec.owner_may_decide);
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{squeue_call("4242")}));  // asked slurmctld (as root, sealing)
    // Sealed with the policy's requirement in it: the owner cannot take it out.
    expect_sealed_by_root(c.spec);
    CheckpointSpec weakened = c.spec;
    weakened.required.clear();
    weakened.owner_may_decide = true;
    EXPECT_HAWF_ERROR(verify_spec(weakened, munged_->socket()), ErrorKind::Untrusted,
                      "the checkpoint 4242:eval was not opened by hawf (its spec is not sealed): the seal is for "
                      "another spec");
}

// In user_init slurmstepd's effective uid is the job user's (its real uid root): the
// child becomes root again to seal, and writes the spool only after dropping fully.
TEST_F(PolicyStepTest, TheChildSealsAsRootFromUserInitsIdentity) {
    job_in("prod");
    ASSERT_EQ(setegid(nogroup), 0);
    ASSERT_EQ(seteuid(nobody), 0);
    std::string line;
    {
        EXPECT_CALL(host_, error(_)).Times(testing::AtMost(1)).WillRepeatedly(SaveArg<0>(&line));
        StepSide side(conf_, helper_);
        side.user_init(host_, checkpoint_request());
        side.task_init(host_);
    }
    ASSERT_EQ(seteuid(0), 0);
    ASSERT_EQ(setegid(0), 0);
    EXPECT_EQ(line, "");
    const Checkpoint c = load("4242:eval");
    expect_sealed_by_root(c.spec);
    EXPECT_EQ(c.history[0].by_uid, nobody);  // the record is written by the job user
    struct stat st;
    ASSERT_EQ(stat((spool_root_ + "/" + std::to_string(nobody) + "/ckpt/4242/eval/log/00000001").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, nobody);
}

// An owner-mode checkpoint is sealed too where hawfd is configured: delivery then
// tells it from a delegated spec the owner rewrote into owner mode.
TEST_F(PolicyStepTest, WithHawfdAnOwnerModeSpecIsSealedToo) {
    configure("");
    EXPECT_EQ(start(checkpoint_request()), "");
    const Checkpoint c = load("4242:eval");
    EXPECT_FALSE(c.spec.delegated());
    expect_sealed_by_root(c.spec);
    EXPECT_TRUE(fake_.calls().empty());  // no policies: Slurm is not asked
}

TEST_F(PolicyStepTest, NoSealFailsTheJobClosed) {
    configure("", base_ / "no-munged.sock");
    const std::string line = start(checkpoint_request());
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: cannot open checkpoint 4242:eval: "));
    EXPECT_THAT(line, HasSubstr("no-munged.sock"));
    EXPECT_TRUE(spool_is_empty());  // never opened unsealed
}

TEST_F(PolicyStepTest, APolicyThatDoesNotMatchLeavesTheOwnerInCharge) {
    job_in("debug");
    EXPECT_EQ(start(checkpoint_request()), "");
    EXPECT_FALSE(load("4242:eval").spec.delegated());
    job_in("prod", "4243");
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4243, batch_step_id, 0, 0}));
    EXPECT_EQ(start(checkpoint_request("train")), "");  // the checkpoint's name does not match
    EXPECT_FALSE(load("4243:train").spec.delegated());
}

// The job's own reviewers are a requirement of their own: never merged into the
// policy's, whose quorum only its own reviewers can meet.
TEST_F(PolicyStepTest, TheJobsOwnReviewersAddARequirement) {
    job_in("prod");
    Request req = checkpoint_request();
    req.set(Opt::Reviewers, "daemon");
    EXPECT_EQ(start(req), "");
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.spec.reviewers, (std::vector<std::string>{"daemon"}));
    EXPECT_EQ(c.spec.quorum, 1u);
    EXPECT_EQ(c.spec.required, (std::vector<CheckpointSpec::Requirement>{{{"@safety"}, 2, conf_ + ":6"}}));
    EXPECT_FALSE(c.spec.owner_may_decide);
}

TEST_F(PolicyStepTest, AnArrayTaskIsMatchedAsItself) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{5000, batch_step_id, 4990, 7}));
    job_in("prod", "4990_7");
    EXPECT_EQ(start(checkpoint_request()), "");
    EXPECT_TRUE(load("4990_7:eval").spec.delegated());
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{squeue_call("4990_7")}));
}

TEST_F(PolicyStepTest, NoPoliciesAsksSlurmNothing) {
    configure("");
    EXPECT_EQ(start(checkpoint_request()), "");
    EXPECT_FALSE(load("4242:eval").spec.delegated());
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(PolicyStepTest, SlurmNotAnsweringFailsTheJobClosed) {
    fake_.fail("squeue.4242", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n");
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    StepSide side(conf_, helper_);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    EXPECT_NO_THROW(side.user_init(host_, checkpoint_request()));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_EQ(line, "hawf: cannot open checkpoint 4242:eval: cannot ask Slurm for the partition, account and QOS the "
                    "site policies match on: squeue --jobs=4242: slurm_load_jobs error: Unable to contact slurm "
                    "controller (connect failure)");
    EXPECT_TRUE(spool_is_empty());  // never opened in owner mode
    side.task_exit(host_);
    EXPECT_NO_THROW(side.exit(host_));
}

TEST_F(PolicyStepTest, AJobSlurmDoesNotKnowFailsClosed) {
    EXPECT_EQ(start(checkpoint_request()),  // the fake squeue: "Invalid job id specified"
              "hawf: cannot open checkpoint 4242:eval: Slurm does not know job 4242: cannot match the site policies");
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(PolicyStepTest, MorePoliciesThanASpecHoldsFailClosed) {
    std::string policies = "policies:\n";
    for (int i = 0; i <= 16; ++i) policies += "  - reviewers: [\"@safety\"]\n";
    configure(policies);
    job_in("prod");
    EXPECT_EQ(start(checkpoint_request()),
              "hawf: cannot open checkpoint 4242:eval: 17 site policies apply to 4242:eval: at most 16");
    EXPECT_TRUE(spool_is_empty());
}

TEST_F(PolicyStepTest, ReviewersSlurmstepdCannotAcceptFailTheJobClosed) {
    configure("");
    Request req;
    req.collect(Opt::Checkpoint, "eval");
    req.collect(Opt::Reviewers, "@no-such-group-hawf");
    EXPECT_EQ(start(req), "hawf: cannot open checkpoint 4242:eval: --hawf-reviewers: unknown reviewer "
                          "\"@no-such-group-hawf\": no such group here");
    EXPECT_TRUE(spool_is_empty());
}

// ================================================================ step side with follow-ups (root only)

// A fake sbatch/scontrol/scancel, found through the job's PATH (sbatch runs with the
// job's environment) and through this process's PATH (Slurm() elsewhere).
class FollowUpStepTest : public StepSideTest {
protected:
    void SetUp() override {
        StepSideTest::SetUp();
        if (IsSkipped()) return;
        submit_dir_ = base_ / "submit";
        ASSERT_EQ(mkdir(submit_dir_.c_str(), 0755), 0);
        ON_CALL(host_, getenv("SLURM_SUBMIT_DIR")).WillByDefault(Return(submit_dir_));
        ON_CALL(host_, job_env()).WillByDefault(Return(std::vector<std::string>{
            "PATH=" + fake_.bindir() + ":/usr/bin:/bin",
            "HOME=/nonexistent",
            "FOO=bar baz",
            "EMPTY=",
            "SLURM_JOB_ID=4242",
            "SLURM_JOBID=4242",
            "SLURM_SUBMIT_DIR=" + submit_dir_,
            "SLURM_CONF=/etc/slurm/slurm.conf",
            "SLURMD_NODENAME=node1",
            "HAWF_CHECKPOINT=4242:other",
            "HAWF_STEP_CHECKPOINT=eval",
        }));
        snapshot_ = take_snapshot("next.sbatch", "#!/bin/sh\necho snapshot\n");
        ASSERT_FALSE(HasFailure());
        ON_CALL(host_, getenv(then_script_env)).WillByDefault(Return(snapshot_));
    }

    // What the submit side does as the job user: copies CONTENT as NAME into the
    // spool; returns the reference the job's environment carries.
    std::string take_snapshot(const std::string& name, const std::string& content) const {
        const Outcome out =
            fakes::as_user(user_, [&] { return Spool(spool_root_).save_script(nobody, name, content); });
        EXPECT_TRUE(out.ok) << out.text;
        return out.text;
    }
    std::string snapshot_path(const std::string& ref) const {
        return spool_root_ + "/" + std::to_string(nobody) + "/scripts/" + ref;
    }

    CheckpointSpec spec() const {
        CheckpointSpec s;
        s.id = parse_checkpoint_id("4242:eval");
        s.owner_uid = nobody;
        s.owner = user_name(nobody);
        s.scope = Scope::Job;
        s.options = {"approve", "reject"};
        s.params = parse_param_specs("lr:float,note:string");
        return s;
    }
    // As the job user: checkpoint 4242:eval pending with follow-up JOB (for ON),
    // decided with DECISION if given.
    void prepare(const std::string& job, std::vector<std::string> on, const std::optional<Decision>& decision) {
        const int rc = test::run_as(nobody, nogroup, [&] {
            const Spool spool(spool_root_);
            const Actor actor{user_name(nobody), nobody, Via::Cli, "login1"};
            add_followup(spool, FollowUp{spec().id, nobody, job, "/w/next.sbatch", on}, actor);
            open_checkpoint(spool, spec(), actor);
            end_checkpoint(spool, nobody, spec().id, 0, actor);
            if (decision) decide(spool, nobody, spec().id, *decision, DecideMode::Decide, actor, Limits());
            return 0;
        });
        ASSERT_EQ(rc, 0);
    }
    static Request after_request() {
        Request r;
        r.set(Opt::After, "4242:eval");
        return r;
    }
    // Runs a follow-up job's batch step (job 4243 unless given) and returns task_init's result.
    int start(std::uint32_t job = 4243) {
        ON_CALL(host_, step()).WillByDefault(Return(StepIds{job, batch_step_id, 0, 0}));
        StepSide side(conf_, helper_);
        side.user_init(host_, after_request());
        const int rc = side.task_init(host_);
        side.task_exit(host_);
        side.exit(host_);
        return rc;
    }
    // Starts follow-up 4243, which must not run: its one "hawf:" line.
    std::string refused_line() {
        EXPECT_CALL(host_, setenv(_, _)).Times(0);
        std::string line;
        EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
        EXPECT_EQ(start(), -1);
        EXPECT_TRUE(one_line(line)) << line;
        return line;
    }
    static Request then_request(const char* then, const char* timeout = nullptr) {
        Request r;
        r.set(Opt::Checkpoint, "eval");
        r.set(Opt::Then, then);
        if (timeout) {
            r.set(Opt::Timeout, timeout);
            r.set(Opt::Default, "reject");
        }
        return r;
    }
    std::string delivered(const std::string& job) const {
        return spool_root_ + "/" + std::to_string(nobody) + "/ckpt/4242/eval/delivered/" + job + ".json";
    }

    test::FakeSlurm fake_;
    test::PathPrepend path_{fake_.bindir()};
    std::string submit_dir_;
    std::string snapshot_;  // HAWF_THEN_SCRIPT of the job
};

TEST_F(FollowUpStepTest, DeliversTheDecision) {
    const std::string note = "say \"hi\"\n'x' $(id)";
    prepare("4243", {}, Decision{"approve", {{"lr", "0.1"}, {"note", note}}, "go on\nreally"});
    const std::string dir = Spool(spool_root_).files_dir(nobody, spec().id);
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    EXPECT_CALL(host_, setenv("HAWF_AFTER", "4242:eval")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_AFTER_DIR", dir)).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_DECISION", "approve")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_DECIDED_BY", user_name(nobody))).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_COMMENT", "go on\nreally")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_PARAM_LR", "0.1")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_PARAM_NOTE", note)).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_DECISION_FILE", delivered("4243"))).Times(1);
    // Apptainer's copies of the eight, and the directory and file bound read-only.
    EXPECT_CALL(host_, setenv(StartsWith("APPTAINERENV_HAWF_"), _)).Times(7);  // and the next one
    EXPECT_CALL(host_, setenv(StartsWith("SINGULARITYENV_HAWF_"), _)).Times(8);
    EXPECT_CALL(host_, setenv("APPTAINERENV_HAWF_PARAM_NOTE", note)).Times(1);
    const std::string binds = dir + ":" + dir + ":ro," + delivered("4243") + ":" + delivered("4243") + ":ro";
    EXPECT_CALL(host_, setenv("APPTAINER_BINDPATH", binds)).Times(1);
    EXPECT_CALL(host_, setenv("SINGULARITY_BINDPATH", binds)).Times(1);
    EXPECT_CALL(host_, error(_)).Times(0);
    EXPECT_EQ(start(), 0);

    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Applied);
    EXPECT_EQ(c.history.back().job, "4243");
    EXPECT_EQ(c.history.back().by_uid, nobody);
    struct stat st;
    ASSERT_EQ(stat(delivered("4243").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, nobody);
    EXPECT_EQ(nlohmann::json::parse(test::read_text(delivered("4243")))["params"]["note"], note);
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpStepTest, NotRegisteredFailsTheJob) {
    prepare("4243", {}, Decision{"approve", {}, ""});
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    EXPECT_EQ(start(4299), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("job 4299 is not a follow-up of 4242:eval"));
    EXPECT_EQ(load("4242:eval").state, State::Decided);
}

TEST_F(FollowUpStepTest, WrongBranchFailsTheJob) {
    prepare("4243", {"reject"}, Decision{"approve", {}, ""});
    const std::string line = refused_line();
    EXPECT_THAT(line, StartsWith("hawf: "));
    EXPECT_THAT(line, HasSubstr("decided \"approve\""));
    EXPECT_THAT(line, HasSubstr("runs only for reject"));
    EXPECT_EQ(load("4242:eval").state, State::Decided);
    struct stat st;
    EXPECT_NE(stat(delivered("4243").c_str(), &st), 0);
}

TEST_F(FollowUpStepTest, UndecidedGoesBackToHeldAndItsScriptDoesNotRun) {
    prepare("4243", {}, std::nullopt);
    const std::string line = refused_line();
    EXPECT_THAT(line, StartsWith("hawf: 4242:eval is pending, not decided: job 4243 went back to held waiting for 4242:eval"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "requeuehold", "4243"}}));
    EXPECT_EQ(load("4242:eval").state, State::Pending);
}

TEST_F(FollowUpStepTest, ConfigErrorGoesBackToHeld) {
    prepare("4243", {}, Decision{"approve", {}, ""});
    write_text(conf_, "spool: [\n", 0644);  // being edited, say
    const std::string line = refused_line();
    EXPECT_THAT(line, StartsWith("hawf: cannot read the config: "));
    EXPECT_THAT(line, EndsWith(": job 4243 went back to held waiting for 4242:eval"));
    EXPECT_EQ(fake_.calls(), (std::vector<Argv>{{"scontrol", "requeuehold", "4243"}}));
    EXPECT_EQ(load("4242:eval").state, State::Decided);  // not applied: it has not run
}

TEST_F(FollowUpStepTest, AfterOnAnSrunStepDoesNothing) {
    prepare("4243", {}, Decision{"approve", {}, ""});
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4243, 0, 0, 0}));
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    EXPECT_CALL(host_, error(_)).Times(0);
    EXPECT_CALL(host_, user()).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, after_request());
    EXPECT_EQ(side.task_init(host_), 0);
    side.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Decided);
}

TEST_F(FollowUpStepTest, ThenSubmitsAHeldFollowUpOnNodeZero) {
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch:approve"));
    EXPECT_EQ(side.task_init(host_), 0);

    // sbatch reads the copy taken at submission; the follow-up records the script as given.
    const std::string script = submit_dir_ + "/next.sbatch";
    EXPECT_EQ(fake_.calls(), (std::vector<std::vector<std::string>>{
                                 {"sbatch", "--parsable", "--hold", "--dependency=afterok:4242",
                                  "--kill-on-invalid-dep=yes", "--requeue", "--hawf-after=4242:eval",
                                  "--comment=hawf: waiting for 4242:eval", snapshot_path(snapshot_)}}));
    EXPECT_EQ(fake_.sbatch_cwd(), submit_dir_);
    const std::vector<std::string> env = fake_.sbatch_env();
    for (const char* kept : {"FOO=bar baz", "EMPTY=", "HOME=/nonexistent", "SLURM_CONF=/etc/slurm/slurm.conf",
                             "SLURMD_NODENAME=node1"})
        EXPECT_THAT(env, ::testing::Contains(std::string(kept)));
    for (const auto& entry : env) {
        EXPECT_FALSE(entry.rfind("SLURM_", 0) == 0 && entry.rfind("SLURM_CONF=", 0) != 0) << entry;
        EXPECT_THAT(entry, ::testing::Not(StartsWith("HAWF_")));
    }

    Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Running);
    ASSERT_EQ(c.followups.size(), 1u);
    EXPECT_EQ(c.followups[0].job, "123");
    EXPECT_EQ(c.followups[0].script, script);
    EXPECT_EQ(c.followups[0].on, (std::vector<std::string>{"approve"}));
    EXPECT_EQ(c.followups[0].owner_uid, nobody);
    EXPECT_EQ(c.history.back().type, EventType::FollowUpAdded);
    EXPECT_EQ(c.history.back().by_uid, nobody);

    // The job is requeued (its tasks killed): the follow-up is left to Slurm (afterok
    // keeps it for the requeued job), the checkpoint reopened, nothing submitted again.
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(SIGTERM));
    side.task_exit(host_);
    side.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Failed);
    EXPECT_EQ(fake_.calls().size(), 1u);
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(0));
    StepSide rerun(conf_, helper_);
    rerun.user_init(host_, then_request("next.sbatch:approve"));
    EXPECT_EQ(rerun.task_init(host_), 0);
    EXPECT_EQ(fake_.calls().size(), 1u);
    c = load("4242:eval");
    EXPECT_EQ(c.state, State::Running);
    EXPECT_EQ(c.followups.size(), 1u);
    rerun.task_exit(host_);
    rerun.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Pending);
    EXPECT_EQ(fake_.calls().size(), 1u);  // no timeout: nothing to schedule
}

TEST_F(FollowUpStepTest, AbsoluteThenScriptIsRecordedAsGiven) {
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("/opt/jobs/next.sbatch"));
    EXPECT_EQ(side.task_init(host_), 0);
    const auto calls = fake_.calls();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].back(), snapshot_path(snapshot_));
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.followups[0].script, "/opt/jobs/next.sbatch");
    EXPECT_TRUE(c.followups[0].on.empty());
}

TEST_F(FollowUpStepTest, OtherNodesDoNotSubmit) {
    ON_CALL(host_, node_id()).WillByDefault(Return(1u));
    ON_CALL(host_, node_count()).WillByDefault(Return(2u));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, job_env()).Times(0);
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch:approve"));
    EXPECT_EQ(side.task_init(host_), 0);
    EXPECT_TRUE(fake_.calls().empty());
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Running);
    EXPECT_TRUE(c.followups.empty());
}

// A Host for the submit side run as the job user in a forked child, where gmock
// expectations do not reach: it keeps what is set and shown.
class RecordingHost : public Host {
public:
    explicit RecordingHost(Client client) : client_(client) {}
    Where where() const override { return Where::Submit; }
    Client client() const override { return client_; }
    StepIds step() const override { return {}; }
    std::uint32_t node_id() const override { return 0; }
    std::uint32_t node_count() const override { return 0; }
    JobUser user() const override { return {}; }
    int task_exit_status() const override { return 0; }
    std::vector<std::string> job_env() const override { return {}; }
    std::optional<std::string> getenv(const std::string& name) const override {
        const auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    void setenv(const std::string& name, const std::string& value) override { env[name] = value; }
    void error(const std::string& line) override { errors.push_back(line); }
    std::uint32_t slurm_version() const override { return 0x160508; }
    std::optional<std::string> oci_config() const override { return std::nullopt; }

    std::map<std::string, std::string> env;
    std::vector<std::string> errors;

private:
    Client client_;
};

// sbatch --hawf-then=next.sbatch in the submit directory, as the user; the script is
// then replaced before the job starts: the follow-up is the script as submitted.
TEST_F(FollowUpStepTest, FollowUpRunsTheScriptAsItWasAtSubmission) {
    const std::string original = "#!/bin/sh\necho as submitted\n";
    write_text(submit_dir_ + "/next.sbatch", original, 0644);
    const Outcome submitted = fakes::as_user(user_, [&] {
        if (chdir(submit_dir_.c_str()) != 0) throw std::runtime_error("chdir");
        RecordingHost sbatch(Client::Sbatch);
        const int rc = submit_post_opt(sbatch, then_request("next.sbatch:approve"), conf_);
        return nlohmann::json{{"rc", rc}, {"env", sbatch.env}, {"errors", sbatch.errors}}.dump();
    });
    ASSERT_TRUE(submitted.ok) << submitted.text;
    const nlohmann::json answer = nlohmann::json::parse(submitted.text);
    ASSERT_EQ(answer["rc"], 0) << answer.dump();
    EXPECT_TRUE(answer["errors"].empty());
    ASSERT_EQ(answer["env"].size(), 1u) << answer.dump();  // no step marker for sbatch
    const std::string ref = answer["env"][then_script_env];

    write_text(submit_dir_ + "/next.sbatch", "#!/bin/sh\necho planted later\n", 0644);
    ON_CALL(host_, getenv(then_script_env)).WillByDefault(Return(ref));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch:approve"));
    EXPECT_EQ(side.task_init(host_), 0);

    const auto calls = fake_.calls();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].back(), snapshot_path(ref));
    EXPECT_EQ(test::read_text(calls[0].back()), original);
    EXPECT_EQ(fake_.sbatch_cwd(), submit_dir_);  // still runs in the submit directory
    const Checkpoint c = load("4242:eval");
    ASSERT_EQ(c.followups.size(), 1u);
    EXPECT_EQ(c.followups[0].script, submit_dir_ + "/next.sbatch");
}

// Fail closed: without the copy the plugin does not fall back to the submit directory.
TEST_F(FollowUpStepTest, MissingSnapshotFailsTheJobWithOneLine) {
    write_text(submit_dir_ + "/next.sbatch", "#!/bin/sh\n", 0644);
    for (const std::optional<std::string>& missing : {std::optional<std::string>(), std::optional<std::string>("")}) {
        ON_CALL(host_, getenv(then_script_env)).WillByDefault(Return(missing));
        EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
        std::string line;
        EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
        StepSide side(conf_, helper_);
        side.user_init(host_, then_request("next.sbatch"));
        EXPECT_EQ(side.task_init(host_), -1);
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, StartsWith("hawf: cannot submit the --hawf-then follow-up: the copy of \"next.sbatch\" "
                                     "taken at submission did not reach this job"));
        EXPECT_THAT(line, HasSubstr("HAWF_THEN_SCRIPT"));
        EXPECT_THAT(line, HasSubstr("--export"));
        EXPECT_TRUE(fake_.calls().empty());
        side.exit(host_);
        EXPECT_EQ(load("4242:eval").state, State::Failed);
        testing::Mock::VerifyAndClearExpectations(&host_);
    }
}

TEST_F(FollowUpStepTest, SnapshotReferenceOutsideTheSnapshotsIsRefused) {
    // A copy the user could point at: only "<token>/<name>" under scripts/ is accepted.
    write_text(base_ / "elsewhere.sbatch", "#!/bin/sh\n", 0644);
    const std::string token = snapshot_.substr(0, 32);
    const std::string refs[] = {"../../../elsewhere.sbatch", token + "/../../../../elsewhere.sbatch",
                                base_ / "elsewhere.sbatch", token + "/..", token,
                                token + "/next.sbatch/../../" + token + "/next.sbatch"};
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    for (const auto& ref : refs) {
        ON_CALL(host_, getenv(then_script_env)).WillByDefault(Return(ref));
        std::string line;
        EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
        StepSide side(conf_, helper_);
        side.user_init(host_, then_request("next.sbatch"));
        EXPECT_EQ(side.task_init(host_), -1) << ref;
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, StartsWith("hawf: cannot submit the --hawf-then follow-up: invalid script snapshot "));
        EXPECT_THAT(line, HasSubstr("32 lowercase hex digits"));
        testing::Mock::VerifyAndClearExpectations(&host_);
    }
    EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(FollowUpStepTest, SnapshotThatIsNotTheUsersOwnFileIsRefused) {
    const std::string user_tree = spool_root_ + "/" + std::to_string(nobody);
    write_text(base_ / "target.sbatch", "#!/bin/sh\n", 0644);
    const std::string linked = take_snapshot("linked.sbatch", "#!/bin/sh\n");
    const std::string linked_dir = take_snapshot("next.sbatch", "#!/bin/sh\n");
    const std::string foreign = take_snapshot("foreign.sbatch", "#!/bin/sh\n");
    const Outcome planted = fakes::as_user(user_, [&] {
        // The user's own tree, so only the user (or root) can do this.
        const std::string file = snapshot_path(linked);
        if (unlink(file.c_str()) != 0 || symlink((base_ / "target.sbatch").c_str(), file.c_str()) != 0)
            throw std::runtime_error("cannot plant the symlink");
        const std::string dir = snapshot_path(linked_dir.substr(0, 32));
        if (unlink((dir + "/next.sbatch").c_str()) != 0 || rmdir(dir.c_str()) != 0 ||
            symlink(snapshot_path(snapshot_.substr(0, 32)).c_str(), dir.c_str()) != 0)
            throw std::runtime_error("cannot plant the directory symlink");
        return std::string();
    });
    ASSERT_TRUE(planted.ok) << planted.text;
    ASSERT_EQ(chown(snapshot_path(foreign).c_str(), 0, 0), 0);
    const std::pair<std::string, std::string> cases[] = {
        {linked, "is a symbolic link"},
        {linked_dir, "is a symbolic link"},
        {foreign, "owned by uid 0"},
    };
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    for (const auto& [ref, why] : cases) {
        ON_CALL(host_, getenv(then_script_env)).WillByDefault(Return(ref));
        std::string line;
        EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
        StepSide side(conf_, helper_);
        side.user_init(host_, then_request("next.sbatch"));
        EXPECT_EQ(side.task_init(host_), -1) << ref;
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, StartsWith("hawf: cannot submit the --hawf-then follow-up: refusing " + user_tree +
                                     "/scripts/"));
        EXPECT_THAT(line, HasSubstr(why));
        testing::Mock::VerifyAndClearExpectations(&host_);
    }
    EXPECT_TRUE(fake_.calls().empty());
}

// The step fails (its tasks never start) and still ends its checkpoint.
TEST_F(FollowUpStepTest, RefusedSubmissionFailsTheStepAndEndsTheCheckpoint) {
    fake_.fail("sbatch", "sbatch: error: Batch job submission failed: Invalid account or account/partition combination\n");
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, task_exit_status()).Times(0);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch"));
    EXPECT_EQ(side.task_init(host_), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: cannot submit the --hawf-then follow-up: sbatch " + snapshot_path(snapshot_) +
                                 ": sbatch: error: Batch job submission failed: Invalid account"));
    EXPECT_EQ(load("4242:eval").state, State::Running);
    EXPECT_TRUE(load("4242:eval").followups.empty());
    side.exit(host_);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_EQ(c.history.back().exit_status, 1 << 8);
}

TEST_F(FollowUpStepTest, FailedSrunStepCancelsItsFollowUps) {
    ON_CALL(host_, step()).WillByDefault(Return(StepIds{4242, 3, 0, 0}));
    ON_CALL(host_, getenv(step_marker_env)).WillByDefault(Return(std::string("eval")));
    ON_CALL(host_, task_exit_status()).WillByDefault(Return(1 << 8));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch"));
    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    const Checkpoint c = load("4242:eval");
    EXPECT_EQ(c.spec.scope, Scope::Step);
    EXPECT_EQ(c.state, State::Failed);
    const auto calls = fake_.calls();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0][0], "sbatch");
    EXPECT_EQ(calls[1], (std::vector<std::string>{"scancel", "123"}));
}

TEST_F(FollowUpStepTest, TimeoutSchedulesTheFollowUpWhenTheStepEnds) {
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, error(_)).Times(0);
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch:approve", "1h"));
    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    const Checkpoint c = load("4242:eval");
    ASSERT_EQ(c.state, State::Pending);
    const std::string at = format_local_time(c.deadline());
    const auto calls = fake_.calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0][0], "sbatch");
    EXPECT_EQ(calls[1], (std::vector<std::string>{"scontrol", "update", "JobId=123", "StartTime=" + at}));
    EXPECT_EQ(calls[2], (std::vector<std::string>{"scontrol", "release", "123"}));
}

TEST_F(FollowUpStepTest, RefusedSchedulingIsReported) {
    fake_.fail("update.123", "scontrol: error: Access/permission denied\n");
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    StepSide side(conf_, helper_);
    side.user_init(host_, then_request("next.sbatch", "1h"));
    EXPECT_EQ(side.task_init(host_), 0);
    side.task_exit(host_);
    side.exit(host_);
    EXPECT_EQ(load("4242:eval").state, State::Pending);  // ended all the same
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: cannot end checkpoint 4242:eval: "));
    EXPECT_THAT(line, HasSubstr("follow-up 123"));
    EXPECT_THAT(line, HasSubstr("Access/permission denied"));
}

// ================================================================ delegated delivery (root, munged)

// A follow-up of a delegated checkpoint starts only on hawfd's sealed decision, checked
// with the munged hawf.yaml names (hawfd.munge_socket): a private one here, whose key
// no other munged shares.
class DelegatedDeliveryTest : public FollowUpStepTest {
protected:
    void SetUp() override {
        FollowUpStepTest::SetUp();
        if (IsSkipped()) return;
        const std::string program = test::find_munged();
        if (program.empty()) GTEST_SKIP() << "munged is not installed";
        munged_ = std::make_unique<test::Munged>(program);
        write_text(conf_, "spool: " + spool_root_ + "\nhawfd:\n  address: svc1:7477\n  munge_socket: " +
                              munged_->socket() + "\n", 0644);
    }
    // 4242:eval delegated to root, follow-up 4243, root's approval, and the decision
    // recorded as hawfd does with SEALER's credential over it (root: hawfd's own).
    void prepare_delegated(const JobUser& sealer) {
        CheckpointSpec delegated = spec();
        delegated.reviewers = {"root"};
        delegated.seal = munge_encode(spec_seal_payload(delegated), munged_->socket());  // as the plugin's child
        const Actor reviewer{"root", 0, Via::Hawfd, "svc1"};
        const Spool spool(spool_root_);
        const Decision decision{"approve", {{"lr", "0.1"}}, ""};
        const std::string credential = munge_encode(decide_request(delegated.id, decision).dump(), munged_->socket());
        const Outcome opened = fakes::as_user(user_, [&] {
            const Actor owner{user_name(nobody), nobody, Via::Cli, "login1"};
            add_followup(spool, FollowUp{delegated.id, nobody, "4243", "/w/next.sbatch", {}}, owner);
            open_checkpoint(spool, delegated, owner);
            end_checkpoint(spool, nobody, delegated.id, 0, owner);
            approve(spool, nobody, delegated.id, decision, reviewer, credential, Limits());
            return std::string();
        });
        ASSERT_TRUE(opened.ok) << opened.text;
        const Checkpoint ckpt = load("4242:eval");
        const std::optional<Quorum> quorum = reached_quorum(ckpt);
        ASSERT_TRUE(quorum);
        Event decided;
        decided.type = EventType::Decided;
        decided.via = Via::Hawfd;
        decided.by = reviewer.user;
        decided.by_uid = reviewer.uid;
        decided.decision = quorum->decision;
        decided.approvals = quorum->approvals;
        const std::string payload = decision_seal_payload(ckpt, decided), socket = munged_->socket();
        const Outcome seal = fakes::as_user(sealer, [&] { return munge_encode(payload, socket); });
        ASSERT_TRUE(seal.ok) << seal.text;
        const Outcome recorded = fakes::as_user(user_, [&] {
            record_quorum(spool, nobody, delegated.id, *quorum, seal.text, reviewer);
            return std::string();
        });
        ASSERT_TRUE(recorded.ok) << recorded.text;
        ASSERT_EQ(load("4242:eval").state, State::Decided);
    }

    // 4242:eval in owner mode with SEAL on its spec, follow-up 4243, decided approve by
    // its owner: what an owner who rewrote a delegated spec into owner mode can make.
    void prepare_owner_mode(const std::string& seal) {
        CheckpointSpec owned = spec();
        owned.seal = seal;
        const Outcome done = fakes::as_user(user_, [&] {
            const Spool spool(spool_root_);
            const Actor owner{user_name(nobody), nobody, Via::Cli, "login1"};
            add_followup(spool, FollowUp{owned.id, nobody, "4243", "/w/next.sbatch", {}}, owner);
            open_checkpoint(spool, owned, owner);
            end_checkpoint(spool, nobody, owned.id, 0, owner);
            decide(spool, nobody, owned.id, Decision{"approve", {}, ""}, DecideMode::Decide, owner, Limits());
            return std::string();
        });
        ASSERT_TRUE(done.ok) << done.text;
    }
    // Starts follow-up 4243 and expects it refused with one line starting with PREFIX.
    void expect_refused(const std::string& prefix) {
        EXPECT_CALL(host_, setenv(_, _)).Times(0);
        std::string line;
        EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
        EXPECT_EQ(start(), -1);  // its script never runs
        EXPECT_TRUE(one_line(line)) << line;
        EXPECT_THAT(line, StartsWith(prefix));
        EXPECT_EQ(load("4242:eval").state, State::Decided);  // not applied
        struct stat st;
        EXPECT_NE(stat(delivered("4243").c_str(), &st), 0);
    }

    std::unique_ptr<test::Munged> munged_;
};

TEST_F(DelegatedDeliveryTest, AnOwnerModeSpecSealedByRootIsDelivered) {
    CheckpointSpec owned = spec();
    ASSERT_NO_FATAL_FAILURE(prepare_owner_mode(munge_encode(spec_seal_payload(owned), munged_->socket())));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_DECISION", "approve")).Times(1);
    EXPECT_CALL(host_, error(_)).Times(0);
    EXPECT_EQ(start(), 0);
    EXPECT_EQ(load("4242:eval").state, State::Applied);
}

// The gap this closes: the owner rewrites the delegated spec without its reviewers,
// decides in owner mode and releases the follow-up. With hawfd configured it fails.
TEST_F(DelegatedDeliveryTest, ASpecRewrittenWithoutItsSealFailsTheFollowUp) {
    ASSERT_NO_FATAL_FAILURE(prepare_owner_mode(""));
    expect_refused("hawf: the checkpoint 4242:eval was not opened by hawf (its spec is not sealed): it has no seal");
}

TEST_F(DelegatedDeliveryTest, ASpecRewrittenKeepingItsSealFailsTheFollowUp) {
    CheckpointSpec delegated = spec();
    delegated.reviewers = {"root"};
    ASSERT_NO_FATAL_FAILURE(prepare_owner_mode(munge_encode(spec_seal_payload(delegated), munged_->socket())));
    expect_refused("hawf: the checkpoint 4242:eval was not opened by hawf (its spec is not sealed): the seal is for "
                   "another spec");
}

TEST_F(DelegatedDeliveryTest, ASpecSealedByTheOwnerFailsTheFollowUp) {
    const std::string payload = spec_seal_payload(spec()), socket = munged_->socket();
    const Outcome own = fakes::as_user(user_, [&] { return munge_encode(payload, socket); });
    ASSERT_TRUE(own.ok) << own.text;
    ASSERT_NO_FATAL_FAILURE(prepare_owner_mode(own.text));
    expect_refused("hawf: the checkpoint 4242:eval was not opened by hawf (its spec is not sealed): sealed by ");
}

TEST_F(DelegatedDeliveryTest, HawfdsSealedDecisionIsDelivered) {
    ASSERT_NO_FATAL_FAILURE(prepare_delegated(JobUser{0, 0, {0}}));
    EXPECT_CALL(host_, setenv(_, _)).Times(AnyNumber());
    EXPECT_CALL(host_, setenv("HAWF_DECISION", "approve")).Times(1);
    EXPECT_CALL(host_, setenv("HAWF_PARAM_LR", "0.1")).Times(1);
    EXPECT_CALL(host_, error(_)).Times(0);
    EXPECT_EQ(start(), 0);
    EXPECT_EQ(load("4242:eval").state, State::Applied);
}

TEST_F(DelegatedDeliveryTest, ADecisionNotSealedByHawfdFailsTheFollowUp) {
    ASSERT_NO_FATAL_FAILURE(prepare_delegated(user_));  // the owner's own credential: what a forger could make
    EXPECT_CALL(host_, setenv(_, _)).Times(0);
    std::string line;
    EXPECT_CALL(host_, error(_)).WillOnce(SaveArg<0>(&line));
    EXPECT_EQ(start(), -1);  // its script never runs
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: the decision at 4242:eval is not one its reviewers made through hawfd: "));
    EXPECT_EQ(load("4242:eval").state, State::Decided);  // not applied
    struct stat st;
    EXPECT_NE(stat(delivered("4243").c_str(), &st), 0);
}

}  // namespace
}  // namespace hawf::plugin
