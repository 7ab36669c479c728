// flow.hpp: flow files read and checked, every mistake with its file and line.
#include "flow.hpp"

#include <gtest/gtest.h>

#include "actions.hpp"
#include "error.hpp"
#include "fake_slurm.hpp"
#include "helpers.hpp"
#include "slurm.hpp"
#include "spool.hpp"

namespace hawf {
namespace {

using test::TempDir;

const std::vector<std::string> site_options = {"approve", "reject"};

class FlowTest : public ::testing::Test {
protected:
    void SetUp() override {
        test::write_text(dir_ / "train.sbatch", "#!/bin/bash\npython train.py\n");
        test::write_text(dir_ / "finetune.sbatch", "#!/bin/bash\npython finetune.py\n");
    }
    // Loads TEXT as DIR/flow.yaml; the errors in ERRORS_.
    Flow load(const std::string& text) {
        test::write_text(path_, text);
        errors_.clear();
        return load_flow(path_, site_options, errors_);
    }
    // The one error TEXT gives, without the file name.
    std::string error(const std::string& text) {
        load(text);
        EXPECT_EQ(errors_.size(), 1u) << testing::PrintToString(errors_);
        if (errors_.empty()) return "";
        EXPECT_EQ(errors_[0].rfind(path_ + ":", 0), 0u) << errors_[0];
        return errors_[0].substr(path_.size() + 1);
    }

    TempDir dir_;
    std::string path_ = dir_ / "flow.yaml";
    std::vector<std::string> errors_;
};

const char* const spec_example = R"(name: train-eval
stages:
  train:
    script: train.sbatch
    sbatch: [--gpus=4, --time=24:00:00]
    checkpoint: {name: eval, options: [continue, stop], params: {lr: float},
                 timeout: 24h, default: stop}
  finetune: {after: train.eval, on: [continue], script: finetune.sbatch,
             checkpoint: {name: again, options: [continue, stop]}, repeat: {max: 5}}
  report:   {after: train.eval, on: [stop], run: "python summarize.py"}
  publish:  {after: [finetune, report], run: "echo done"}
)";

TEST_F(FlowTest, ReadsTheSpecsExample) {
    const Flow flow = load(spec_example);
    ASSERT_TRUE(errors_.empty()) << testing::PrintToString(errors_);
    EXPECT_EQ(flow.name, "train-eval");
    EXPECT_EQ(flow.dir, dir_.path());
    ASSERT_EQ(flow.stages.size(), 4u);
    const FlowStage* train = flow.stage("train");
    ASSERT_TRUE(train && train->checkpoint);
    EXPECT_EQ(train->sbatch, (std::vector<std::string>{"--gpus=4", "--time=24:00:00"}));
    EXPECT_EQ(train->checkpoint->options, (std::vector<std::string>{"continue", "stop"}));
    ASSERT_EQ(train->checkpoint->params.size(), 1u);
    EXPECT_EQ(train->checkpoint->params[0].key, "lr");
    EXPECT_EQ(train->checkpoint->timeout_s, 24 * 3600);
    EXPECT_EQ(train->checkpoint->default_choice, "stop");
    const FlowStage* finetune = flow.stage("finetune");
    ASSERT_TRUE(finetune && finetune->after_checkpoint());
    EXPECT_EQ(finetune->after_checkpoint()->stage, "train");
    EXPECT_EQ(finetune->on, (std::vector<std::string>{"continue"}));
    EXPECT_EQ(finetune->repeat_max, 5u);
    EXPECT_EQ(finetune->repeat_on, (std::vector<std::string>{"continue"}));  // its checkpoint's first option
    EXPECT_EQ(flow.stage("report")->run, "python summarize.py");
    const FlowStage* publish = flow.stage("publish");
    ASSERT_EQ(publish->after.size(), 2u);  // a join
    EXPECT_TRUE(publish->on.empty());
    // Each stage after what it waits for.
    EXPECT_EQ(flow.stages.front().name, "train");
    EXPECT_EQ(flow.stages.back().name, "publish");
}

TEST_F(FlowTest, DefaultsAreStated) {
    const Flow flow = load("stages:\n  a: {run: 'true', checkpoint: eval}\n  b: {after: a.eval, run: 'true'}\n");
    ASSERT_TRUE(errors_.empty()) << testing::PrintToString(errors_);
    EXPECT_EQ(flow.name, "flow");  // the file's name
    EXPECT_EQ(flow.stage("b")->on, (std::vector<std::string>{"approve"}));  // the site's first option
}

TEST_F(FlowTest, EveryMistakeHasItsLine) {
    struct Case {
        const char* text;
        const char* error;
    } cases[] = {
        {"stages: {a: {run: x}}\nstagez: 1\n", "2: unknown key \"stagez\" (known: name, stages)"},
        {"name: 'bad name'\nstages: {a: {run: x}}\n", "1: bad flow name \"bad name\""},
        {"stages: []\n", "1: stages: expected a mapping of stage names to stages"},
        {"name: x\n", "1: no stages: a flow needs a stages: mapping"},
        {"stages:\n  a:\n    run: x\n    script: train.sbatch\n",
         "2: stage a: needs script: (a batch script) or run: (a command), one of them"},
        {"stages:\n  a: {}\n", "2: stage a: needs script: (a batch script) or run: (a command), one of them"},
        {"stages:\n  a:\n    script: missing.sbatch\n", "3: stage a: script: cannot read"},
        {"stages:\n  a:\n    run: x\n    gpus: 4\n", "4: unknown key \"gpus\" in stage a (known: script, run, sbatch, "
                                                   "checkpoint, after, on, repeat)"},
        {"stages:\n  a:\n    run: x\n    sbatch: [--dependency=afterok:1]\n",
         "4: stage a: sbatch: --dependency is hawf's to set in a flow"},
        {"stages:\n  a:\n    run: x\n    sbatch: [--hawf-checkpoint=x]\n", "4: stage a: sbatch: --hawf-checkpoint is hawf's"},
        {"stages:\n  a:\n    run: x\n    sbatch: [time=1]\n", "4: stage a: sbatch: \"time=1\" is not an sbatch option"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {options: [go]}\n", "4: stage a: checkpoint: needs a name"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, options: [go, go]}\n",
         "4: choice \"go\" appears twice in stage a: checkpoint.options"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, timeout: 1h}\n",
         "4: stage a: checkpoint: timeout and default go together"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, timeout: soon, default: approve}\n",
         "4: stage a: checkpoint.timeout: bad duration \"soon\""},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, options: [go, stop], timeout: 1h, default: maybe}\n",
         "4: stage a: checkpoint: default \"maybe\" is not one of its options (go, stop)"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, params: {lr: complex}}\n",
         "4: stage a: checkpoint.params: bad type \"complex\" for parameter lr"},
        {"stages:\n  a:\n    run: x\n    checkpoint: {name: e, colour: red}\n",
         "4: unknown key \"colour\" in stage a: checkpoint (known: name, options, params, timeout, default, reviewers)"},
        {"stages:\n  a: {run: x}\n  b:\n    run: x\n    after: c\n", "5: stage b: after: no stage \"c\" in this flow"},
        {"stages:\n  a: {run: x, checkpoint: e}\n  b:\n    run: x\n    after: a.f\n",
         "5: stage b: after: stage a has no checkpoint \"f\" (its checkpoint is e)"},
        {"stages:\n  a: {run: x}\n  b:\n    run: x\n    after: a\n    on: [go]\n",
         "6: stage b: on: needs after: STAGE.CHECKPOINT (the decision it starts on)"},
        {"stages:\n  a: {run: x, checkpoint: e}\n  b:\n    run: x\n    after: a.e\n    on: [go]\n",
         "6: stage b: on: \"go\" is not an option of checkpoint e (approve, reject)"},
        {"stages:\n  a: {run: x, checkpoint: e}\n  b: {run: x, checkpoint: f}\n  c:\n    run: x\n    after: [a.e, b.f]\n",
         "6: stage c: after: at most one checkpoint"},
        {"stages:\n  a:\n    run: x\n    after: a\n", "4: stage a: after: a stage cannot wait for itself (use repeat:)"},
        {"stages:\n  a: {run: x, after: b}\n  b: {run: x, after: a}\n", "2: stage a waits for itself: a -> b -> a"},
        {"stages:\n  a:\n    run: x\n    repeat: {max: 3}\n", "4: stage a: repeat needs a checkpoint"},
        {"stages:\n  a:\n    run: x\n    checkpoint: e\n    repeat: {max: 1000}\n",
         "5: stage a: repeat.max: bad value \"1000\": use a whole number of rounds from 2 to 100"},
        {"stages:\n  a:\n    run: x\n    checkpoint: e\n    repeat: {max: 3, on: [more]}\n",
         "5: stage a: repeat.on: \"more\" is not an option of checkpoint e (approve, reject)"},
        {"stages:\n  a:\n    run: x\n    checkpoint: e\n    repeat: {max: 3, until: x}\n",
         "5: unknown key \"until\" in stage a: repeat (known: max, on)"},
        {"stages:\n  a:\n    run: x\n    checkpoint: e\n    repeat: {max: 3}\n  b:\n    after: a.e\n    run: x\n"
         "    checkpoint: f\n    repeat: {max: 2}\n",
         "6: stage b: repeats after repeating stage a: a loop inside a loop is not supported"},
        {"stages:\n  a: {run: x}\n  a: {run: y}\n", "3: duplicate key \"a\""},
        {"stages:\n  a: [run, x]\n", "2: stage a: expected a mapping"},
        {"stages:\n  a: {run: x\n", "3: YAML syntax"},
    };
    for (const Case& c : cases) {
        const std::string got = error(c.text);
        EXPECT_EQ(got.rfind(c.error, 0), 0u) << "flow:\n" << c.text << "got: " << got << "\nwanted: " << c.error;
    }
}

TEST_F(FlowTest, AllMistakesAtOnce) {
    load("stages:\n  a:\n    run: x\n    sbatch: [--hold]\n  b:\n    after: nowhere\n    run: x\n    colour: red\n");
    ASSERT_EQ(errors_.size(), 3u) << testing::PrintToString(errors_);  // in the order of their lines
    EXPECT_NE(errors_[0].find(":4: stage a: sbatch: --hold"), std::string::npos) << errors_[0];
    EXPECT_NE(errors_[1].find(":6: stage b: after: no stage \"nowhere\""), std::string::npos) << errors_[1];
    EXPECT_NE(errors_[2].find(":8: unknown key \"colour\""), std::string::npos) << errors_[2];
}

TEST_F(FlowTest, AFileThatCannotBeReadIsAUsageError) {
    std::vector<std::string> errors;
    try {
        load_flow(dir_ / "absent.yaml", site_options, errors);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("absent.yaml"), std::string::npos);
    }
}

// submit_flow and continue_flow against a fake Slurm (job ids 100, 101, ...).
class FlowChainTest : public FlowTest {
protected:
    FlowChainTest() : spool_(root_.path()) { test::write_text(fake_.state("next_job"), "100\n"); }
    std::vector<std::string> sbatch_calls() const {
        std::vector<std::string> jobs;
        for (const auto& call : fake_.calls())
            if (call[0] == "sbatch") jobs.push_back(joined(call, " ") + " ");
        return jobs;
    }
    std::vector<std::string> stage_names(const std::string& id) const {
        std::vector<std::string> names;
        const FlowRecord record = *load_flow_record(spool_, me_, id);
        for (const auto& s : record.stages) names.push_back(s.name + "=" + s.job);
        return names;
    }

    TempDir root_{0755};
    Spool spool_;
    test::FakeSlurm fake_;
    Slurm slurm_{fake_.bindir()};
    uid_t me_ = geteuid();
    Actor cli_{user_name(geteuid()), geteuid(), Via::Cli, "login1"};
    Actor plugin_{user_name(geteuid()), geteuid(), Via::Plugin, "node1"};
};

const char* const loop_flow = R"(name: loop
stages:
  train:
    script: train.sbatch
    checkpoint: {name: eval, options: [continue, stop]}
    repeat: {max: 3, on: [continue]}
  report: {after: train.eval, on: [stop], run: "echo report"}
  publish: {after: report, run: "echo done"}
)";

TEST_F(FlowChainTest, ALoopSubmitsOneRoundAheadAndTheStagesAfterItEachRound) {
    const Flow flow = load(loop_flow);
    ASSERT_TRUE(errors_.empty()) << testing::PrintToString(errors_);
    const FlowRecord record = submit_flow(spool_, slurm_, flow, me_, cli_);
    EXPECT_EQ(record.id, "100");
    // Round 1, round 2 held for round 1's decision, the stages after the loop.
    EXPECT_EQ(stage_names("100"), (std::vector<std::string>{"train=100", "train@2=101", "report=102", "publish=103"}));
    const auto round2 = sbatch_calls().at(1);
    EXPECT_NE(round2.find("--hold --dependency=afterok:100 "), std::string::npos) << round2;
    EXPECT_NE(round2.find("--hawf-after=100:eval "), std::string::npos) << round2;
    EXPECT_NE(round2.find("--job-name=loop.train --hawf-checkpoint=eval --hawf-options=continue,stop "),
              std::string::npos) << round2;
    EXPECT_EQ(spool_.load(me_, parse_checkpoint_id("100:eval")).followup("101")->on,
              (std::vector<std::string>{"continue"}));
    // A job that is no round does nothing.
    fake_.clear_calls();
    continue_flow(spool_, slurm_, me_, "102", nullptr, plugin_);
    EXPECT_TRUE(fake_.calls().empty());
    // Round 2 starts: round 3 held for its checkpoint, and the stages after it again.
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=/home/u"};
    continue_flow(spool_, slurm_, me_, "101", &env, plugin_);
    EXPECT_EQ(stage_names("100"), (std::vector<std::string>{"train=100", "train@2=101", "report=102", "publish=103",
                                                            "train@3=104", "report@2=105", "publish@2=106"}));
    const FlowRecord now = *load_flow_record(spool_, me_, "100");
    EXPECT_EQ(now.stage("train@3")->after, (std::vector<std::string>{"train@2.eval"}));
    EXPECT_EQ(now.stage("publish@2")->after, (std::vector<std::string>{"report@2"}));
    const auto calls = sbatch_calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_NE(calls[1].find("--hawf-after=101:eval "), std::string::npos) << calls[1];
    EXPECT_NE(calls[2].find("--dependency=afterok:105 --kill-on-invalid-dep=yes"), std::string::npos) << calls[2];
    EXPECT_NE(test::read_text(fake_.state("sbatch.env")).find("HOME=/home/u\n"), std::string::npos);
    // Requeued, round 2 starts again: nothing more.
    fake_.clear_calls();
    continue_flow(spool_, slurm_, me_, "101", &env, plugin_);
    EXPECT_TRUE(fake_.calls().empty());
    // The last round (3 of 3) submits no round 4, only the stages after it.
    continue_flow(spool_, slurm_, me_, "104", &env, plugin_);
    EXPECT_EQ(stage_names("100").size(), 9u);
    const FlowRecord last = *load_flow_record(spool_, me_, "100");
    EXPECT_EQ(last.stages.back().name, "publish@3");
    EXPECT_EQ(last.stage("train@4"), nullptr);
    // The owner's checkpoints know their flow and stage, rounds too.
    EXPECT_EQ(flows_of_checkpoints(spool_, me_).at("104:eval")["stage"], "train@3");
}

TEST_F(FlowChainTest, AFollowUpRegisteredAfterItsCheckpointEndedWaitsForItsDeadline) {
    // The first stage (job 100) ran and ended at its checkpoint before hawf submit
    // registered the stages after it (a local run starts it at once).
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id("100:eval");
    spec.owner_uid = me_;
    spec.owner = user_name(me_);
    spec.scope = Scope::Job;
    spec.options = {"continue", "stop"};
    spec.timeout_s = 3600;
    spec.default_choice = "stop";
    open_checkpoint(spool_, spec, plugin_);
    const Checkpoint ended = end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    const Flow flow = load("stages:\n  train:\n    run: 'true'\n    checkpoint: {name: eval, options: [continue, stop], "
                           "timeout: 1h, default: stop}\n  summary: {after: train.eval, on: [stop], run: 'true'}\n");
    ASSERT_TRUE(errors_.empty()) << testing::PrintToString(errors_);
    submit_flow(spool_, slurm_, flow, me_, cli_);
    const std::vector<std::string> update = {"scontrol", "update", "JobId=101",
                                             "StartTime=" + format_local_time(ended.deadline())};
    const auto calls = fake_.calls();
    EXPECT_NE(std::find(calls.begin(), calls.end(), update), calls.end()) << testing::PrintToString(calls);
}

TEST_F(FlowChainTest, ARecordWithOptionsHawfDidNotWriteIsRefused) {
    const Flow flow = load(loop_flow);
    nlohmann::json j = to_json(submit_flow(spool_, slurm_, flow, me_, cli_));
    EXPECT_NO_THROW(flow_record_from_json(j));
    j["stages"][0]["args"].push_back("--dependency=afterok:1");
    EXPECT_HAWF_ERROR(flow_record_from_json(j), ErrorKind::Untrusted, "--dependency=afterok:1");
    j = to_json(submit_flow(spool_, slurm_, flow, me_, cli_));
    j["stages"][0]["repeat"]["max"] = 1000;
    EXPECT_HAWF_ERROR(flow_record_from_json(j), ErrorKind::Untrusted, "a repeat hawf did not write");
}

TEST_F(FlowChainTest, SlurmRefusingARoundCancelsWhatItSubmitted) {
    const Flow flow = load(loop_flow);
    submit_flow(spool_, slurm_, flow, me_, cli_);
    fake_.fail_after("sbatch", "sbatch: error: Batch job submission failed: Invalid account", 1);
    fake_.clear_calls();
    EXPECT_HAWF_ERROR(continue_flow(spool_, slurm_, me_, "101", nullptr, plugin_), ErrorKind::System,
                      "cannot continue flow 100 after round 2 of stage train: ");
    EXPECT_EQ(fake_.calls().back(), (std::vector<std::string>{"scancel", "104"}));
    EXPECT_EQ(stage_names("100").size(), 4u);  // nothing recorded: a requeued round tries again
}

}  // namespace
}  // namespace hawf
