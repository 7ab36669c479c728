// plugin/request.cpp: the option table, what each --hawf-* value sets, and the spec a request makes.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config.hpp"
#include "error.hpp"
#include "helpers.hpp"
#include "plugin_fakes.hpp"
#include "request.hpp"
#include "submit_side.hpp"

namespace hawf::plugin {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::SaveArg;
using ::testing::StartsWith;
using ::testing::StrictMock;
using fakes::MockHost;
using fakes::NotifyTest;
using fakes::ReviewersTest;
using fakes::SubmitTest;
using fakes::one_line;

// ================================================================ the option table

TEST_F(SubmitTest, OptionTableNamesAllOptions) {
    std::vector<std::string> names;
    for (const auto& o : hawf_options) names.push_back(o.name);
    EXPECT_EQ(names, (std::vector<std::string>{"hawf-checkpoint", "hawf-options", "hawf-params", "hawf-timeout",
                                               "hawf-default", "hawf-then", "hawf-reviewers", "hawf-quorum",
                                               "hawf-notify", "hawf-after"}));
}

// ================================================================ the spec of a request

TEST_F(NotifyTest, TheChannelsGoIntoTheSpec) {
    const Request r = request({{Opt::Checkpoint, "eval"}, {Opt::Notify, "ml-team"}});
    const Config config = load_config(conf_);
    EXPECT_EQ(r.spec({"42", "eval"}, 1000, "alice", Scope::Job, config).notify, (std::vector<std::string>{"ml-team"}));
    EXPECT_TRUE(request({{Opt::Checkpoint, "eval"}}).spec({"42", "eval"}, 1000, "alice", Scope::Job, config).notify.empty());
}

TEST_F(ReviewersTest, TheSpecNamesTheReviewers) {
    const Config config = load_config(conf_);
    const CheckpointId id = parse_checkpoint_id("4242:deploy");
    const CheckpointSpec delegated =
        request({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "daemon,@root,root"}, {Opt::Quorum, "2"}})
            .spec(id, 0, "root", Scope::Job, config);
    EXPECT_TRUE(delegated.delegated());
    EXPECT_EQ(delegated.reviewers, (std::vector<std::string>{"daemon", "@root", "root"}));  // as given
    EXPECT_EQ(delegated.quorum, 2u);
    EXPECT_TRUE(delegated.owner_may_decide);  // only a site policy takes it away
    const CheckpointSpec one =
        request({{Opt::Checkpoint, "deploy"}, {Opt::Reviewers, "daemon"}}).spec(id, 0, "root", Scope::Job, config);
    EXPECT_EQ(one.reviewers, (std::vector<std::string>{"daemon"}));
    EXPECT_EQ(one.quorum, 1u);  // the default
    const CheckpointSpec owner = request({{Opt::Checkpoint, "deploy"}}).spec(id, 0, "root", Scope::Job, config);
    EXPECT_FALSE(owner.delegated());
    EXPECT_EQ(owner.quorum, 1u);
}

// slurmstepd only collects the values; one it cannot accept fails the job there
// (closed) instead of leaving the checkpoint to its owner.
TEST_F(ReviewersTest, AValueSlurmstepdRefusesFailsTheSpec) {
    const Config config = load_config(conf_);
    Request r;
    r.collect(Opt::Checkpoint, "deploy");
    r.collect(Opt::Reviewers, "@no-such-group-hawf");  // e.g. a group this node does not know
    r.collect(Opt::Quorum, "0");
    EXPECT_EQ(r.checkpoint(), "deploy");
    EXPECT_HAWF_ERROR(r.spec(parse_checkpoint_id("4242:deploy"), 0, "root", Scope::Job, config), ErrorKind::Usage,
                      "--hawf-reviewers: unknown reviewer \"@no-such-group-hawf\": no such group here");
    Request fine;
    fine.collect(Opt::Checkpoint, "deploy");
    fine.collect(Opt::Reviewers, "root");
    EXPECT_EQ(fine.spec(parse_checkpoint_id("4242:deploy"), 0, "root", Scope::Job, config).reviewers,
              (std::vector<std::string>{"root"}));
}

// ================================================================ requests with follow-ups

TEST(RequestFollowUps, SecondDifferentThenIsRefused) {
    Request r;
    r.set(Opt::Then, "next.sbatch:approve");
    EXPECT_NO_THROW(r.set(Opt::Then, "next.sbatch:approve"));  // the same again is harmless
    EXPECT_HAWF_ERROR(r.set(Opt::Then, "other.sbatch"), ErrorKind::Usage, "hawf-await --then");
    EXPECT_HAWF_ERROR(r.set(Opt::Then, "next.sbatch:reject"), ErrorKind::Usage, "--hawf-then: given twice");
    EXPECT_EQ(r.then(), "next.sbatch:approve");

    StrictMock<MockHost> host;
    std::string line;
    EXPECT_CALL(host, error(_)).WillOnce(SaveArg<0>(&line));
    EXPECT_EQ(submit_option(host, r, Opt::Then, "third.sbatch"), -1);
    EXPECT_TRUE(one_line(line)) << line;
    EXPECT_THAT(line, StartsWith("hawf: --hawf-then: "));
    EXPECT_THAT(line, HasSubstr("hawf-await --then"));
}

TEST(RequestFollowUps, AfterNamesACheckpoint) {
    Request r;
    EXPECT_FALSE(r.after());
    r.set(Opt::After, "4242_3:eval");
    ASSERT_TRUE(r.after());
    EXPECT_EQ(r.after()->id, parse_checkpoint_id("4242_3:eval"));
    EXPECT_FALSE(r.after()->each_task);
    EXPECT_TRUE(r.any());
    Request bad;
    EXPECT_HAWF_ERROR(bad.set(Opt::After, "4242"), ErrorKind::Usage, "--hawf-after");
    EXPECT_HAWF_ERROR(bad.set(Opt::After, "4242_3_*:eval"), ErrorKind::Usage, "--hawf-after");
    EXPECT_HAWF_ERROR(bad.set(Opt::After, "4242_[1-3]:eval"), ErrorKind::Usage, "--hawf-after");
    EXPECT_FALSE(bad.any());
}

// A follow-up array's task T waits for task T's checkpoint of the array it follows.
TEST(RequestFollowUps, AfterEachTaskOfAnArray) {
    Request r;
    r.set(Opt::After, "4242_*:eval");
    ASSERT_TRUE(r.after());
    EXPECT_TRUE(r.after()->each_task);
    EXPECT_EQ(r.after()->str(), "4242_*:eval");
    EXPECT_EQ(r.after()->for_task(7), parse_checkpoint_id("4242_7:eval"));
}

}  // namespace
}  // namespace hawf::plugin
