// actions.hpp: the state changes of a checkpoint, including racing writers.
#include "actions.hpp"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "error.hpp"
#include "fake_slurm.hpp"
#include "helpers.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::TempDir;

CheckpointSpec make_spec(const std::string& id, uid_t owner) {
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id(id);
    spec.owner_uid = owner;
    spec.owner = user_name(owner);
    spec.scope = Scope::Job;
    spec.options = {"approve", "reject", "retry"};
    spec.params = parse_param_specs("lr:float,mode:enum(fast|slow)");
    return spec;
}

bool contains(const std::vector<CheckpointId>& ids, const CheckpointId& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

std::size_t count_events(const Checkpoint& c, EventType type) {
    return static_cast<std::size_t>(
        std::count_if(c.history.begin(), c.history.end(), [&](const Event& e) { return e.type == type; }));
}

class ActionsTest : public ::testing::Test {
protected:
    ActionsTest() : spool_(root_.path()) {}

    // Opens SPEC and ends its step with exit 0.
    Checkpoint make_pending(const CheckpointSpec& spec) {
        open_checkpoint(spool_, spec, plugin_);
        return end_checkpoint(spool_, spec.owner_uid, spec.id, 0, plugin_);
    }

    TempDir root_{0755};
    Spool spool_;
    uid_t me_ = geteuid();
    Actor plugin_{user_name(geteuid()), geteuid(), Via::Plugin, "node1"};
    Actor cli_{user_name(geteuid()), geteuid(), Via::Cli, "login1"};
    Limits limits_;
};

// ---------------------------------------------------------------- files/decision.json

// The decision as a task without hawf tools reads it: there once decided, the
// current one after --amend, gone after --revoke, its state once a follow-up used it.
TEST_F(ActionsTest, DecisionFileFollowsTheDecision) {
    const CheckpointSpec spec = make_spec("150:eval", me_);
    make_pending(spec);
    const std::string path = spool_.files_dir(me_, spec.id) + "/decision.json";
    EXPECT_FALSE(std::filesystem::exists(path));
    decide(spool_, me_, spec.id, Decision{"approve", {{"lr", "0.5"}}, "go"}, DecideMode::Decide, cli_, limits_);
    nlohmann::json j = nlohmann::json::parse(test::read_text(path));
    EXPECT_EQ(j["choice"], "approve");
    EXPECT_EQ(j["params"]["lr"], 0.5);  // typed
    EXPECT_EQ(j["comment"], "go");
    EXPECT_EQ(j["checkpoint"], "150:eval");
    EXPECT_EQ(j["state"], "decided");
    decide(spool_, me_, spec.id, Decision{"retry", {}, ""}, DecideMode::Amend, cli_, limits_);
    EXPECT_EQ(nlohmann::json::parse(test::read_text(path))["choice"], "retry");
    revoke(spool_, me_, spec.id, cli_);
    EXPECT_FALSE(std::filesystem::exists(path));
    decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Decide, cli_, limits_);
    mark_applied(spool_, me_, spec.id, "151", plugin_);
    j = nlohmann::json::parse(test::read_text(path));
    EXPECT_EQ(j["choice"], "reject");
    EXPECT_EQ(j["state"], "applied");
    // Replaced whole each time: no temp file left beside it, in files/ (the job's) or log/.
    for (const char* dir : {"files", "log"})
        for (const auto& e : std::filesystem::directory_iterator(spool_.files_dir(me_, spec.id) + "/../" + dir))
            EXPECT_NE(e.path().filename().string().rfind(".tmp.", 0), 0u) << e.path();
}

// A job can spoil its own checkpoint's directory for the view; the decision stands.
TEST_F(ActionsTest, DecisionFileThatCannotBeWrittenDoesNotStopTheDecision) {
    const CheckpointSpec spec = make_spec("151:eval", me_);
    make_pending(spec);
    const std::string files = spool_.files_dir(me_, spec.id);
    ASSERT_EQ(mkdir((files + "/decision.json").c_str(), 0700), 0);
    const Checkpoint c =
        decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_TRUE(std::filesystem::is_directory(files + "/decision.json"));
}

// A default taken at the deadline is a decision like any other.
TEST_F(ActionsTest, DecisionFileHoldsATakenDefault) {
    CheckpointSpec spec = make_spec("152:eval", me_);
    spec.timeout_s = 60;
    spec.default_choice = "reject";
    const Checkpoint c = make_pending(spec);
    take_default(spool_, me_, spec.id, c.deadline(), plugin_, "");
    const auto j = nlohmann::json::parse(test::read_text(spool_.files_dir(me_, spec.id) + "/decision.json"));
    EXPECT_EQ(j["choice"], "reject");
    EXPECT_EQ(j["comment"], "no decision before the deadline");
}

// ---------------------------------------------------------------- open and end

TEST_F(ActionsTest, OpenCreatesRunningCheckpointWithFilesDir) {
    const CheckpointSpec spec = make_spec("100:eval", me_);
    const Checkpoint c = open_checkpoint(spool_, spec, plugin_);
    EXPECT_EQ(c.state, State::Running);
    ASSERT_EQ(c.history.size(), 1u);
    EXPECT_EQ(c.history[0].type, EventType::Opened);
    EXPECT_EQ(c.history[0].via, Via::Plugin);
    EXPECT_EQ(c.history[0].host, "node1");
    EXPECT_EQ(to_json(c.spec), to_json(spec));
    EXPECT_TRUE(spool_.open_files_dir(me_, spec.id));
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
}

TEST_F(ActionsTest, OpenIsIdempotentForTheSameSpecWhileRunning) {
    const CheckpointSpec spec = make_spec("100:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    const Checkpoint again = open_checkpoint(spool_, spec, plugin_);
    EXPECT_EQ(again.state, State::Running);
    EXPECT_EQ(again.history.size(), 1u);
}

// Each node of a step (and a requeued job) seals the spec anew, with another
// credential: the same spec all the same, the first seal stays.
TEST_F(ActionsTest, OpenIsIdempotentWhateverTheSeal) {
    CheckpointSpec spec = make_spec("100:eval", me_);
    spec.seal = "MUNGE:AwQDAAAfirst=:";
    open_checkpoint(spool_, spec, plugin_);
    CheckpointSpec resealed = spec;
    resealed.seal = "MUNGE:AwQDAAAsecond=:";
    Checkpoint again = open_checkpoint(spool_, resealed, plugin_);
    EXPECT_EQ(again.history.size(), 1u);
    EXPECT_EQ(again.spec.seal, spec.seal);
    resealed.seal.clear();
    EXPECT_EQ(open_checkpoint(spool_, resealed, plugin_).history.size(), 1u);
    resealed.options = {"approve", "reject"};  // but not another spec
    resealed.seal = spec.seal;
    EXPECT_HAWF_ERROR(open_checkpoint(spool_, resealed, plugin_), K::Conflict, "already exists with other options");
}

TEST_F(ActionsTest, OpenConflictsForAnotherSpec) {
    const CheckpointSpec spec = make_spec("100:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    CheckpointSpec other = spec;
    other.options = {"approve", "reject"};
    EXPECT_HAWF_ERROR(open_checkpoint(spool_, other, plugin_), K::Conflict, "100:eval");
    other = spec;
    other.scope = Scope::Step;
    EXPECT_HAWF_ERROR(open_checkpoint(spool_, other, plugin_), K::Conflict, "already exists");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 1u);
}

TEST_F(ActionsTest, OpenConflictsOnceNoLongerRunning) {
    const CheckpointSpec spec = make_spec("100:eval", me_);
    make_pending(spec);
    EXPECT_HAWF_ERROR(open_checkpoint(spool_, spec, plugin_), K::Conflict, "100:eval is pending");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 2u);
}

TEST_F(ActionsTest, OpenRefusesBadSpec) {
    CheckpointSpec spec = make_spec("100:eval", me_);
    spec.timeout_s = 60;  // without a default
    EXPECT_HAWF_ERROR(open_checkpoint(spool_, spec, plugin_), K::Usage, "--hawf-default");
    EXPECT_FALSE(spool_.exists(me_, spec.id));
}

TEST_F(ActionsTest, EndWithExitZeroIsPendingAndIndexed) {
    const CheckpointSpec spec = make_spec("101:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    const Checkpoint c = end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_GT(c.pending_since, 0);
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));
}

TEST_F(ActionsTest, EndWithNonZeroIsFailedAndNotIndexed) {
    const CheckpointSpec spec = make_spec("102:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    const int status = 3 << 8;  // exit 3
    const Checkpoint c = end_checkpoint(spool_, me_, spec.id, status, plugin_);
    EXPECT_EQ(c.state, State::Failed);
    EXPECT_EQ(c.history.back().type, EventType::Failed);
    EXPECT_EQ(c.history.back().exit_status, status);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::Conflict, "failed");
}

TEST_F(ActionsTest, EndKilledBySignalIsFailed) {
    const CheckpointSpec spec = make_spec("103:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    EXPECT_EQ(end_checkpoint(spool_, me_, spec.id, SIGKILL, plugin_).state, State::Failed);
}

TEST_F(ActionsTest, EndTwiceConflicts) {
    const CheckpointSpec spec = make_spec("104:eval", me_);
    make_pending(spec);
    EXPECT_HAWF_ERROR(end_checkpoint(spool_, me_, spec.id, 0, plugin_), K::Conflict, "104:eval");
}

TEST_F(ActionsTest, EndMissingIsNotFound) {
    EXPECT_HAWF_ERROR(end_checkpoint(spool_, me_, parse_checkpoint_id("1:none"), 0, plugin_), K::NotFound, "1:none");
}

// ---------------------------------------------------------------- decide, amend, revoke

TEST_F(ActionsTest, DecideAmendRevokeCycle) {
    const CheckpointSpec spec = make_spec("200:eval", me_);
    make_pending(spec);

    Checkpoint c = decide(spool_, me_, spec.id, Decision{"retry", {{"lr", "1e-4"}}, "lower lr"}, DecideMode::Decide,
                          cli_, limits_);
    EXPECT_EQ(c.state, State::Decided);
    ASSERT_TRUE(c.decision());
    EXPECT_EQ(c.decision()->choice, "retry");
    EXPECT_EQ(c.decision()->params.at("lr"), "1e-4");
    EXPECT_EQ(c.decision()->comment, "lower lr");
    EXPECT_EQ(c.decided->via, Via::Cli);
    EXPECT_EQ(c.decided->by_uid, me_);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));

    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::Conflict, "--amend");
    EXPECT_EQ(spool_.load(me_, spec.id).decision()->choice, "retry");

    c = decide(spool_, me_, spec.id, Decision{"approve", {{"mode", "slow"}}, ""}, DecideMode::Amend, cli_, limits_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "approve");
    EXPECT_EQ(c.history.back().type, EventType::Amended);

    c = revoke(spool_, me_, spec.id, cli_);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_FALSE(c.decision());
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));

    c = decide(spool_, me_, spec.id, Decision{"reject", {}, "no"}, DecideMode::Decide, cli_, limits_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "reject");
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));

    std::vector<EventType> types;
    for (const auto& e : spool_.load(me_, spec.id).history) types.push_back(e.type);
    EXPECT_EQ(types, (std::vector<EventType>{EventType::Opened, EventType::Pending, EventType::Decided,
                                             EventType::Amended, EventType::Revoked, EventType::Decided}));
}

TEST_F(ActionsTest, AmendAndRevokeNeedADecision) {
    const CheckpointSpec spec = make_spec("201:eval", me_);
    make_pending(spec);
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Amend, cli_, limits_),
                      K::Conflict, "201:eval is pending");
    EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, cli_), K::Conflict, "201:eval is pending");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 2u);
}

TEST_F(ActionsTest, DecideWhileRunningConflicts) {
    const CheckpointSpec spec = make_spec("202:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::Conflict, "running");
}

TEST_F(ActionsTest, NothingChangesOnceApplied) {
    const CheckpointSpec spec = make_spec("203:eval", me_);
    make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_EQ(mark_applied(spool_, me_, spec.id, "204", cli_).state, State::Applied);
    EXPECT_EQ(mark_applied(spool_, me_, spec.id, "205", cli_).history.size(), 4u);  // once only
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Amend, cli_, limits_),
                      K::Conflict, "already used it");
    EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, cli_), K::Conflict, "already used it");
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::Conflict, "applied");
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Applied);
}

TEST_F(ActionsTest, DecideRefusesBadDecisionWithoutWriting) {
    const CheckpointSpec spec = make_spec("204:eval", me_);
    make_pending(spec);
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"launch", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::Usage, "\"launch\"");
    EXPECT_HAWF_ERROR(
        decide(spool_, me_, spec.id, Decision{"approve", {{"gpus", "8"}}, ""}, DecideMode::Decide, cli_, limits_),
        K::Usage, "\"gpus\"");
    EXPECT_HAWF_ERROR(
        decide(spool_, me_, spec.id, Decision{"approve", {{"lr", "nan"}}, ""}, DecideMode::Decide, cli_, limits_),
        K::Usage, "\"nan\"");
    EXPECT_HAWF_ERROR(
        decide(spool_, me_, spec.id, Decision{"approve", {{"mode", "medium"}}, ""}, DecideMode::Decide, cli_, limits_),
        K::Usage, "\"medium\"");
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, std::string("bad \xed\xa0\x80 utf8")},
                             DecideMode::Decide, cli_, limits_),
                      K::Usage, "comment");
    const Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.history.size(), 2u);
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));
}

TEST_F(ActionsTest, DecisionValuesStoredVerbatim) {
    CheckpointSpec spec = make_spec("205:eval", me_);
    spec.params = parse_param_specs("note:string");
    make_pending(spec);
    const std::string note = "line1\nline2 \"q\" 'x' a=b $(id) \xe2\x82\xac";
    decide(spool_, me_, spec.id, Decision{"approve", {{"note", note}}, "c=\"1\"\n"}, DecideMode::Decide, cli_,
           limits_);
    const Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.decision()->params.at("note"), note);
    EXPECT_EQ(c.decision()->comment, "c=\"1\"\n");
}

TEST_F(ActionsTest, DecideMissingIsNotFound) {
    EXPECT_HAWF_ERROR(decide(spool_, me_, parse_checkpoint_id("9:none"), Decision{"approve", {}, ""},
                             DecideMode::Decide, cli_, limits_),
                      K::NotFound, "9:none");
}

// ---------------------------------------------------------------- who may decide

// The owner is named as the user database knows the uid (nobody exists everywhere).
TEST(CheckMayDecide, OwnerAndRootOnly) {
    CheckpointSpec spec = make_spec("300:eval", 65534);
    EXPECT_NO_THROW(check_may_decide(spec, 65534));
    EXPECT_NO_THROW(check_may_decide(spec, 0));
    EXPECT_HAWF_ERROR(check_may_decide(spec, 1002), K::Denied,
                      "300:eval belongs to nobody: only nobody and root may decide it");
}

TEST_F(ActionsTest, AnotherUidMayNotDecideOrRevoke) {
    const CheckpointSpec spec = make_spec("301:eval", me_);
    make_pending(spec);
    const uid_t stranger = me_ == 4242 ? 4243 : 4242;
    const Actor mallory{"mallory", stranger, Via::Cli, "login1"};
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, mallory, limits_),
                      K::Denied, "301:eval");
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, mallory), K::Denied, "301:eval");
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Amend, mallory, limits_),
                      K::Denied, "301:eval");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 3u);
}

// ---------------------------------------------------------------- races

// Forked processes released together decide the same pending checkpoint: exactly
// one wins, every other one gets a Conflict, and the log holds one decision.
TEST_F(ActionsTest, RacingProcessesOneWinner) {
    constexpr int rounds = 3;
    constexpr int racers = 12;
    for (int round = 0; round < rounds; ++round) {
        const CheckpointSpec spec = make_spec("400_" + std::to_string(round) + ":eval", me_);
        make_pending(spec);
        int gate[2];
        ASSERT_EQ(pipe(gate), 0);
        std::map<pid_t, int> who;
        for (int i = 0; i < racers; ++i) {
            pid_t pid = fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                close(gate[1]);
                char c;
                while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
                }
                int rc = 30;
                try {
                    decide(spool_, me_, spec.id,
                           Decision{i % 2 ? "approve" : "reject", {}, "racer " + std::to_string(i)},
                           DecideMode::Decide, cli_, limits_);
                    rc = 0;
                } catch (const Error& e) {
                    const std::string msg = e.what();
                    rc = e.kind() == K::Conflict && msg.find("--amend") != std::string::npos ? 10
                                                                                             : 20 + int(e.kind());
                    if (rc != 10) fprintf(stderr, "racer %d: %s\n", i, msg.c_str());
                } catch (const std::exception& e) {
                    fprintf(stderr, "racer %d: %s\n", i, e.what());
                }
                _exit(rc);
            }
            who[pid] = i;
        }
        close(gate[0]);
        close(gate[1]);  // release them all at once
        int winners = 0, conflicts = 0, winner = -1;
        std::vector<int> others;
        for (int i = 0; i < racers; ++i) {
            int status = 0;
            pid_t pid = wait(&status);
            ASSERT_GT(pid, 0);
            const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            if (rc == 0) ++winners, winner = who[pid];
            else if (rc == 10) ++conflicts;
            else others.push_back(rc);
        }
        EXPECT_EQ(winners, 1) << "round " << round;
        EXPECT_EQ(conflicts, racers - 1) << "round " << round;
        EXPECT_TRUE(others.empty()) << "unexpected exit codes, first " << (others.empty() ? 0 : others[0]);
        const Checkpoint c = spool_.load(me_, spec.id);
        EXPECT_EQ(count_events(c, EventType::Decided), 1u);
        EXPECT_EQ(c.history.size(), 3u);
        EXPECT_EQ(c.state, State::Decided);
        ASSERT_TRUE(c.decision());
        EXPECT_EQ(c.decision()->comment, "racer " + std::to_string(winner));
        EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
        for (const auto& entry : std::filesystem::recursive_directory_iterator(root_.path()))
            EXPECT_EQ(entry.path().filename().string().rfind(".tmp.", 0), std::string::npos) << entry.path();
    }
}

TEST_F(ActionsTest, RacingThreadsOneWinner) {
    constexpr int racers = 8;
    const CheckpointSpec spec = make_spec("401:eval", me_);
    make_pending(spec);
    std::atomic<bool> go{false};
    std::atomic<int> winners{0}, conflicts{0}, others{0};
    std::mutex mutex;
    std::string other_message;
    std::vector<std::thread> threads;
    for (int i = 0; i < racers; ++i)
        threads.emplace_back([&, i] {
            while (!go) std::this_thread::yield();
            try {
                decide(spool_, me_, spec.id, Decision{"approve", {}, std::to_string(i)}, DecideMode::Decide, cli_,
                       limits_);
                ++winners;
            } catch (const Error& e) {
                const bool conflict = e.kind() == K::Conflict && std::string(e.what()).find("--amend") != std::string::npos;
                (conflict ? conflicts : others)++;
                if (!conflict) {
                    std::lock_guard<std::mutex> lock(mutex);
                    other_message = e.what();
                }
            } catch (const std::exception& e) {
                ++others;
                std::lock_guard<std::mutex> lock(mutex);
                other_message = e.what();
            }
        });
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(winners, 1);
    EXPECT_EQ(conflicts, racers - 1);
    EXPECT_EQ(others, 0) << other_message;
    EXPECT_EQ(count_events(spool_.load(me_, spec.id), EventType::Decided), 1u);
}

// Several tasks of a step open the same checkpoint at once: all succeed, one Opened.
TEST_F(ActionsTest, RacingOpensAreIdempotent) {
    constexpr int racers = 8;
    const CheckpointSpec spec = make_spec("402:eval", me_);
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    for (int i = 0; i < racers; ++i) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(gate[1]);
            char c;
            while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
            }
            int rc = 1;
            try {
                rc = open_checkpoint(spool_, spec, plugin_).state == State::Running ? 0 : 2;
            } catch (...) {
            }
            _exit(rc);
        }
    }
    close(gate[0]);
    close(gate[1]);
    int ok = 0;
    for (int i = 0; i < racers; ++i) {
        int status = 0;
        ASSERT_GT(wait(&status), 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    EXPECT_EQ(ok, racers);
    const Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.history.size(), 1u);
    EXPECT_TRUE(spool_.open_files_dir(me_, spec.id));
}

// ---------------------------------------------------------------- follow-ups

FollowUp followup_of(const CheckpointSpec& spec, const std::string& job, std::vector<std::string> on = {}) {
    return FollowUp{spec.id, spec.owner_uid, job, "/home/u/" + job + ".sbatch", std::move(on)};
}

CheckpointSpec with_timeout(CheckpointSpec spec, std::int64_t seconds, const std::string& fallback) {
    spec.timeout_s = seconds;
    spec.default_choice = fallback;
    return spec;
}

TEST_F(ActionsTest, AddFollowUpBeforeOpenCreatesAnExpectedCheckpoint) {
    const CheckpointSpec spec = make_spec("700:eval", me_);
    Checkpoint c = add_followup(spool_, followup_of(spec, "701", {"retry"}), cli_);
    EXPECT_EQ(c.state, State::Expected);
    EXPECT_TRUE(spool_.exists(me_, spec.id));
    ASSERT_EQ(c.history.size(), 1u);
    EXPECT_EQ(c.history[0].type, EventType::FollowUpAdded);
    EXPECT_EQ(c.history[0].via, Via::Cli);
    ASSERT_EQ(c.followups.size(), 1u);
    EXPECT_EQ(c.followups[0].job, "701");
    EXPECT_EQ(c.followups[0].on, (std::vector<std::string>{"retry"}));
    EXPECT_EQ(c.followups[0].script, "/home/u/701.sbatch");
    c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.state, State::Expected);
    EXPECT_EQ(c.spec.id, spec.id);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    // Nothing but opening and more follow-ups is possible yet.
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_),
                      K::NotFound, "not opened yet");
    EXPECT_HAWF_ERROR(end_checkpoint(spool_, me_, spec.id, 0, plugin_), K::NotFound, "700:eval");
    EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, cli_), K::NotFound, "700:eval");
    EXPECT_HAWF_ERROR(mark_applied(spool_, me_, spec.id, "701", plugin_), K::NotFound, "700:eval");
    EXPECT_HAWF_ERROR(take_default(spool_, me_, spec.id, std::time(nullptr) + 1000000, plugin_), K::NotFound,
                      "700:eval");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 1u);
}

TEST_F(ActionsTest, AddFollowUpIsIdempotentForTheSameJob) {
    const CheckpointSpec spec = make_spec("702:eval", me_);
    add_followup(spool_, followup_of(spec, "703"), cli_);
    Checkpoint c = add_followup(spool_, followup_of(spec, "703"), cli_);
    EXPECT_EQ(c.history.size(), 1u);
    c = add_followup(spool_, followup_of(spec, "704", {"reject"}), cli_);
    EXPECT_EQ(c.history.size(), 2u);
    EXPECT_EQ(c.followups.size(), 2u);
    open_checkpoint(spool_, spec, plugin_);
    c = add_followup(spool_, followup_of(spec, "704", {"reject"}), cli_);
    EXPECT_EQ(c.history.size(), 3u);  // still once
    EXPECT_EQ(c.followups.size(), 2u);
}

TEST_F(ActionsTest, OpenAfterFollowUpsRunsAndKeepsThem) {
    const CheckpointSpec spec = make_spec("705:eval", me_);
    add_followup(spool_, followup_of(spec, "706"), cli_);
    add_followup(spool_, followup_of(spec, "707", {"reject", "retry"}), cli_);
    Checkpoint c = open_checkpoint(spool_, spec, plugin_);
    EXPECT_EQ(c.state, State::Running);
    EXPECT_EQ(to_json(c.spec), to_json(spec));
    ASSERT_EQ(c.followups.size(), 2u);
    EXPECT_EQ(c.followups[0].job, "706");
    EXPECT_EQ(c.followups[1].job, "707");
    EXPECT_EQ(c.releasing_choices(c.followups[0]), (std::vector<std::string>{"approve"}));
    ASSERT_EQ(c.history.size(), 3u);
    EXPECT_EQ(c.history[2].type, EventType::Opened);
    EXPECT_TRUE(spool_.open_files_dir(me_, spec.id));
    // Another node opening it too changes nothing; the usual life follows.
    EXPECT_EQ(open_checkpoint(spool_, spec, plugin_).history.size(), 3u);
    c = end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));
    EXPECT_EQ(c.followups.size(), 2u);
}

TEST_F(ActionsTest, AddFollowUpWhileRunningAndPendingKeepsTheIndex) {
    const CheckpointSpec spec = make_spec("708:eval", me_);
    open_checkpoint(spool_, spec, plugin_);
    Checkpoint c = add_followup(spool_, followup_of(spec, "709"), cli_);
    EXPECT_EQ(c.state, State::Running);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    c = add_followup(spool_, followup_of(spec, "710"), cli_);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.followups.size(), 2u);
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));
    c = decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
}

TEST_F(ActionsTest, AddFollowUpRefusedOnceDecidedAppliedOrFailed) {
    const CheckpointSpec spec = make_spec("711:eval", me_);
    make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    EXPECT_HAWF_ERROR(add_followup(spool_, followup_of(spec, "712"), cli_), K::Conflict, "711:eval is decided");
    mark_applied(spool_, me_, spec.id, "799", plugin_);
    EXPECT_HAWF_ERROR(add_followup(spool_, followup_of(spec, "712"), cli_), K::Conflict, "711:eval is applied");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 4u);
    EXPECT_TRUE(spool_.load(me_, spec.id).followups.empty());

    const CheckpointSpec failing = make_spec("713:eval", me_);
    open_checkpoint(spool_, failing, plugin_);
    end_checkpoint(spool_, me_, failing.id, 1 << 8, plugin_);
    EXPECT_HAWF_ERROR(add_followup(spool_, followup_of(failing, "714"), cli_), K::Conflict, "cannot add a follow-up");
    EXPECT_EQ(spool_.load(me_, failing.id).history.size(), 2u);
}

TEST_F(ActionsTest, TakeDefaultOnlyAfterTheDeadline) {
    const CheckpointSpec spec = with_timeout(make_spec("720:eval", me_), 3600, "reject");
    open_checkpoint(spool_, spec, plugin_);
    const Actor timeout{"timeout", me_, Via::Timeout, "node2"};
    // Running: no deadline yet.
    EXPECT_EQ(take_default(spool_, me_, spec.id, std::time(nullptr) + 100000, timeout).state, State::Running);
    Checkpoint c = end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    const std::int64_t deadline = c.deadline();
    ASSERT_EQ(deadline, c.pending_since + 3600);
    c = take_default(spool_, me_, spec.id, deadline - 1, timeout);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.history.size(), 2u);
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));

    c = take_default(spool_, me_, spec.id, deadline, timeout);
    EXPECT_EQ(c.state, State::Decided);
    ASSERT_TRUE(c.decision());
    EXPECT_EQ(c.decision()->choice, "reject");
    EXPECT_TRUE(c.decision()->params.empty());
    EXPECT_EQ(c.decided->by, "timeout");
    EXPECT_EQ(c.decided->via, Via::Timeout);
    EXPECT_EQ(c.decided->host, "node2");
    EXPECT_EQ(c.history.back().type, EventType::Decided);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    // Once decided, nothing more.
    c = take_default(spool_, me_, spec.id, deadline + 100000, timeout);
    EXPECT_EQ(c.history.size(), 3u);
    EXPECT_EQ(count_events(spool_.load(me_, spec.id), EventType::Decided), 1u);
}

TEST_F(ActionsTest, TakeDefaultLeavesAHumanDecisionAlone) {
    const CheckpointSpec spec = with_timeout(make_spec("721:eval", me_), 60, "reject");
    make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"retry", {{"lr", "0.5"}}, "by hand"}, DecideMode::Decide, cli_, limits_);
    const Checkpoint c = take_default(spool_, me_, spec.id, std::time(nullptr) + 100000, plugin_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "retry");
    EXPECT_EQ(c.decided->via, Via::Cli);
    EXPECT_EQ(c.history.size(), 3u);
}

TEST_F(ActionsTest, TakeDefaultWithoutTimeoutNeverDecides) {
    const CheckpointSpec spec = make_spec("722:eval", me_);
    make_pending(spec);
    const Checkpoint c = take_default(spool_, me_, spec.id, std::time(nullptr) + 10 * 365 * 86400, plugin_);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.history.size(), 2u);
}

TEST_F(ActionsTest, TakeDefaultAfterRevokeUsesTheFirstPendingTime) {
    const CheckpointSpec spec = with_timeout(make_spec("723:eval", me_), 600, "approve");
    const Checkpoint pending = make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Decide, cli_, limits_);
    revoke(spool_, me_, spec.id, cli_);
    const Checkpoint c = take_default(spool_, me_, spec.id, pending.pending_since + 600, plugin_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decision()->choice, "approve");
}

// Right after the deadline, follow-ups (take_default) and people (decide) race:
// one decision is written, and everybody ends up seeing that same one.
TEST_F(ActionsTest, RacingDefaultAndDecideAgreeOnOneDecision) {
    constexpr int rounds = 4;
    constexpr int racers = 10;
    for (int round = 0; round < rounds; ++round) {
        const CheckpointSpec spec =
            with_timeout(make_spec("730_" + std::to_string(round) + ":eval", me_), 60, "reject");
        const Checkpoint pending = make_pending(spec);
        const std::int64_t now = pending.deadline() + 1;
        int gate[2], report[2];
        ASSERT_EQ(pipe(gate), 0);
        ASSERT_EQ(pipe(report), 0);
        for (int i = 0; i < racers; ++i) {
            pid_t pid = fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                close(gate[1]);
                close(report[0]);
                char c;
                while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
                }
                std::string seen = "error";
                try {
                    Checkpoint after;
                    if (i % 2 == 0) {
                        after = take_default(spool_, me_, spec.id, now, Actor{"timeout", me_, Via::Timeout, "n"});
                    } else {
                        try {
                            after = decide(spool_, me_, spec.id, Decision{"approve", {}, "human " + std::to_string(i)},
                                           DecideMode::Decide, cli_, limits_);
                        } catch (const Error& e) {
                            if (e.kind() != K::Conflict) throw;
                            after = spool_.load(me_, spec.id);
                        }
                    }
                    const Decision* d = after.decision();
                    seen = d ? d->choice + "|" + d->comment + "|" + std::to_string(after.decided->seq) : "none";
                } catch (const std::exception& e) {
                    seen = std::string("error ") + e.what();
                }
                seen += "\n";
                const ssize_t n = write(report[1], seen.data(), seen.size());
                _exit(n == static_cast<ssize_t>(seen.size()) ? 0 : 1);
            }
        }
        close(gate[0]);
        close(report[1]);
        close(gate[1]);  // release them all at once
        std::string lines;
        char buf[4096];
        for (;;) {
            const ssize_t n = read(report[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            lines.append(buf, static_cast<std::size_t>(n));
        }
        close(report[0]);
        for (int i = 0; i < racers; ++i) {
            int status = 0;
            ASSERT_GT(wait(&status), 0);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        const Checkpoint c = spool_.load(me_, spec.id);
        EXPECT_EQ(count_events(c, EventType::Decided), 1u) << "round " << round;
        EXPECT_EQ(c.history.size(), 3u);
        ASSERT_TRUE(c.decision());
        const std::string truth =
            c.decision()->choice + "|" + c.decision()->comment + "|" + std::to_string(c.decided->seq) + "\n";
        std::string expected;
        for (int i = 0; i < racers; ++i) expected += truth;
        EXPECT_EQ(lines, expected) << "round " << round;
        if (c.decided->via == Via::Timeout) {
            EXPECT_EQ(c.decision()->choice, "reject");
            EXPECT_EQ(c.decided->by, "timeout");
        } else {
            EXPECT_EQ(c.decision()->choice, "approve");
        }
        EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    }
}

TEST_F(ActionsTest, MarkAppliedRecordsTheJobOnce) {
    const CheckpointSpec spec = make_spec("740:eval", me_);
    make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    Checkpoint c = mark_applied(spool_, me_, spec.id, "741", plugin_);
    EXPECT_EQ(c.state, State::Applied);
    EXPECT_EQ(c.history.back().type, EventType::Applied);
    EXPECT_EQ(c.history.back().job, "741");
    EXPECT_EQ(c.decision()->choice, "approve");  // the decision stays readable
    c = mark_applied(spool_, me_, spec.id, "742", plugin_);
    EXPECT_EQ(c.history.size(), 4u);
    EXPECT_EQ(c.history.back().job, "741");
    EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Amend, cli_, limits_),
                      K::Conflict, "a follow-up already used it");
    EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, cli_), K::Conflict, "a follow-up already used it");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 4u);
}

// A follow-up starting races a revoke or an amend: what it applies must still be a
// decision, and one it is for; otherwise nothing is written.
TEST_F(ActionsTest, MarkAppliedNeedsADecisionInForce) {
    const CheckpointSpec spec = make_spec("743:eval", me_);
    make_pending(spec);
    EXPECT_HAWF_ERROR(mark_applied(spool_, me_, spec.id, "744", plugin_), K::Conflict, "743:eval is pending");
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    revoke(spool_, me_, spec.id, cli_);
    EXPECT_HAWF_ERROR(mark_applied(spool_, me_, spec.id, "744", plugin_), K::Conflict, "743:eval is pending");
    const Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(count_events(c, EventType::Applied), 0u);
}

TEST_F(ActionsTest, MarkAppliedRefusesAFollowUpTheDecisionIsNotFor) {
    const CheckpointSpec spec = make_spec("745:eval", me_);
    add_followup(spool_, followup_of(spec, "746"), cli_);              // first option: approve
    add_followup(spool_, followup_of(spec, "747", {"reject"}), cli_);
    make_pending(spec);
    decide(spool_, me_, spec.id, Decision{"approve", {}, ""}, DecideMode::Decide, cli_, limits_);
    decide(spool_, me_, spec.id, Decision{"reject", {}, ""}, DecideMode::Amend, cli_, limits_);
    EXPECT_HAWF_ERROR(mark_applied(spool_, me_, spec.id, "746", plugin_), K::Conflict, "\"reject\"");
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Decided);
    Checkpoint c = mark_applied(spool_, me_, spec.id, "747", plugin_);
    EXPECT_EQ(c.state, State::Applied);
    EXPECT_EQ(c.history.back().job, "747");
    // Applied for "reject": the approve follow-up still may not use it.
    EXPECT_HAWF_ERROR(mark_applied(spool_, me_, spec.id, "746", plugin_), K::Conflict, "\"reject\"");
    EXPECT_EQ(mark_applied(spool_, me_, spec.id, "747", plugin_).history.size(), c.history.size());
}

// ---------------------------------------------------------------- find_owner

// Whose checkpoint: Slurm's word (the fake squeue's), never the spool's.
class FindOwner : public ::testing::Test {
protected:
    void job_of(const std::string& job, uid_t uid) const {
        fake_.set_output("squeue." + job, test::squeue_line(uid, "PENDING", 0, "N/A", "JobHeldUser"));
    }
    test::FakeSlurm fake_;
    Slurm slurm_{fake_.bindir()};
};

TEST_F(FindOwner, TheJobsUserAsSlurmKnowsIt) {
    job_of("600", 65534);
    const CheckpointId id = parse_checkpoint_id("600:eval");
    for (uid_t caller : {uid_t(0), uid_t(65534), uid_t(1000)}) EXPECT_EQ(find_owner(slurm_, id, caller), 65534u);
    EXPECT_EQ(find_owner(slurm_, id, 0, 65534u), 65534u);
    EXPECT_HAWF_ERROR(find_owner(slurm_, id, 0, 1000u), K::Usage, "belongs to " + user_name(65534));
    EXPECT_HAWF_ERROR(find_owner(slurm_, id, 1000, 1000u), K::Usage, "--user");
    job_of("601_3", 1000);
    EXPECT_EQ(find_owner(slurm_, parse_checkpoint_id("601_3:eval"), 65534), 1000u);
}

TEST_F(FindOwner, AJobSlurmForgotIsTheCallers) {
    const CheckpointId id = parse_checkpoint_id("700:eval");
    EXPECT_EQ(find_owner(slurm_, id, 1000), 1000u);
    EXPECT_EQ(find_owner(slurm_, id, 1000, 1000u), 1000u);
    EXPECT_HAWF_ERROR(find_owner(slurm_, id, 1000, 65534u), K::Denied, "only root");
    EXPECT_HAWF_ERROR(find_owner(slurm_, id, 0), K::Usage, "--user");
    EXPECT_EQ(find_owner(slurm_, id, 0, 65534u), 65534u);
}

TEST_F(FindOwner, SlurmUnreachableIsAnErrorNotAGuess) {
    fake_.fail("squeue.800", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n");
    EXPECT_HAWF_ERROR(find_owner(slurm_, parse_checkpoint_id("800:eval"), 1000), K::System, "Unable to contact");
}

TEST(CheckMayRead, OwnerAndRootOnly) {
    const CheckpointId id = parse_checkpoint_id("9:eval");
    EXPECT_NO_THROW(check_may_read(id, 1000, 1000));
    EXPECT_NO_THROW(check_may_read(id, 1000, 0));
    EXPECT_HAWF_ERROR(check_may_read(id, 1000, 1001), K::Denied, "only " + user_name(1000) + " and root");
}

// ---------------------------------------------------------------- names

TEST(UserName, KnownAndUnknown) {
    EXPECT_EQ(user_name(0), "root");
    EXPECT_EQ(user_name(3999999999u), "3999999999");
    const Actor a = current_actor(Via::Cli);
    EXPECT_EQ(a.uid, getuid());
    EXPECT_EQ(a.via, Via::Cli);
    EXPECT_EQ(a.user, user_name(getuid()));
    EXPECT_FALSE(a.host.empty());
}

// ---------------------------------------------------------------- delegated mode (hawfd's actions)

// What the record takes for a credential; whether munge does is review.hpp's test.
std::string credential(int n) { return "MUNGE:AwQDAA" + std::to_string(n) + "=:"; }

class DelegatedTest : public ActionsTest {
protected:
    // Owner: this process's uid; reviewers bob and carol (the record does not ask NSS).
    CheckpointSpec delegated(const std::string& id, std::uint32_t quorum = 2) {
        CheckpointSpec spec = make_spec(id, me_);
        spec.reviewers = {"bob", "carol", "@safety"};
        spec.quorum = quorum;
        return spec;
    }
    Actor reviewer(const std::string& name, uid_t uid) { return Actor{name, uid, Via::Hawfd, "svc1"}; }

    Actor bob_ = reviewer("bob", 5001);
    Actor carol_ = reviewer("carol", 5002);
    Actor dave_ = reviewer("dave", 5003);
    Actor hawfd_{"root", 0, Via::Cli, "svc1"};  // record_quorum records it via hawfd whatever it is given
    const Decision approve_{"approve", {{"lr", "0.1"}}, "ok"};
    const std::string seal_ = credential(0);
};

TEST_F(DelegatedTest, OnlyHawfdTakesADelegatedDefaultWithItsSeal) {
    const CheckpointSpec spec = with_timeout(delegated("810:eval"), 60, "reject");
    const Checkpoint pending = make_pending(spec);
    const Actor timeout{"timeout", me_, Via::Timeout, "svc1"};
    const std::int64_t late = pending.deadline() + 1;
    // A follow-up or hawf-await (no seal) cannot: delivery would refuse its decision.
    EXPECT_HAWF_ERROR(take_default(spool_, me_, spec.id, late, timeout), K::Conflict,
                      "cannot take the default of 810:eval: it has reviewers, hawfd takes its default");
    EXPECT_EQ(take_default(spool_, me_, spec.id, pending.deadline() - 1, timeout, seal_).state, State::Pending);
    const Checkpoint c = take_default(spool_, me_, spec.id, late, timeout, seal_);
    ASSERT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decided->via, Via::Timeout);
    EXPECT_EQ(c.decided->credential, seal_);
    EXPECT_TRUE(c.decided->approvals.empty());
    EXPECT_EQ(to_json(*c.decision()), to_json(default_decision(spec)));
    // Approvals come too late now.
    EXPECT_HAWF_ERROR(approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_), K::Conflict, "");
}

TEST_F(DelegatedTest, ApprovalsReachAQuorumThatHawfdRecords) {
    const CheckpointSpec spec = delegated("800:eval");
    make_pending(spec);
    Checkpoint c = approve(spool_, me_, spec.id, Decision{"reject", {}, ""}, bob_, credential(1), limits_);
    EXPECT_EQ(c.state, State::Pending);
    ASSERT_EQ(c.approvals.size(), 1u);
    EXPECT_EQ(c.history.back().type, EventType::Approved);
    EXPECT_EQ(c.history.back().credential, credential(1));
    EXPECT_EQ(c.history.back().by, "bob");
    EXPECT_EQ(c.history.back().via, Via::Hawfd);
    EXPECT_FALSE(reached_quorum(c));
    c = approve(spool_, me_, spec.id, approve_, bob_, credential(2), limits_);  // bob changes his mind
    EXPECT_EQ(c.approvals.size(), 1u);
    EXPECT_EQ(c.approvals[0].seq, 4u);
    c = approve(spool_, me_, spec.id, approve_, carol_, credential(3), limits_);
    const std::optional<Quorum> q = reached_quorum(c);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (std::vector<std::uint64_t>{4, 5}));
    EXPECT_TRUE(contains(spool_.pending_ids(me_), spec.id));

    c = record_quorum(spool_, me_, spec.id, *q, seal_, hawfd_);
    EXPECT_EQ(c.state, State::Decided);
    EXPECT_EQ(c.decided->via, Via::Hawfd);
    EXPECT_EQ(c.decided->by, "root");
    EXPECT_EQ(c.decided->approvals, q->approvals);
    EXPECT_EQ(c.decided->credential, seal_);
    EXPECT_EQ(c.decision()->choice, "approve");
    EXPECT_EQ(c.decision()->params, approve_.params);
    EXPECT_EQ(c.decision()->comment, "ok\nok");
    EXPECT_EQ(c.decided_by(), "bob,carol");
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    // Frozen: approvals and withdrawals come too late.
    EXPECT_HAWF_ERROR(approve(spool_, me_, spec.id, approve_, dave_, credential(4), limits_), K::Conflict,
                      "cannot approve 800:eval: it is decided (\"approve\" by bob,carol at");
    EXPECT_HAWF_ERROR(withdraw(spool_, me_, spec.id, bob_, credential(5)), K::Conflict,
                      "cannot withdraw an approval of 800:eval: it is decided");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 6u);
}

TEST_F(DelegatedTest, WithdrawNeedsAnApprovalInForce) {
    const CheckpointSpec spec = delegated("801:eval");
    make_pending(spec);
    EXPECT_HAWF_ERROR(withdraw(spool_, me_, spec.id, bob_, credential(1)), K::Conflict,
                      "bob has no approval of 801:eval to withdraw");
    approve(spool_, me_, spec.id, approve_, bob_, credential(2), limits_);
    Checkpoint c = withdraw(spool_, me_, spec.id, bob_, credential(3));
    EXPECT_TRUE(c.approvals.empty());
    EXPECT_EQ(c.history.back().type, EventType::Withdrawn);
    EXPECT_EQ(c.history.back().credential, credential(3));
    EXPECT_HAWF_ERROR(withdraw(spool_, me_, spec.id, bob_, credential(4)), K::Conflict, "no approval");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 4u);
}

// Approvals keep a checkpoint pending: they leave the pending index alone. (Racing a
// decision, an approval that re-added the entry after the decider had removed it
// left a decided checkpoint in the index for good: seen in bench/ review-race.)
TEST_F(DelegatedTest, ApprovalsLeaveThePendingIndexAlone) {
    const CheckpointSpec spec = delegated("809:eval");
    make_pending(spec);
    ASSERT_TRUE(contains(spool_.pending_ids(me_), spec.id));
    spool_.set_pending(me_, spec.id, false);  // as a decider racing this approval does
    approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_);
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
    withdraw(spool_, me_, spec.id, bob_, credential(2));
    EXPECT_FALSE(contains(spool_.pending_ids(me_), spec.id));
}

TEST_F(DelegatedTest, ApproveRefusesWhatHawfdMustNotRecord) {
    const CheckpointSpec owner_mode = make_spec("802:eval", me_);
    make_pending(owner_mode);
    EXPECT_HAWF_ERROR(approve(spool_, me_, owner_mode.id, approve_, bob_, credential(1), limits_), K::Conflict,
                      "cannot approve 802:eval: it has no reviewers, its owner decides");
    const CheckpointSpec spec = delegated("803:eval");
    open_checkpoint(spool_, spec, plugin_);
    EXPECT_HAWF_ERROR(approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_), K::Conflict,
                      "cannot approve 803:eval: it is running");
    end_checkpoint(spool_, me_, spec.id, 0, plugin_);
    EXPECT_HAWF_ERROR(approve(spool_, me_, spec.id, Decision{"maybe", {}, ""}, bob_, credential(1), limits_),
                      K::Usage, "bad choice \"maybe\"");
    EXPECT_HAWF_ERROR(approve(spool_, me_, spec.id, approve_, bob_, "not a credential", limits_), K::Untrusted,
                      "not a munge credential");
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 2u);
    // The same request again (hawfd retrying after a crash): recorded once.
    approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_);
    EXPECT_EQ(approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_).history.size(), 3u);
}

TEST_F(DelegatedTest, RecordQuorumOnlyForTheApprovalsInForce) {
    const CheckpointSpec spec = delegated("804:eval");
    make_pending(spec);
    approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_);
    const Checkpoint c = approve(spool_, me_, spec.id, approve_, carol_, credential(2), limits_);
    const Quorum q = *reached_quorum(c);
    withdraw(spool_, me_, spec.id, carol_, credential(3));  // meanwhile
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, q, seal_, hawfd_), K::Conflict,
                      "the approvals in force at 804:eval no longer make this decision");
    approve(spool_, me_, spec.id, approve_, carol_, credential(4), limits_);  // carol again: another event
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, q, seal_, hawfd_), K::Conflict, "no longer make");
    Quorum tampered = *reached_quorum(spool_.load(me_, spec.id));
    tampered.decision.comment = "not theirs";
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, tampered, seal_, hawfd_), K::Conflict, "no longer make");
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Pending);
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 6u);
    EXPECT_EQ(record_quorum(spool_, me_, spec.id, *reached_quorum(spool_.load(me_, spec.id)), seal_, hawfd_).state,
              State::Decided);
}

// Two hawfd requests complete the quorum at once (or one is retried): one Decided,
// and the other returns the checkpoint as it is.
TEST_F(DelegatedTest, RacingRecordQuorumOneDecision) {
    constexpr int racers = 6;
    const CheckpointSpec spec = delegated("805:eval");
    make_pending(spec);
    approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_);
    const Quorum q = *reached_quorum(approve(spool_, me_, spec.id, approve_, carol_, credential(2), limits_));
    std::atomic<bool> go{false};
    std::atomic<int> decided{0}, failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < racers; ++i)
        threads.emplace_back([&] {
            while (!go) std::this_thread::yield();
            try {
                const Checkpoint c = record_quorum(spool_, me_, spec.id, q, seal_, hawfd_);
                (c.state == State::Decided && c.decided->approvals == q.approvals ? decided : failed)++;
            } catch (const std::exception&) {
                ++failed;
            }
        });
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(decided, racers);
    EXPECT_EQ(failed, 0);
    const Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(count_events(c, EventType::Decided), 1u);
    EXPECT_EQ(c.history.size(), 5u);
    // A retry later changes nothing either.
    EXPECT_EQ(record_quorum(spool_, me_, spec.id, q, seal_, hawfd_).history.size(), 5u);
}

// Reviewers approving at once each get their approval recorded (a lost race re-reads).
TEST_F(DelegatedTest, RacingApprovalsAreAllRecorded) {
    constexpr int racers = 6;
    const CheckpointSpec spec = delegated("806:eval", 7);
    make_pending(spec);
    std::atomic<bool> go{false};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < racers; ++i)
        threads.emplace_back([&, i] {
            while (!go) std::this_thread::yield();
            try {
                approve(spool_, me_, spec.id, approve_, reviewer("r" + std::to_string(i), 6000 + i), credential(i),
                        limits_);
            } catch (const std::exception&) {
                ++failed;
            }
        });
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(spool_.load(me_, spec.id).approvals.size(), static_cast<std::size_t>(racers));
}

TEST_F(DelegatedTest, OwnerAndRootCannotDecideAroundTheReviewers) {
    const CheckpointSpec spec = delegated("807:eval", 1);
    make_pending(spec);
    const Actor root{"root", 0, Via::Cli, "login1"};
    for (const Actor& who : {cli_, root}) {
        EXPECT_HAWF_ERROR(check_may_decide(spec, who.uid), K::Denied,
                          "807:eval has reviewers (bob, carol, @safety): they decide through hawfd");
        EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, approve_, DecideMode::Decide, who, limits_), K::Denied,
                          "they decide through hawfd");
    }
    approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_);
    record_quorum(spool_, me_, spec.id, *reached_quorum(spool_.load(me_, spec.id)), seal_, hawfd_);
    for (const Actor& who : {cli_, root}) {
        EXPECT_HAWF_ERROR(decide(spool_, me_, spec.id, approve_, DecideMode::Amend, who, limits_), K::Denied,
                          "they decide through hawfd");
        EXPECT_HAWF_ERROR(revoke(spool_, me_, spec.id, who), K::Denied, "they decide through hawfd");
    }
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 4u);
}

// An owner's own decision in force (forged in their tree) is not hawfd's: no quorum on top.
TEST_F(DelegatedTest, RecordQuorumDoesNotTakeAForgedDecisionForItsOwn) {
    const CheckpointSpec spec = delegated("808:eval", 1);
    make_pending(spec);
    const Quorum q = *reached_quorum(approve(spool_, me_, spec.id, approve_, bob_, credential(1), limits_));
    Event forged;
    forged.seq = 4;
    forged.type = EventType::Decided;
    forged.by = cli_.user;
    forged.by_uid = me_;
    forged.via = Via::Cli;
    forged.host = "login1";
    forged.decision = approve_;
    ASSERT_TRUE(spool_.append(me_, spec.id, forged));
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, q, seal_, hawfd_), K::Conflict,
                      "cannot record a quorum for 808:eval: it is decided");
}

// A site policy's quorum of 2 of @hawfreviewers, and the job's own friend hawfbob:
// hawfbob and one member are not a quorum, whatever hawfd is handed.
TEST_F(DelegatedTest, RecordQuorumRefusesAQuorumThatMissesARequirement) {
    std::map<std::string, uid_t> uid;  // getpwnam's entry is overwritten by the next call
    for (const char* name : {"hawfbob", "hawfcarol", "hawfdave"}) {
        const passwd* pw = getpwnam(name);
        if (!pw) GTEST_SKIP() << "no user " << name << " here";
        uid[name] = pw->pw_uid;
    }
    if (!getgrnam("hawfreviewers")) GTEST_SKIP() << "no group hawfreviewers here";
    const Actor friend_ = reviewer("hawfbob", uid["hawfbob"]);
    const Actor member = reviewer("hawfcarol", uid["hawfcarol"]);
    const Actor other_member = reviewer("hawfdave", uid["hawfdave"]);
    CheckpointSpec spec = make_spec("809:deploy", me_);
    spec.reviewers = {"hawfbob"};
    spec.required = {{{"@hawfreviewers"}, 2, "/etc/hawf/hawf.yaml:4"}};
    spec.owner_may_decide = false;
    make_pending(spec);
    approve(spool_, me_, spec.id, approve_, friend_, credential(1), limits_);
    const Checkpoint c = approve(spool_, me_, spec.id, approve_, member, credential(2), limits_);
    EXPECT_FALSE(reached_quorum(c));
    // The quorum the old merge would have found: the job's reviewer counted for the policy.
    const Quorum merged{Decision{approve_.choice, approve_.params, "ok\nok"}, {3, 4}};
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, merged, seal_, hawfd_), K::Conflict,
                      "the approvals in force at 809:deploy no longer make this decision");
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Pending);
    EXPECT_EQ(spool_.load(me_, spec.id).history.size(), 4u);
    // A second member meets the policy: now it is a quorum, of all three.
    const std::optional<Quorum> q =
        reached_quorum(approve(spool_, me_, spec.id, approve_, other_member, credential(3), limits_));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (std::vector<std::uint64_t>{3, 4, 5}));
    EXPECT_HAWF_ERROR(record_quorum(spool_, me_, spec.id, merged, seal_, hawfd_), K::Conflict, "no longer make");
    const Checkpoint decided = record_quorum(spool_, me_, spec.id, *q, seal_, hawfd_);
    EXPECT_EQ(decided.state, State::Decided);
    EXPECT_EQ(decided.decided_by(), "hawfbob,hawfcarol,hawfdave");
}

}  // namespace
}  // namespace hawf
