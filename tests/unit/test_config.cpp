// config.hpp: hawf.yaml. Unknown keys and bad values name the file and the line.
#include "config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "error.hpp"
#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::TempDir;
using test::write_text;

class ConfigTest : public ::testing::Test {
protected:
    // Writes TEXT as hawf.yaml and returns its path.
    std::string conf(const std::string& text) {
        const std::string path = dir_ / "hawf.yaml";
        write_text(path, text);
        return path;
    }
    TempDir dir_;
};

TEST_F(ConfigTest, MissingFileGivesDefaults) {
    const std::string path = dir_ / "none.yaml";
    const Config c = load_config(path);
    EXPECT_FALSE(c.found);
    EXPECT_EQ(c.path, path);
    EXPECT_EQ(c.spool, "/var/spool/hawf");
    EXPECT_EQ(c.default_options, (std::vector<std::string>{"approve", "reject"}));
    EXPECT_EQ(c.limits.max_param_bytes, 4096u);
    EXPECT_EQ(c.limits.max_comment_bytes, 65536u);
    EXPECT_EQ(c.limits.max_options, 32u);
    EXPECT_EQ(c.limits.max_params, 32u);
    EXPECT_EQ(c.limits.max_checkpoints, 10000u);
    EXPECT_EQ(c.limits.max_record_bytes, 262144u);
    EXPECT_EQ(c.limits.max_events, 1000u);
    EXPECT_EQ(c.limits.source, path);  // where an admin would set them
    EXPECT_EQ(c.poll_interval_s, 2);
    EXPECT_FALSE(c.hawfd_configured());
    EXPECT_EQ(c.hawfd.listen, "");
    EXPECT_EQ(c.hawfd.state, "/var/lib/hawf");
    EXPECT_EQ(c.hawfd.munge_socket, "");  // libmunge's default
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
    const Config c = load_config(conf(""));
    EXPECT_TRUE(c.found);
    EXPECT_EQ(c.spool, "/var/spool/hawf");
    const Config comments = load_config(conf("# only a comment\n\n"));
    EXPECT_EQ(comments.spool, "/var/spool/hawf");
}

TEST_F(ConfigTest, EveryMistakeCollectedWhenAsked) {
    const std::string path = conf("spool: relative\npoll_interval: 5s\ncolour: blue\npolicies:\n  - reviewers: [root]\n");
    // Thrown: the first; collected: one line each, with what could be read.
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "hawf.yaml:1:");
    std::vector<std::string> errors;
    const Config c = load_config(path, &errors);
    ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
    EXPECT_THAT(errors[0], ::testing::HasSubstr("hawf.yaml:1: bad spool \"relative\""));
    EXPECT_THAT(errors[1], ::testing::HasSubstr("hawf.yaml:3: unknown key \"colour\""));
    EXPECT_THAT(errors[2], ::testing::HasSubstr("hawf.yaml:4: policies need hawfd"));
    EXPECT_EQ(c.poll_interval_s, 5);
    errors.clear();
    load_config(conf("spool: /s\n"), &errors);
    EXPECT_TRUE(errors.empty());
}

TEST_F(ConfigTest, AllKeysParsed) {
    const Config c = load_config(conf("# hawf configuration\n"
                                      "spool: /shared/hawf\n"
                                      "default_options: [go, stop, retry]\n"
                                      "max_param_bytes: 512\n"
                                      "max_comment_bytes: 1000\n"
                                      "poll_interval: 30s\n"));
    EXPECT_TRUE(c.found);
    EXPECT_EQ(c.spool, "/shared/hawf");
    EXPECT_EQ(c.default_options, (std::vector<std::string>{"go", "stop", "retry"}));
    EXPECT_EQ(c.limits.max_param_bytes, 512u);
    EXPECT_EQ(c.limits.max_comment_bytes, 1000u);
    EXPECT_EQ(c.poll_interval_s, 30);
}

// Per-user limits (issue 8, defect 4), in a limits: mapping.
TEST_F(ConfigTest, LimitsParsed) {
    const std::string path = conf("spool: /s\n"
                                  "limits:\n"
                                  "  max_param_bytes: 100\n"
                                  "  max_comment_bytes: 0\n"
                                  "  max_options: 8\n"
                                  "  max_params: 0\n"
                                  "  max_checkpoints: 500\n"
                                  "  max_record_bytes: 100000\n"
                                  "  max_events: 200\n"
                                  "poll_interval: 5s\n");
    const Config c = load_config(path);
    EXPECT_EQ(c.limits.max_param_bytes, 100u);
    EXPECT_EQ(c.limits.max_comment_bytes, 0u);
    EXPECT_EQ(c.limits.max_options, 8u);
    EXPECT_EQ(c.limits.max_params, 0u);
    EXPECT_EQ(c.limits.max_checkpoints, 500u);
    EXPECT_EQ(c.limits.max_record_bytes, 100000u);
    EXPECT_EQ(c.limits.max_events, 200u);
    EXPECT_EQ(c.limits.source, path);  // named when a limit refuses something
    EXPECT_EQ(c.poll_interval_s, 5);
    // Flow style, and the older top-level spelling of the two byte limits.
    const Config flow = load_config(conf("max_param_bytes: 64\nlimits: {max_options: 4, max_events: 1000}\n"));
    EXPECT_EQ(flow.limits.max_param_bytes, 64u);
    EXPECT_EQ(flow.limits.max_options, 4u);
    EXPECT_EQ(flow.limits.max_events, 1000u);
    EXPECT_EQ(flow.limits.max_params, 32u);
}

TEST_F(ConfigTest, LimitsRefuseASpecNamingTheFile) {
    const std::string path = conf("limits:\n  max_options: 4\n  max_params: 1\n");
    const Config c = load_config(path);
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id("42:eval");
    spec.options = parse_choices("a,b,c,d,e");
    EXPECT_HAWF_ERROR(spec.check(c.limits), K::Usage,
                      "--hawf-options: 5 choices, at most 4 (limits.max_options in " + path + ")");
    spec.options = parse_choices("a,b,c,d");
    spec.params = parse_param_specs("lr:float,epochs:int");
    EXPECT_HAWF_ERROR(spec.check(c.limits), K::Usage,
                      "--hawf-params: 2 parameters, at most 1 (limits.max_params in " + path + ")");
}

TEST_F(ConfigTest, LimitsRefusedWithFileAndLine) {
    const std::string path = conf("spool: /s\nlimits:\n  max_options: 8\n  max_choices: 9\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":4: unknown key \"limits.max_choices\"");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_options: 0\n")), K::Config,
                      ":2: limits.max_options: bad value \"0\": use a whole number from 1 to 1024");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n\n  max_record_bytes: 99999999999\n")), K::Config,
                      ":3: limits.max_record_bytes: bad value \"99999999999\"");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_events: -1\n")), K::Config, ":2:");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_events: 1e4\n")), K::Config, "\"1e4\"");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_events: [1]\n")), K::Config, ":2:");
    EXPECT_HAWF_ERROR(load_config(conf("limits: 5\n")), K::Config, ":1: limits: expected a mapping");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_options: 4\n  max_options: 5\n")), K::Config,
                      ":3: duplicate key \"max_options\"");
    EXPECT_HAWF_ERROR(load_config(conf("max_param_bytes: 10\nlimits:\n  max_param_bytes: 20\n")), K::Config,
                      ":3: limits.max_param_bytes: set twice");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_options:\n    deep: 1\n")), K::Config, ":3:");
}

TEST_F(ConfigTest, DefaultOptionsWithinMaxOptions) {
    const std::string path = conf("default_options: [a, b, c]\nlimits:\n  max_options: 2\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":1: default_options: 3 choices, at most 2");
    EXPECT_HAWF_ERROR(load_config(conf("limits:\n  max_options: 1\n")), K::Config, ":2: default_options: 2 choices");
}

// hawfd (issue 9): optional; configured once the tools know its address.
TEST_F(ConfigTest, HawfdKeysParsed) {
    const Config c = load_config(conf("spool: /s\n"
                                      "hawfd:\n"
                                      "  listen: \"[::]:7477\"\n"
                                      "  address: svc1.example.org:7477\n"
                                      "  state: /srv/hawf\n"
                                      "  munge_socket: /run/munge/other.socket\n"));
    EXPECT_TRUE(c.hawfd_configured());
    EXPECT_EQ(c.hawfd.listen, "[::]:7477");
    EXPECT_EQ(c.hawfd.address, "svc1.example.org:7477");
    EXPECT_EQ(c.hawfd.state, "/srv/hawf");
    EXPECT_EQ(c.hawfd.munge_socket, "/run/munge/other.socket");
    const Config listen_only = load_config(conf("hawfd: {listen: \"0.0.0.0:7477\"}\n"));
    EXPECT_FALSE(listen_only.hawfd_configured());  // the tools need the address
    EXPECT_EQ(listen_only.hawfd.state, "/var/lib/hawf");
}

TEST_F(ConfigTest, HawfdRefusedWithFileAndLine) {
    const std::string path = conf("spool: /s\nhawfd:\n  listen: 0.0.0.0:7477\n  port: 7477\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config,
                      path + ":4: unknown key \"hawfd.port\": allowed are listen, address, state, munge_socket");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n  address: svc1\n")), K::Config,
                      ":2: hawfd.address: bad address \"svc1\": use HOST:PORT");
    for (const char* bad : {"svc1:0", "svc1:65536", "svc1:07477", "svc1:", ":7477", "[::1]7477", "[zz]:1",
                            "::1:7477", "two words:1", "svc1:7477x"})
        EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n\n  listen: \"" + std::string(bad) + "\"\n")), K::Config,
                          ":3: hawfd.listen: bad address \"" + std::string(bad) + "\"");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n  state: var/lib/hawf\n")), K::Config,
                      ":2: bad hawfd.state \"var/lib/hawf\": use an absolute path");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n  munge_socket: munge.sock\n")), K::Config,
                      ":2: bad hawfd.munge_socket");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd: svc1:7477\n")), K::Config, ":1: hawfd: expected a mapping");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n  listen: [a, b]\n")), K::Config,
                      ":2: hawfd.listen: expected a single value");
    EXPECT_HAWF_ERROR(load_config(conf("hawfd:\n  state: /a\n  state: /b\n")), K::Config,
                      ":3: duplicate key \"state\"");
}

// ---------------------------------------------------------------- policies

const std::string kHawfd = "hawfd:\n  address: svc1:7477\n";

TEST_F(ConfigTest, LocalJobsNeedNoHawfd) {
    EXPECT_EQ(load_config(conf("local_jobs: /home/u/.local/state/hawf/local/jobs\n")).local_jobs,
              "/home/u/.local/state/hawf/local/jobs");
    EXPECT_HAWF_ERROR(load_config(conf("local_jobs: jobs\n")), K::Config, ":1: bad local_jobs \"jobs\": use an absolute path");
    EXPECT_HAWF_ERROR(load_config(conf(kHawfd + "local_jobs: /j\n")), K::Config,
                      "local_jobs (no Slurm: jobs run on this machine) and hawfd");
}

TEST_F(ConfigTest, PoliciesParsed) {
    const std::string path = conf(kHawfd +                                  // lines 1-2
                                  "policies:\n"                             // 3
                                  "  - partition: prod          # SPEC's example\n"
                                  "    checkpoint: \"deploy*\"\n"             // 5
                                  "    reviewers: [\"@safety\"]\n"
                                  "    quorum: 2\n"
                                  "    owner_may_decide: false\n"
                                  "  - {account: \"ml-*\", qos: high, reviewers: [root, \"@root\"]}\n"  // 9
                                  "  - reviewers:\n"                        // 10: no matcher: every job
                                  "      - daemon\n");
    const Config c = load_config(path);
    ASSERT_EQ(c.policies.size(), 3u);
    const Policy& spec_example = c.policies[0];
    EXPECT_EQ(spec_example.partition, "prod");
    EXPECT_EQ(spec_example.account, "");
    EXPECT_EQ(spec_example.qos, "");
    EXPECT_EQ(spec_example.checkpoint, "deploy*");
    EXPECT_EQ(spec_example.reviewers, (std::vector<std::string>{"@safety"}));  // syntax only: groups may be remote
    EXPECT_EQ(spec_example.quorum, 2u);
    EXPECT_FALSE(spec_example.owner_may_decide);
    EXPECT_EQ(spec_example.where, path + ":4");
    const Policy& flow = c.policies[1];
    EXPECT_EQ(flow.partition, "");
    EXPECT_EQ(flow.account, "ml-*");
    EXPECT_EQ(flow.qos, "high");
    EXPECT_EQ(flow.checkpoint, "");
    EXPECT_EQ(flow.reviewers, (std::vector<std::string>{"root", "@root"}));
    EXPECT_EQ(flow.quorum, 1u);
    EXPECT_TRUE(flow.owner_may_decide);
    EXPECT_EQ(flow.where, path + ":9");
    const Policy& everything = c.policies[2];
    EXPECT_EQ(everything.partition + everything.account + everything.qos + everything.checkpoint, "");
    EXPECT_EQ(everything.reviewers, (std::vector<std::string>{"daemon"}));
    EXPECT_EQ(everything.where, path + ":10");
    // A quorum larger than the users named is not refused here: groups may be remote.
    EXPECT_EQ(load_config(conf(kHawfd + "policies:\n  - {reviewers: [root], quorum: 64}\n")).policies[0].quorum, 64u);
    EXPECT_TRUE(load_config(conf("policies: []\n")).policies.empty());  // nothing to enforce: no hawfd needed
    EXPECT_TRUE(load_config(conf(kHawfd)).policies.empty());
}

TEST_F(ConfigTest, PoliciesNeedHawfd) {
    const std::string path = conf("spool: /s\n\npolicies:\n  - reviewers: [\"@safety\"]\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":3: policies need hawfd: set hawfd.address");
    // hawfd.listen alone is not enough: the tools find hawfd by its address.
    EXPECT_HAWF_ERROR(load_config(conf("hawfd: {listen: \"0.0.0.0:7477\"}\npolicies:\n  - reviewers: [root]\n")),
                      K::Config, ":2: policies need hawfd");
}

TEST_F(ConfigTest, PoliciesRefusedWithFileAndLine) {
    struct Case {
        std::string policies;  // from line 3 on
        std::string error;
    };
    const std::string allowed =
        "allowed are partition, account, qos, checkpoint, reviewers, quorum, owner_may_decide";
    const Case cases[] = {
        {"policies:\n  - partitions: prod\n    reviewers: [root]\n",
         ":4: unknown key \"policies.partitions\": " + allowed},
        {"policies:\n  - partition: prod\n", ":4: policies: a policy needs reviewers: [USER, @GROUP, ...]"},
        {"policies:\n  - {partition: prod, reviewers: []}\n", ":4: policies: a policy needs reviewers"},
        {"policies:\n  - reviewers: \"@safety\"\n", ":4: policies.reviewers: expected a list [USER, @GROUP, ...]"},
        {"policies:\n  - reviewers:\n      - root\n      - \"-rf\"\n", ":6: policies.reviewers: bad reviewer \"-rf\""},
        {"policies:\n  - reviewers: [\"@\"]\n", ":4: policies.reviewers: bad reviewer \"@\""},
        {"policies:\n  - reviewers: [root, \"@safety\", \"@safety\"]\n",
         ":4: policies.reviewers: \"@safety\" given twice"},
        {"policies:\n  - reviewers: [[root]]\n", ":4: policies.reviewers: expected a plain value"},
        {"policies:\n  - reviewers: [root]\n    quorum: 0\n",
         ":5: policies.quorum: bad value \"0\": use a whole number from 1 to 64"},
        {"policies:\n  - reviewers: [root]\n    quorum: 65\n", ":5: policies.quorum: bad value \"65\""},
        {"policies:\n  - reviewers: [root]\n    quorum: two\n", ":5: policies.quorum: bad value \"two\""},
        {"policies:\n  - reviewers: [root]\n    owner_may_decide: no\n",
         ":5: policies.owner_may_decide: bad value \"no\": use true or false"},
        {"policies:\n  - reviewers: [root]\n    partition: [a, b]\n",
         ":5: policies.partition: expected a single value"},
        {"policies:\n  - reviewers: [root]\n    qos: \"\"\n",
         ":5: policies.qos: empty: leave the key out to match any"},
        {"policies:\n  - reviewers: [root]\n    account: a\n    account: b\n", ":6: duplicate key \"account\""},
        {"policies:\n  reviewers: [root]\n", ":4: policies: expected a list of policies"},
        {"policies: \"@safety\"\n", ":3: policies: expected a list of policies"},
        {"policies:\n  - reviewers: [root]\n  - prod\n", ":5: policies: expected a mapping"},
    };
    for (const Case& c : cases) {
        const std::string path = conf(kHawfd + c.policies);
        EXPECT_HAWF_ERROR(load_config(path), K::Config, path + c.error);
    }
    std::string many;
    for (int i = 0; i < 33; ++i) many += std::string(i ? ", " : "") + "u" + std::to_string(i);
    EXPECT_HAWF_ERROR(load_config(conf(kHawfd + "policies:\n  - reviewers: [" + many + "]\n")), K::Config,
                      ":4: policies.reviewers: 33 entries, at most 32");
    EXPECT_HAWF_ERROR(load_config(conf(kHawfd + "polices:\n  - reviewers: [root]\n")), K::Config,
                      ":3: unknown key \"polices\": allowed are spool, default_options, limits, poll_interval, "
                      "hawfd, policies");
}

// ---------------------------------------------------------------- apply_policies

class ApplyPolicies : public ::testing::Test {
protected:
    // The SPEC's example: partition prod, checkpoints deploy*, two of @safety, not the owner.
    static Policy safety() {
        Policy p;
        p.partition = "prod";
        p.checkpoint = "deploy*";
        p.reviewers = {"@safety"};
        p.quorum = 2;
        p.owner_may_decide = false;
        p.where = "/etc/hawf/hawf.yaml:7";
        return p;
    }
    static CheckpointSpec spec(const std::string& name = "deploy-v2") {
        CheckpointSpec s;
        s.id = parse_checkpoint_id("4242:" + name);
        s.options = {"approve", "reject"};
        return s;
    }
    static CheckpointSpec applied(const std::vector<Policy>& policies, const JobFacts& job, CheckpointSpec s) {
        apply_policies(policies, job, s);
        return s;
    }
    JobFacts prod_{"prod", "ml", "normal"};
};

TEST_F(ApplyPolicies, AMatchingPolicyMakesTheCheckpointDelegated) {
    const CheckpointSpec s = applied({safety()}, prod_, spec());
    EXPECT_TRUE(s.delegated());
    // A requirement of its own; the job's own requirement stays empty.
    EXPECT_EQ(s.required, (std::vector<CheckpointSpec::Requirement>{{{"@safety"}, 2, "/etc/hawf/hawf.yaml:7"}}));
    EXPECT_TRUE(s.reviewers.empty());
    EXPECT_EQ(s.quorum, 1u);
    EXPECT_FALSE(s.owner_may_decide);
    EXPECT_NO_THROW(s.check());
    EXPECT_EQ(s.options, spec().options);  // nothing else changes
}

TEST_F(ApplyPolicies, EveryGivenMatcherMustMatch) {
    const CheckpointSpec untouched = spec();
    // Each field alone not matching keeps the job in owner mode.
    EXPECT_FALSE(applied({safety()}, {"debug", "ml", "normal"}, spec()).delegated());
    EXPECT_FALSE(applied({safety()}, prod_, spec("eval")).delegated());
    EXPECT_FALSE(applied({safety()}, prod_, spec("predeploy")).delegated());  // a glob matches the whole name
    Policy account = safety();
    account.account = "ml";
    EXPECT_TRUE(applied({account}, prod_, spec()).delegated());
    EXPECT_FALSE(applied({account}, {"prod", "physics", "normal"}, spec()).delegated());
    EXPECT_FALSE(applied({account}, {"prod", "", "normal"}, spec()).delegated());  // no accounting
    Policy qos = safety();
    qos.qos = "high";
    EXPECT_FALSE(applied({qos}, prod_, spec()).delegated());
    EXPECT_TRUE(applied({qos}, {"prod", "ml", "high"}, spec()).delegated());
    const CheckpointSpec none = applied({safety()}, {"debug", "ml", "normal"}, spec());
    EXPECT_EQ(none.quorum, untouched.quorum);
    EXPECT_TRUE(none.owner_may_decide);
}

TEST_F(ApplyPolicies, GlobsAndAPolicyWithoutMatchers) {
    Policy globs;
    globs.partition = "gpu-*";
    globs.account = "[mp]l?";
    globs.qos = "*";
    globs.checkpoint = "dep?oy*";
    globs.reviewers = {"root"};
    EXPECT_TRUE(applied({globs}, {"gpu-a100", "ml1", "normal"}, spec()).delegated());
    EXPECT_TRUE(applied({globs}, {"gpu-", "pl2", ""}, spec("deploy")).delegated());  // "*" matches an empty QOS
    EXPECT_FALSE(applied({globs}, {"gpu", "ml1", "normal"}, spec()).delegated());
    EXPECT_FALSE(applied({globs}, {"gpu-a100", "xl1", "normal"}, spec()).delegated());
    EXPECT_FALSE(applied({globs}, {"gpu-a100", "ml", "normal"}, spec()).delegated());
    EXPECT_FALSE(applied({globs}, {"gpu-a100", "ml1", "normal"}, spec("deplooy")).delegated());
    Policy everything;
    everything.reviewers = {"daemon"};
    everything.where = "/etc/hawf/hawf.yaml:20";
    const CheckpointSpec s = applied({everything}, {"any", "", ""}, spec("x"));
    ASSERT_EQ(s.required.size(), 1u);
    EXPECT_EQ(s.required[0].reviewers, (std::vector<std::string>{"daemon"}));
    EXPECT_EQ(s.required[0].quorum, 1u);
    EXPECT_EQ(s.required[0].policy, "/etc/hawf/hawf.yaml:20");
}

// Each matching policy is a requirement of its own, in config order: nothing of it is
// merged with the job's own reviewers and quorum, nor with another policy.
TEST_F(ApplyPolicies, EachPolicyIsItsOwnRequirementNeverMerged) {
    CheckpointSpec job = spec();
    job.reviewers = {"bin", "@safety", "root"};
    job.quorum = 1;
    Policy other;
    other.reviewers = {"root", "daemon"};
    other.quorum = 1;
    other.where = "/etc/hawf/hawf.yaml:12";
    CheckpointSpec s = applied({safety(), other}, prod_, job);
    EXPECT_EQ(s.reviewers, job.reviewers);  // the job's own requirement, untouched
    EXPECT_EQ(s.quorum, 1u);                // not raised to a policy's: that stays the policy's
    EXPECT_EQ(s.required, (std::vector<CheckpointSpec::Requirement>{{{"@safety"}, 2, "/etc/hawf/hawf.yaml:7"},
                                                                      {{"root", "daemon"}, 1, "/etc/hawf/hawf.yaml:12"}}));
    EXPECT_FALSE(s.owner_may_decide);  // any policy saying false
    EXPECT_NO_THROW(s.check());
    job.quorum = 3;  // the job may ask more of its own reviewers; the policies keep theirs
    s = applied({safety(), other}, prod_, job);
    EXPECT_EQ(s.quorum, 3u);
    EXPECT_EQ(s.required[0].quorum, 2u);
    EXPECT_EQ(s.required[1].quorum, 1u);
    // In config order, and owner_may_decide is only ever cleared.
    s = applied({other, safety()}, prod_, spec());
    EXPECT_FALSE(s.owner_may_decide);
    ASSERT_EQ(s.required.size(), 2u);
    EXPECT_EQ(s.required[0].policy, "/etc/hawf/hawf.yaml:12");
    EXPECT_EQ(s.required[1].policy, "/etc/hawf/hawf.yaml:7");
    EXPECT_TRUE(s.reviewers.empty());
    EXPECT_TRUE(applied({other}, prod_, spec()).owner_may_decide);
    // Two policies naming the same reviewers stay two requirements.
    s = applied({safety(), safety()}, prod_, spec());
    EXPECT_EQ(s.required.size(), 2u);
    // Policies that do not match add nothing.
    EXPECT_EQ(applied({safety(), other}, {"debug", "ml", "normal"}, job).required.size(), 1u);
    EXPECT_TRUE(applied({safety()}, {"debug", "ml", "normal"}, job).required.empty());
}

TEST(HostPort, NamesAndAddresses) {
    const HostPort named = parse_host_port("svc1:7477", "x");
    EXPECT_EQ(named.host, "svc1");
    EXPECT_EQ(named.port, 7477);
    EXPECT_EQ(parse_host_port("[::1]:1", "x").host, "::1");
    EXPECT_EQ(parse_host_port("10.0.0.1:65535", "x").port, 65535);
    EXPECT_HAWF_ERROR(parse_host_port("svc1", "hawfd.address"), K::Usage, "hawfd.address: bad address \"svc1\"");
}

TEST_F(ConfigTest, UnknownKeyWithMappingValueNamesTheKey) {
    // A key hawf does not know whose value is a mapping is refused by its own name and line.
    const std::string path = conf("spool: /s\nflows:\n  train: {script: \"train.sh\"}\n  stages: [train]\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":2: unknown key \"flows\"");
}

TEST_F(ConfigTest, BlockListAndScalarOptions) {
    Config c = load_config(conf("default_options:\n  - yes\n  - no\n"));
    EXPECT_EQ(c.default_options, (std::vector<std::string>{"yes", "no"}));
    c = load_config(conf("default_options: approve,reject,hold\n"));
    EXPECT_EQ(c.default_options, (std::vector<std::string>{"approve", "reject", "hold"}));
    c = load_config(conf("spool: \"/quoted path/hawf\"\npoll_interval: 2m\n"));
    EXPECT_EQ(c.spool, "/quoted path/hawf");
    EXPECT_EQ(c.poll_interval_s, 120);
}

TEST_F(ConfigTest, UnknownKeyNamesFileAndLine) {
    const std::string path = conf("spool: /shared/hawf\n"
                                  "\n"
                                  "# a comment\n"
                                  "spol: /typo\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":4:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "\"spol\"");
}

TEST_F(ConfigTest, UnknownKeyWithBlockValueNamesTheKeyLine) {
    const std::string path = conf("spool: /shared/hawf\n"
                                  "mailers:\n"
                                  "  - webhook\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":2:");
}

TEST_F(ConfigTest, RelativeSpoolRefused) {
    const std::string path = conf("max_param_bytes: 100\nspool: var/spool/hawf\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":2:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "var/spool/hawf");
    EXPECT_HAWF_ERROR(load_config(conf("spool: \"\"\n")), K::Config, ":1:");
}

TEST_F(ConfigTest, BadDurationRefused) {
    const std::string path = conf("spool: /s\npoll_interval: 5x\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":2:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "\"5x\"");
    EXPECT_HAWF_ERROR(load_config(conf("poll_interval: 0s\n")), K::Config, ":1:");
}

TEST_F(ConfigTest, BadNumbersRefused) {
    const std::string path = conf("spool: /s\n\nmax_param_bytes: lots\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":3:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "\"lots\"");
    EXPECT_HAWF_ERROR(load_config(conf("max_param_bytes: 0\n")), K::Config, "\"0\"");
    EXPECT_HAWF_ERROR(load_config(conf("max_param_bytes: 99999999999999999999\n")), K::Config, "99999999999999999999");
    EXPECT_HAWF_ERROR(load_config(conf("max_comment_bytes: -1\n")), K::Config, "\"-1\"");
    EXPECT_HAWF_ERROR(load_config(conf("max_comment_bytes: 12abc\n")), K::Config, "\"12abc\"");
}

TEST_F(ConfigTest, BadOptionsRefused) {
    const std::string path = conf("spool: /s\ndefault_options: [go, go]\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":2:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "\"go\"");
    EXPECT_HAWF_ERROR(load_config(conf("default_options: [\"no way\"]\n")), K::Config, "no way");
    EXPECT_HAWF_ERROR(load_config(conf("default_options: []\n")), K::Config, ":1:");
}

TEST_F(ConfigTest, WrongShapesRefused) {
    EXPECT_HAWF_ERROR(load_config(conf("spool: [/a, /b]\n")), K::Config, ":1:");
    EXPECT_HAWF_ERROR(load_config(conf("spool: /s\nmax_param_bytes:\n  a: 1\n")), K::Config, ":3:");
    EXPECT_HAWF_ERROR(load_config(conf("- spool\n- /s\n")), K::Config, ":1:");
    EXPECT_HAWF_ERROR(load_config(conf("just a string\n")), K::Config, ":1:");
    EXPECT_HAWF_ERROR(load_config(conf("default_options: [[a]]\n")), K::Config, ":1:");
}

TEST_F(ConfigTest, DuplicateKeyRefusedAtItsLine) {
    const std::string path = conf("spool: /a\nmax_param_bytes: 10\nspool: /b\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":3:");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, "duplicate key \"spool\"");
}

TEST_F(ConfigTest, YamlSyntaxErrorHasLine) {
    const std::string path = conf("spool: /s\nmax_param_bytes: 10\ndefault_options: [a, b\npoll_interval: 5s\n");
    try {
        load_config(path);
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.kind(), K::Config);
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
        EXPECT_NE(msg.find("YAML syntax"), std::string::npos) << msg;
        // The line is where libyaml noticed the problem: at or after the open list.
        const std::size_t line = std::stoul(msg.substr(path.size() + 1));
        EXPECT_GE(line, 3u) << msg;
        EXPECT_LE(line, 5u) << msg;
    }
    const std::string tab = conf("spool: /s\n\tmax_param_bytes: 10\n");
    EXPECT_HAWF_ERROR(load_config(tab), K::Config, tab + ":2:");
    const std::string colon = conf("spool: /s\nspool2: a: b\n");
    EXPECT_HAWF_ERROR(load_config(colon), K::Config, colon + ":2:");
}

TEST_F(ConfigTest, UnreadableIsAConfigError) {
    if (test::is_root()) GTEST_SKIP() << "root reads any file";
    const std::string path = conf("spool: /s\n");
    chmod(path.c_str(), 0);
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path);
}

TEST(ShippedConfig, ParsesToTheBuiltInDefaults) {
    // etc/hawf.yaml says every key in it is set to its built-in default.
    const Config shipped = load_config(HAWF_SOURCE_DIR "/etc/hawf.yaml");
    const Config defaults;
    EXPECT_TRUE(shipped.found);
    EXPECT_EQ(shipped.spool, defaults.spool);
    EXPECT_EQ(shipped.default_options, defaults.default_options);
    EXPECT_EQ(shipped.limits.max_param_bytes, defaults.limits.max_param_bytes);
    EXPECT_EQ(shipped.limits.max_comment_bytes, defaults.limits.max_comment_bytes);
    EXPECT_EQ(shipped.limits.max_options, defaults.limits.max_options);
    EXPECT_EQ(shipped.limits.max_params, defaults.limits.max_params);
    EXPECT_EQ(shipped.limits.max_checkpoints, defaults.limits.max_checkpoints);
    EXPECT_EQ(shipped.limits.max_record_bytes, defaults.limits.max_record_bytes);
    EXPECT_EQ(shipped.limits.max_events, defaults.limits.max_events);
    EXPECT_EQ(shipped.poll_interval_s, defaults.poll_interval_s);
    EXPECT_EQ(shipped.hawfd_configured(), defaults.hawfd_configured());
    EXPECT_EQ(shipped.hawfd.listen, defaults.hawfd.listen);
    EXPECT_EQ(shipped.hawfd.state, defaults.hawfd.state);
    EXPECT_EQ(shipped.hawfd.munge_socket, defaults.hawfd.munge_socket);
    // And it writes every limit out, so an admin sees what can be set.
    const std::string text = test::read_text(HAWF_SOURCE_DIR "/etc/hawf.yaml");
    for (const char* key : {"limits:", "  max_param_bytes:", "  max_comment_bytes:", "  max_options:", "  max_params:",
                            "  max_checkpoints:", "  max_record_bytes:", "  max_events:"})
        EXPECT_NE(text.find(std::string("\n") + key), std::string::npos) << key;
    EXPECT_TRUE(shipped.policies.empty());
    // hawfd and policies are optional: their keys are there, commented out.
    for (const char* key : {"# hawfd:", "#   listen:", "#   address:", "#   state:", "#   munge_socket:",
                            "# policies:", "#   - partition:", "#     reviewers:", "#     quorum:",
                            "#     owner_may_decide:"})
        EXPECT_NE(text.find(std::string("\n") + key), std::string::npos) << key;
}

// The commented-out hawfd: and policies: blocks of etc/hawf.yaml are valid as they stand.
TEST_F(ConfigTest, ShippedExamplesParseUncommented) {
    std::istringstream in(test::read_text(HAWF_SOURCE_DIR "/etc/hawf.yaml"));
    std::string text, line;
    bool block = false;
    while (std::getline(in, line)) {
        if (line == "# hawfd:" || line == "# policies:") block = true;
        if (line.empty()) block = false;
        text += (block && line.rfind("# ", 0) == 0 ? line.substr(2) : line) + "\n";
    }
    const Config c = load_config(conf(text));
    EXPECT_EQ(c.hawfd.address, "svc1:7477");
    ASSERT_EQ(c.policies.size(), 1u);
    EXPECT_EQ(c.policies[0].partition, "prod");
    EXPECT_EQ(c.policies[0].checkpoint, "deploy*");
    EXPECT_EQ(c.policies[0].reviewers, (std::vector<std::string>{"@safety"}));
    EXPECT_EQ(c.policies[0].quorum, 2u);
    EXPECT_FALSE(c.policies[0].owner_may_decide);
}

TEST_F(ConfigTest, PathFromEnvironment) {
    const char* old = std::getenv("HAWF_CONF");
    const std::string saved = old ? old : "";
    setenv("HAWF_CONF", "/tmp/elsewhere.yaml", 1);
    EXPECT_EQ(config_path_from_env(), "/tmp/elsewhere.yaml");
    setenv("HAWF_CONF", "", 1);
    EXPECT_EQ(config_path_from_env(), default_config_path);
    unsetenv("HAWF_CONF");
    EXPECT_EQ(config_path_from_env(), default_config_path);
    if (old) setenv("HAWF_CONF", saved.c_str(), 1);
}

}  // namespace
}  // namespace hawf
