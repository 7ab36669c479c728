// review.hpp: reviewers (syntax, NSS), who may approve, when approvals reach a
// quorum, and verifying approvals and decisions against their munge credentials
// (a private munged; real NSS users and groups of this machine).
#include "review.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include <gtest/gtest.h>

#include "actions.hpp"
#include "error.hpp"
#include "helpers.hpp"
#include "munge.hpp"
#include "munged.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using nlohmann::json;
using Strings = std::vector<std::string>;
using Seqs = std::vector<std::uint64_t>;

const std::string fake_credential = "MUNGE:AwQDAACm9k+/bK0=:";

// ---------------------------------------------------------------- reviewers

TEST(ReviewerEntry, UserOrAtGroupInTheUserNameGrammar) {
    for (const char* ok : {"bob", "@safety", "a.b-c_d", "_svc", "@ml-team", "host$", "bob@REALM"})
        EXPECT_NO_THROW(check_reviewer_entry(ok)) << ok;
    const std::string allowed =
        ": use USER or @GROUP, names of letters, digits, '.', '_', '-' or '@' starting with a letter, digit or '_'";
    for (const std::string bad : {"", "@", "@@x", "-rf", "bob smith", "a,b", "@.x", "x/y", "b\x1b[2Jx"})
        EXPECT_HAWF_ERROR(check_reviewer_entry(bad), K::Usage, "bad reviewer " + quoted_text(bad) + allowed);
}

TEST(ParseReviewers, ExistingUsersAndGroups) {
    EXPECT_EQ(parse_reviewers("root"), (Strings{"root"}));
    EXPECT_EQ(parse_reviewers("root,@root"), (Strings{"root", "@root"}));
    EXPECT_HAWF_ERROR(parse_reviewers(""), K::Usage, "no reviewers: name at least one USER or @GROUP");
    EXPECT_HAWF_ERROR(parse_reviewers("root,"), K::Usage, "bad reviewer \"\": use USER or @GROUP");
    EXPECT_HAWF_ERROR(parse_reviewers("root,,@root"), K::Usage, "bad reviewer \"\"");
    EXPECT_HAWF_ERROR(parse_reviewers("@"), K::Usage, "bad reviewer \"@\"");
    EXPECT_HAWF_ERROR(parse_reviewers("root;id"), K::Usage, "bad reviewer \"root;id\"");
    EXPECT_HAWF_ERROR(parse_reviewers("root,@root,root"), K::Usage, "reviewer \"root\" is named twice");
    EXPECT_HAWF_ERROR(parse_reviewers("hawf-no-such-user"), K::Usage,
                      "unknown reviewer \"hawf-no-such-user\": no such user here (a group is written @GROUP)");
    EXPECT_HAWF_ERROR(parse_reviewers("root,@hawf-no-such-group"), K::Usage,
                      "unknown reviewer \"@hawf-no-such-group\": no such group here");
    std::string many = "root";
    for (int i = 1; i <= 32; ++i) many += ",u" + std::to_string(i);
    EXPECT_HAWF_ERROR(parse_reviewers(many), K::Usage, "33 reviewers: at most 32");
}

TEST(ParseQuorum, OneToSixtyFour) {
    EXPECT_EQ(parse_quorum("1"), 1u);
    EXPECT_EQ(parse_quorum("64"), 64u);
    EXPECT_EQ(parse_quorum("02"), 2u);
    for (const std::string bad : {"0", "65", "", "-1", "+2", " 2", "2x", "1e1", "99999999999999999999"})
        EXPECT_HAWF_ERROR(parse_quorum(bad), K::Usage,
                          "bad --hawf-quorum " + quoted_text(bad) + ": use a whole number from 1 to 64");
}

// A group of this machine with listed members that exist, if there is one.
std::optional<std::pair<std::string, uid_t>> group_with_a_member() {
    setgrent();
    std::optional<std::pair<std::string, uid_t>> found;
    while (const group* g = getgrent()) {
        if (!g->gr_mem || !g->gr_mem[0]) continue;
        if (const passwd* pw = getpwnam(g->gr_mem[0])) {
            found = std::make_pair(std::string(g->gr_name), pw->pw_uid);
            break;
        }
    }
    endgrent();
    return found;
}

TEST(ReviewerUids, NamedUsersAndListedGroupMembersOnce) {
    const passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    const uid_t nobody_uid = nobody->pw_uid;
    EXPECT_EQ(reviewer_uids({"root", "nobody", "root"}), (std::vector<uid_t>{0, nobody_uid}));
    EXPECT_EQ(reviewer_uids({"hawf-no-such-user", "@hawf-no-such-group"}), std::vector<uid_t>{});
    const auto g = group_with_a_member();
    if (!g) GTEST_SKIP() << "no group with listed members here";
    const std::vector<uid_t> uids = reviewer_uids({"@" + g->first, "root"});
    EXPECT_NE(std::find(uids.begin(), uids.end(), g->second), uids.end());
    EXPECT_EQ(std::count(uids.begin(), uids.end(), g->second), 1);
    EXPECT_EQ(uids.back(), 0u);
}

TEST(IsReviewer, NamedOrInANamedGroup) {
    const passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    const uid_t nobody_uid = nobody->pw_uid;
    const group* primary = getgrgid(nobody->pw_gid);
    if (!primary) GTEST_SKIP() << "nobody's primary group has no name";
    const std::string nobody_group = "@" + std::string(primary->gr_name);
    EXPECT_TRUE(is_reviewer({"root"}, 0));
    EXPECT_TRUE(is_reviewer({"nobody", "@hawf-no-such-group"}, nobody_uid));
    EXPECT_FALSE(is_reviewer({"root"}, nobody_uid));
    EXPECT_TRUE(is_reviewer({"@root"}, 0));               // a primary group counts
    EXPECT_TRUE(is_reviewer({"root", nobody_group}, nobody_uid));
    EXPECT_FALSE(is_reviewer({"@root"}, nobody_uid));
    EXPECT_FALSE(is_reviewer({"root", "nobody"}, 4000000000u));  // a uid without a name
    EXPECT_FALSE(is_reviewer({"0"}, 0));                          // names, never numbers
    if (const auto g = group_with_a_member()) {
        EXPECT_TRUE(is_reviewer({"@" + g->first}, g->second));  // a supplementary group
    }
}

CheckpointSpec reviewed_spec(std::vector<std::string> reviewers, uid_t owner = 1001, std::uint32_t quorum = 1) {
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id("300:eval");
    spec.owner_uid = owner;
    spec.owner = "alice";
    spec.options = {"approve", "reject"};
    spec.params = parse_param_specs("lr:float");
    spec.reviewers = std::move(reviewers);
    spec.quorum = quorum;
    return spec;
}

TEST(CheckMayApprove, ReviewersOnlyAndTheOwnerOnlyIfAllowed) {
    const passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    const uid_t nobody_uid = nobody->pw_uid;
    EXPECT_NO_THROW(check_may_approve(reviewed_spec({"nobody"}), nobody_uid));
    EXPECT_HAWF_ERROR(check_may_approve(reviewed_spec({"nobody", "@hawf-gone"}), 0), K::Denied,
                      "root may not decide 300:eval: only its reviewers (nobody, @hawf-gone) may");
    EXPECT_HAWF_ERROR(check_may_approve(reviewed_spec({}), nobody_uid), K::Denied,
                      "300:eval has no reviewers: its owner decides it with hawf-decide");
    // The owner decides only if listed, and a policy may forbid even that.
    CheckpointSpec spec = reviewed_spec({"root"}, nobody_uid);
    EXPECT_HAWF_ERROR(check_may_approve(spec, nobody_uid), K::Denied, "nobody may not decide 300:eval");
    spec.reviewers = {"root", "nobody"};
    EXPECT_NO_THROW(check_may_approve(spec, nobody_uid));
    spec.owner = "nobody";
    spec.owner_may_decide = false;
    EXPECT_HAWF_ERROR(check_may_approve(spec, nobody_uid), K::Denied,
                      "a site policy does not let nobody, its owner, decide 300:eval: its reviewers (root, nobody) do");
    EXPECT_NO_THROW(check_may_approve(spec, 0));
}

// ---------------------------------------------------------------- quorum

Event event(std::uint64_t seq, EventType type, const std::string& by = "alice", uid_t uid = 1001) {
    Event ev;
    ev.seq = seq;
    ev.type = type;
    ev.at = 1790000000 + static_cast<std::int64_t>(seq);
    ev.by = by;
    ev.by_uid = uid;
    ev.via = Via::Hawfd;
    ev.host = "svc1";
    return ev;
}

Event approval(std::uint64_t seq, const std::string& by, uid_t uid, const Decision& d,
               const std::string& credential = fake_credential) {
    Event ev = event(seq, EventType::Approved, by, uid);
    ev.decision = d;
    ev.credential = credential;
    return ev;
}

Event withdrawal(std::uint64_t seq, const std::string& by, uid_t uid, const std::string& credential = fake_credential) {
    Event ev = event(seq, EventType::Withdrawn, by, uid);
    ev.credential = credential;
    return ev;
}

// Opened with SPEC and pending: events 1 and 2.
std::vector<Event> pending_history(const CheckpointSpec& spec) {
    Event opened = event(1, EventType::Opened);
    opened.via = Via::Plugin;
    opened.spec = spec;
    return {opened, event(2, EventType::Pending)};
}

// APPROVALS by (name, uid, decision), from seq 3 on.
using Approvals = std::vector<std::tuple<std::string, uid_t, Decision>>;
Checkpoint with_approvals(std::uint32_t quorum, const Approvals& approvals) {
    std::vector<Event> h = pending_history(reviewed_spec({"a", "b", "c", "d"}, 1001, quorum));
    for (const auto& [by, uid, d] : approvals) h.push_back(approval(h.size() + 1, by, uid, d));
    return fold(h);
}

const Decision approve{"approve", {}, ""};
const Decision reject{"reject", {}, ""};

TEST(ReachedQuorum, TwoOfThree) {
    const Checkpoint c = with_approvals(2, {{"a", 11, {"approve", {}, "a says"}}, {"b", 12, reject},
                                            {"c", 13, {"approve", {}, "c says"}}});
    const std::optional<Quorum> q = reached_quorum(c);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.choice, "approve");
    EXPECT_EQ(q->approvals, (Seqs{3, 5}));
    EXPECT_EQ(q->decision.comment, "a says\nc says");
    EXPECT_FALSE(reached_quorum(with_approvals(2, {{"a", 11, approve}, {"b", 12, reject}})));
    EXPECT_FALSE(reached_quorum(with_approvals(3, {{"a", 11, approve}, {"b", 12, approve}})));
    EXPECT_TRUE(reached_quorum(with_approvals(1, {{"a", 11, reject}})));
}

TEST(ReachedQuorum, ParametersMustBeIdentical) {
    const Decision low{"approve", {{"lr", "0.1"}}, ""};
    const Decision high{"approve", {{"lr", "0.2"}}, ""};
    const Decision written_otherwise{"approve", {{"lr", "0.10"}}, ""};  // values are compared verbatim
    EXPECT_FALSE(reached_quorum(with_approvals(2, {{"a", 11, low}, {"b", 12, high}, {"c", 13, written_otherwise}})));
    EXPECT_FALSE(reached_quorum(with_approvals(2, {{"a", 11, low}, {"b", 12, approve}})));
    const std::optional<Quorum> q =
        reached_quorum(with_approvals(2, {{"a", 11, low}, {"b", 12, high}, {"c", 13, high}}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.params, high.params);
    EXPECT_EQ(q->approvals, (Seqs{4, 5}));
}

TEST(ReachedQuorum, TheFirstChoiceToReachItWins) {
    // reject has two at seq 5, approve only at seq 6.
    const std::optional<Quorum> q = reached_quorum(
        with_approvals(2, {{"a", 11, approve}, {"b", 12, reject}, {"c", 13, reject}, {"d", 14, approve}}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.choice, "reject");
    EXPECT_EQ(q->approvals, (Seqs{4, 5}));
    EXPECT_EQ(q->decision.comment, "");
}

TEST(ReachedQuorum, ReplacedAndWithdrawnApprovalsDoNotCount) {
    std::vector<Event> h = pending_history(reviewed_spec({"a", "b", "c"}, 1001, 2));
    h.push_back(approval(3, "a", 11, approve));
    h.push_back(approval(4, "b", 12, reject));
    h.push_back(approval(5, "a", 11, reject));  // a changes their mind: replaces seq 3
    std::optional<Quorum> q = reached_quorum(fold(h));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.choice, "reject");
    EXPECT_EQ(q->approvals, (Seqs{4, 5}));
    h.push_back(withdrawal(6, "b", 12));
    EXPECT_FALSE(reached_quorum(fold(h)));
    h.push_back(approval(7, "c", 13, reject));
    q = reached_quorum(fold(h));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{5, 7}));
}

TEST(ReachedQuorum, NoneOnceDecidedOrInOwnerMode) {
    std::vector<Event> h = pending_history(reviewed_spec({"a", "b"}, 1001, 1));
    h.push_back(approval(3, "a", 11, approve));
    Event d = event(4, EventType::Decided, "root", 0);
    d.decision = approve;
    d.approvals = {3};
    d.credential = fake_credential;
    h.push_back(d);
    EXPECT_FALSE(reached_quorum(fold(h)));
    EXPECT_FALSE(reached_quorum(fold(pending_history(reviewed_spec({})))));
}

TEST(QuorumEquality, EveryFieldCounts) {
    const Quorum q{Decision{"approve", {{"lr", "1"}}, "x"}, {3, 4}};
    EXPECT_TRUE(q == q);
    Quorum other = q;
    other.approvals = {4, 3};
    EXPECT_FALSE(q == other);
    other = q;
    other.decision.comment = "y";
    EXPECT_FALSE(q == other);
    other = q;
    other.decision.params["lr"] = "2";
    EXPECT_FALSE(q == other);
    other = q;
    other.decision.choice = "reject";
    EXPECT_FALSE(q == other);
}

// ---------------------------------------------------------------- site policies: every requirement

// This machine's test users: hawfalice (the owner), hawfbob (the job's "friend"),
// hawfcarol and hawfdave (the members of @hawfreviewers, the policy's group).
class PolicyQuorumTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (const char* name : {"hawfalice", "hawfbob", "hawfcarol", "hawfdave"}) {
            const passwd* pw = getpwnam(name);
            if (!pw) GTEST_SKIP() << "no user " << name << " here";
            uids_[name] = pw->pw_uid;
        }
        const group* g = getgrnam("hawfreviewers");
        if (!g) GTEST_SKIP() << "no group hawfreviewers here";
        ASSERT_TRUE(is_reviewer({"@hawfreviewers"}, uid("hawfcarol")));
        ASSERT_TRUE(is_reviewer({"@hawfreviewers"}, uid("hawfdave")));
        ASSERT_FALSE(is_reviewer({"@hawfreviewers"}, uid("hawfbob")));
    }
    uid_t uid(const std::string& name) { return uids_.at(name); }

    // The job's own reviewers JOB (quorum JOB_QUORUM) and the policy "QUORUM of
    // @hawfreviewers"; the owner is OWNER.
    CheckpointSpec spec(std::vector<std::string> job, std::uint32_t job_quorum, std::uint32_t policy_quorum,
                        const std::string& owner = "hawfalice") {
        CheckpointSpec s = reviewed_spec(std::move(job), uid(owner), job_quorum);
        s.owner = owner;
        s.required = {{{"@hawfreviewers"}, policy_quorum, "/etc/hawf/hawf.yaml:4"}};
        return s;
    }
    // SPEC pending, then approvals by NAMES (each its decision), from seq 3 on.
    Checkpoint approved_with(const CheckpointSpec& s, const std::vector<std::pair<std::string, Decision>>& names) {
        std::vector<Event> h = pending_history(s);
        for (const auto& [name, d] : names) h.push_back(approval(h.size() + 1, name, uid(name), d));
        return fold(h);
    }
    Checkpoint approved(const CheckpointSpec& s, const std::vector<std::string>& names) {
        std::vector<std::pair<std::string, Decision>> with;
        for (const auto& n : names) with.emplace_back(n, Decision{"approve", {}, ""});
        return approved_with(s, with);
    }

    std::map<std::string, uid_t> uids_;
};

// The defect: a job's own reviewer must never count towards a policy's quorum.
TEST_F(PolicyQuorumTest, TheJobsReviewerNeverCountsTowardsAPolicy) {
    // Policy: 1 of @hawfreviewers; the job adds friend hawfbob.
    CheckpointSpec s = spec({"hawfbob"}, 1, 1);
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfbob"})));  // friend alone: the policy is not met
    std::optional<Quorum> q = reached_quorum(approved(s, {"hawfbob", "hawfcarol"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{3, 4}));
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfcarol"})));  // and the job's own requirement holds too
    // Policy: 2 of @hawfreviewers. Friend and one member are not enough; two members are.
    s = spec({"hawfbob"}, 1, 2);
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfbob", "hawfcarol"})));
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfcarol", "hawfbob"})));
    q = reached_quorum(approved(s, {"hawfbob", "hawfcarol", "hawfdave"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{3, 4, 5}));  // every approval of the group, up to the completing one
    // Policies only: two members, and nobody else counts.
    s = spec({}, 1, 2);
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfbob", "hawfcarol"})));  // hawfbob is on no list
    q = reached_quorum(approved(s, {"hawfcarol", "hawfdave"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{3, 4}));
    EXPECT_EQ(q->decision.choice, "approve");
}

TEST_F(PolicyQuorumTest, TheJobsQuorumAndThePolicysAreBothNeeded) {
    // The job: 2 of hawfbob, hawfcarol; the policy: 2 of @hawfreviewers.
    const CheckpointSpec s = spec({"hawfbob", "hawfcarol"}, 2, 2);
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfbob", "hawfcarol"})));  // the job's met, the policy's 1 of 2
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfcarol", "hawfdave"})));  // the policy's met, the job's 1 of 2
    const std::optional<Quorum> q = reached_quorum(approved(s, {"hawfbob", "hawfcarol", "hawfdave"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{3, 4, 5}));
    // A second policy is a third requirement: 1 of hawfalice, whom nobody else's approval replaces.
    CheckpointSpec two = spec({"hawfbob", "hawfcarol"}, 2, 2, "hawfdave");
    two.required.push_back({{"hawfalice"}, 1, "/etc/hawf/hawf.yaml:9"});
    EXPECT_FALSE(reached_quorum(approved(two, {"hawfbob", "hawfcarol", "hawfdave"})));
    EXPECT_TRUE(reached_quorum(approved(two, {"hawfbob", "hawfcarol", "hawfdave", "hawfalice"})));
}

TEST_F(PolicyQuorumTest, OneApproverCountsForEveryListNamingThem) {
    // hawfcarol is the job's reviewer and a member of the policy's group: alone, both are met.
    const std::optional<Quorum> q = reached_quorum(approved(spec({"hawfcarol"}, 1, 1), {"hawfcarol"}));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->approvals, (Seqs{3}));
    // But once each: one approver is never two distinct approvals.
    EXPECT_FALSE(reached_quorum(approved(spec({"hawfcarol"}, 1, 2), {"hawfcarol"})));
    const Checkpoint c = approved(spec({"hawfcarol", "hawfbob"}, 1, 2), {"hawfcarol", "hawfdave"});
    EXPECT_EQ(reached_quorum(c)->approvals, (Seqs{3, 4}));
}

TEST_F(PolicyQuorumTest, TheFirstChoiceToMeetEveryRequirementWins) {
    const CheckpointSpec s = spec({"hawfbob"}, 1, 1);
    const Decision low{"approve", {{"lr", "0.1"}}, "carol: low"};
    const Decision high{"approve", {{"lr", "0.2"}}, "dave: high"};
    // carol (low) then dave (high) meet the policy, but only bob's approval meets the job's:
    // bob's choice is the decision, with the member who agreed.
    Checkpoint c = approved_with(s, {{"hawfcarol", low}, {"hawfdave", high}, {"hawfbob", {"approve", {{"lr", "0.2"}}, ""}}});
    std::optional<Quorum> q = reached_quorum(c);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.params, high.params);
    EXPECT_EQ(q->approvals, (Seqs{4, 5}));
    EXPECT_EQ(q->decision.comment, "dave: high");
    // Both choices meet every requirement in the end: the one whose completing approval came first wins.
    const CheckpointSpec both = spec({"hawfbob", "hawfalice"}, 1, 1);
    c = approved_with(both, {{"hawfdave", approve}, {"hawfcarol", reject}, {"hawfbob", reject}, {"hawfalice", approve}});
    q = reached_quorum(c);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.choice, "reject");
    EXPECT_EQ(q->approvals, (Seqs{4, 5}));
    c = approved_with(both, {{"hawfdave", approve}, {"hawfcarol", reject}, {"hawfalice", approve}, {"hawfbob", reject}});
    q = reached_quorum(c);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->decision.choice, "approve");
    EXPECT_EQ(q->approvals, (Seqs{3, 5}));
}

TEST_F(PolicyQuorumTest, AnOwnerAPolicyForbidsNeverCounts) {
    // hawfcarol owns the job and is a member of the policy's group.
    CheckpointSpec s = spec({}, 1, 2, "hawfcarol");
    s.owner_may_decide = false;
    // Had her approval been recorded (hawfd refuses it: check_may_approve), it would not count.
    EXPECT_FALSE(reached_quorum(approved(s, {"hawfcarol", "hawfdave"})));
    s.required[0].quorum = 1;
    EXPECT_EQ(reached_quorum(approved(s, {"hawfcarol", "hawfdave"}))->approvals, (Seqs{3, 4}));
    s.owner_may_decide = true;
    s.required[0].quorum = 2;
    EXPECT_TRUE(reached_quorum(approved(s, {"hawfcarol", "hawfdave"})));
}

TEST_F(PolicyQuorumTest, RequirementsMet) {
    const CheckpointSpec s = spec({"hawfbob"}, 1, 2);
    const Event bob = approval(3, "hawfbob", uid("hawfbob"), approve);
    const Event carol = approval(4, "hawfcarol", uid("hawfcarol"), approve);
    const Event dave = approval(5, "hawfdave", uid("hawfdave"), approve);
    const Event alice = approval(6, "hawfalice", uid("hawfalice"), approve);
    EXPECT_FALSE(requirements_met(s, {&bob, &carol}));
    EXPECT_FALSE(requirements_met(s, {&bob, &carol, &carol}));  // twice is once
    EXPECT_FALSE(requirements_met(s, {&carol, &dave}));
    EXPECT_FALSE(requirements_met(s, {&bob, &carol, &alice}));
    EXPECT_TRUE(requirements_met(s, {&bob, &carol, &dave}));
    EXPECT_TRUE(requirements_met(s, {&dave, &alice, &carol, &bob}));
    EXPECT_FALSE(requirements_met(s, {}));
    // The job's own reviewers alone: every approval counts (hawfd admitted it for that list).
    CheckpointSpec job = reviewed_spec({"hawfbob"}, uid("hawfalice"), 2);
    EXPECT_TRUE(requirements_met(job, {&bob, &carol}));
    EXPECT_FALSE(requirements_met(job, {&bob}));
    job.owner_may_decide = false;
    EXPECT_FALSE(requirements_met(job, {&bob, &alice}));  // but never the owner a policy forbids
    EXPECT_FALSE(requirements_met(reviewed_spec({}), {&bob}));  // owner mode: nothing to meet
}

TEST_F(PolicyQuorumTest, CheckMayApproveNamesEveryReviewer) {
    CheckpointSpec s = spec({}, 1, 2);  // policies only
    EXPECT_NO_THROW(check_may_approve(s, uid("hawfcarol")));
    EXPECT_NO_THROW(check_may_approve(s, uid("hawfdave")));
    EXPECT_HAWF_ERROR(check_may_approve(s, uid("hawfbob")), K::Denied,
                      "hawfbob may not decide 300:eval: only its reviewers (@hawfreviewers) may");
    s = spec({"hawfbob", "@hawfreviewers"}, 1, 2);
    s.required.push_back({{"root", "hawfbob"}, 1, "/etc/hawf/hawf.yaml:9"});
    EXPECT_EQ(all_reviewers(s), (Strings{"hawfbob", "@hawfreviewers", "root"}));
    EXPECT_NO_THROW(check_may_approve(s, uid("hawfbob")));
    EXPECT_NO_THROW(check_may_approve(s, 0));  // a policy's reviewer only
    EXPECT_HAWF_ERROR(check_may_approve(s, uid("hawfalice")), K::Denied,
                      "hawfalice may not decide 300:eval: only its reviewers (hawfbob, @hawfreviewers, root) may");
    // The owner: only if listed somewhere, and never when a policy says so.
    s = spec({}, 1, 1, "hawfcarol");
    EXPECT_NO_THROW(check_may_approve(s, uid("hawfcarol")));  // a member of the policy's group
    s.owner_may_decide = false;
    EXPECT_HAWF_ERROR(check_may_approve(s, uid("hawfcarol")), K::Denied,
                      "a site policy does not let hawfcarol, its owner, decide 300:eval: its reviewers "
                      "(@hawfreviewers) do");
    EXPECT_NO_THROW(check_may_approve(s, uid("hawfdave")));
}

// ---------------------------------------------------------------- requests and the seal

TEST(Requests, WhatAReviewerSeals) {
    const CheckpointId id = parse_checkpoint_id("300:eval");
    const Decision d{"approve", {{"lr", "0.1"}}, "ok\nsecond line"};
    EXPECT_EQ(decide_request(id, d).dump(),
              R"({"checkpoint":"300:eval","choice":"approve","comment":"ok\nsecond line","op":"decide",)"
              R"("params":{"lr":"0.1"}})");
    EXPECT_EQ(decide_request(id, d, "alice")["user"], "alice");
    EXPECT_EQ(withdraw_request(id).dump(), R"({"checkpoint":"300:eval","op":"withdraw"})");
    EXPECT_EQ(withdraw_request(id, "alice").dump(), R"({"checkpoint":"300:eval","op":"withdraw","user":"alice"})");
}

TEST(DecisionSealPayload, CanonicalAndBoundToTheApprovals) {
    std::vector<Event> h = pending_history(reviewed_spec({"a", "b"}, 1001, 2));
    h.push_back(approval(3, "a", 11, {"approve", {{"lr", "0.1"}}, ""}));
    h.push_back(approval(4, "b", 12, {"approve", {{"lr", "0.1"}}, ""}));
    Event d = event(5, EventType::Decided, "root", 0);
    d.decision = Decision{"approve", {{"lr", "0.1"}}, "ok"};
    d.approvals = {3, 4};
    const Checkpoint before = fold(h);
    EXPECT_EQ(decision_seal_payload(before, d),
              R"({"approvals":[{"by":"a","seq":3,"uid":11},{"by":"b","seq":4,"uid":12}],"checkpoint":"300:eval",)"
              R"("choice":"approve","comment":"ok","op":"decided","owner_uid":1001,"params":{"lr":"0.1"}})");
    // The same bytes once the decision is in the history.
    d.credential = fake_credential;
    h.push_back(d);
    EXPECT_EQ(decision_seal_payload(fold(h), d), decision_seal_payload(before, d));
    d.approvals = {3, 2};
    EXPECT_HAWF_ERROR(decision_seal_payload(before, d), K::Untrusted,
                      "the decision names event 2 of 300:eval, which is not an approval");
    d.approvals = {3, 9};
    EXPECT_HAWF_ERROR(decision_seal_payload(before, d), K::Untrusted, "event 9");
}

// ---------------------------------------------------------------- verification (munge)

// As USER (another uid than ours through a forked child): a credential for PAYLOAD.
std::string credential_as(const passwd& user, const std::string& payload, const std::string& socket,
                          MungeDecoder decoder = MungeDecoder::RootOnly) {
    if (user.pw_uid == getuid()) return munge_encode(payload, socket, 0, decoder);
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    fcntl(out[1], F_SETPIPE_SZ, 1 << 20);  // the child writes it all before we read
    const int rc = test::run_as(user.pw_uid, user.pw_gid, [&] {
        const std::string credential = munge_encode(payload, socket, 0, decoder);
        return write(out[1], credential.data(), credential.size()) == static_cast<ssize_t>(credential.size()) ? 0 : 1;
    });
    close(out[1]);
    std::string credential;
    char buf[65536];
    for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) credential.append(buf, static_cast<std::size_t>(n));
    close(out[0]);
    if (rc != 0 || credential.empty())
        throw std::runtime_error("cannot make a credential as " + std::string(user.pw_name));
    return credential;
}

// A delegated checkpoint (reviewers root and nobody, quorum 2, owner alice) that
// both approved; decide() then seals the decision as hawfd does.
class VerifyTest : public test::MungeTest {
protected:
    void SetUp() override {
        test::MungeTest::SetUp();
        if (IsSkipped()) return;
        const passwd* nobody = getpwnam("nobody");
        if (!nobody) GTEST_SKIP() << "no user nobody";
        nobody_ = *nobody;
        nobody_uid_ = nobody->pw_uid;
        root_ = *getpwuid(0);
        spec_ = reviewed_spec({"root", "nobody"}, 1001, 2);
        history_ = pending_history(spec_);
        history_.push_back(approval(3, "root", 0, chosen_, request_as(root_, decide_request(spec_.id, chosen_))));
        history_.push_back(approval(4, "nobody", nobody_uid_, chosen_,
                                    request_as(nobody_, decide_request(spec_.id, chosen_, "alice"))));
    }

    // The Decided event hawfd would append, sealed as SEALER over PAYLOAD ("": the right one).
    Event quorum_decision(const passwd& sealer, const std::string& payload = "") {
        Event d = event(history_.size() + 1, EventType::Decided, "root", 0);
        d.decision = chosen_;
        d.approvals = {3, 4};
        const std::string sealed = payload.empty() ? decision_seal_payload(fold(history_), d) : payload;
        d.credential = credential_as(sealer, sealed, socket(), MungeDecoder::Anyone);
        return d;
    }

    // WHO's credential for REQUEST, as hawf-decide sends it.
    std::string request_as(const passwd& who, const json& request) {
        return credential_as(who, request.dump(), socket());
    }

    // The single check of event SEQ.
    EventCheck check_of(const Checkpoint& c, std::uint64_t seq) {
        for (const EventCheck& check : verify_events(c, socket()))
            if (check.seq == seq) return check;
        ADD_FAILURE() << "event " << seq << " not checked";
        return {};
    }

    passwd nobody_{}, root_{};
    uid_t nobody_uid_ = 0;
    CheckpointSpec spec_;
    Decision chosen_{"approve", {{"lr", "0.1"}}, "looks right"};
    std::vector<Event> history_;
};

TEST_F(VerifyTest, GenuineApprovalsAndSealVerifyAlsoWhenReplayed) {
    history_.push_back(quorum_decision(root_));
    const Checkpoint c = fold(history_);
    for (int round = 0; round < 2; ++round) {  // the second decode finds each credential replayed
        const std::vector<EventCheck> checks = verify_events(c, socket());
        ASSERT_EQ(checks.size(), 3u);
        for (const EventCheck& check : checks) EXPECT_TRUE(check.ok) << check.seq << ": " << check.problem;
        EXPECT_EQ(checks[0].seq, 3u);
        EXPECT_EQ(checks[0].type, EventType::Approved);
        EXPECT_EQ(checks[1].by, "nobody");
        EXPECT_EQ(checks[2].type, EventType::Decided);
        EXPECT_EQ(checks[2].problem, "");
        EXPECT_NO_THROW(verify_decision(c, socket()));
    }
}

// The largest decision and spec the limits allow travel through hawfd and are read
// back: their credentials are stored in records (4096 bytes were once the most read).
TEST_F(VerifyTest, LargestDecisionsAndSpecsVerify) {
    const Limits limits;
    chosen_.comment = std::string(limits.max_comment_bytes, 'c');
    chosen_.params["lr"] = "0." + std::string(limits.max_param_bytes - 2, '1');
    check_decision(spec_, chosen_, limits);
    spec_.options.clear();
    for (std::size_t i = 0; i < limits.max_options; ++i) spec_.options.push_back("option-" + std::to_string(i));
    spec_.options.push_back("approve");
    spec_.options.erase(spec_.options.begin());
    spec_.check(limits);
    spec_.seal = credential_as(root_, spec_seal_payload(spec_), socket(), MungeDecoder::Anyone);
    EXPECT_LE(spec_.seal.size(), credential_bytes(spec_seal_payload(spec_).size()));
    history_ = pending_history(spec_);
    history_.push_back(approval(3, "root", 0, chosen_, request_as(root_, decide_request(spec_.id, chosen_))));
    history_.push_back(approval(4, "nobody", nobody_uid_, chosen_,
                                request_as(nobody_, decide_request(spec_.id, chosen_, "alice"))));
    history_.push_back(quorum_decision(root_));
    std::vector<Event> read_back;
    for (const Event& ev : history_) {
        const std::string text = to_json(ev).dump();
        check_record_size(text.size(), limits, K::Untrusted);
        read_back.push_back(event_from_json(parse_json(text)));
    }
    EXPECT_GT(read_back[2].credential.size(), 4096u);
    EXPECT_LE(read_back[2].credential.size(), credential_bytes(decide_request(spec_.id, chosen_).dump().size()));
    for (const EventCheck& check : verify_events(fold(read_back), socket()))
        EXPECT_TRUE(check.ok) << check.seq << ": " << check.problem;
}

// A delegated checkpoint's timeout: only hawfd may take its default, so delivery
// runs follow-ups on it only with hawfd's seal over exactly that default.
TEST_F(VerifyTest, TheDefaultHawfdTookAtTheDeadlineVerifiesNoOtherDoes) {
    CheckpointSpec timed = spec_;
    timed.timeout_s = 60;
    timed.default_choice = "reject";
    const std::vector<Event> pending = pending_history(timed);
    // The checkpoint with a default "via timeout" sealed by SEALER over PAYLOAD ("": the right one).
    const auto with_default = [&](const passwd& sealer, const Decision& d, const std::string& payload = "") {
        Event ev = event(3, EventType::Decided, "timeout", 1001);
        ev.via = Via::Timeout;
        ev.decision = d;
        ev.credential = credential_as(sealer, payload.empty() ? decision_seal_payload(fold(pending), ev) : payload,
                                      socket(), MungeDecoder::Anyone);
        std::vector<Event> h = pending;
        h.push_back(ev);
        return fold(h);
    };
    const Checkpoint genuine = with_default(root_, default_decision(timed));
    EXPECT_NO_THROW(verify_decision(genuine, socket()));
    EXPECT_EQ(genuine.decided_by(), "timeout");
    const std::string why = "the decision at 300:eval is not one its reviewers made through hawfd: ";
    EXPECT_HAWF_ERROR(verify_decision(with_default(nobody_, default_decision(timed)), socket()), K::Untrusted,
                      why + "sealed by uid");
    // Another choice is no default, whoever sealed it.
    EXPECT_HAWF_ERROR(verify_decision(with_default(root_, Decision{"approve", {}, "no decision before the deadline"}),
                                      socket()),
                      K::Untrusted, why + "not sealed by hawfd");
    // A quorum's seal over the same decision is not a default's.
    Event as_quorum = event(3, EventType::Decided, "timeout", 1001);
    as_quorum.decision = default_decision(timed);
    EXPECT_HAWF_ERROR(verify_decision(with_default(root_, default_decision(timed),
                                                   decision_seal_payload(fold(pending), as_quorum)),
                                      socket()),
                      K::Untrusted, why + "the seal is for another decision");
}

TEST_F(VerifyTest, WithdrawalIsTheReviewersOwnRequest) {
    history_.push_back(withdrawal(5, "nobody", nobody_uid_, request_as(nobody_, withdraw_request(spec_.id))));
    history_.push_back(withdrawal(6, "root", 0, request_as(root_, decide_request(spec_.id, chosen_))));
    const Checkpoint c = fold(history_);
    EXPECT_TRUE(check_of(c, 5).ok) << check_of(c, 5).problem;
    EXPECT_EQ(check_of(c, 6).problem, "the credential does not ask to withdraw");
}

TEST_F(VerifyTest, ApprovalCredentialMustBeForThisCheckpointAndDecision) {
    const CheckpointId other = parse_checkpoint_id("301:eval");
    const Decision rejected{"reject", {}, ""};
    history_.push_back(approval(5, "root", 0, chosen_, request_as(root_, decide_request(other, chosen_))));
    history_.push_back(approval(6, "nobody", nobody_uid_, chosen_,
                                request_as(nobody_, decide_request(spec_.id, rejected))));
    Decision other_params = chosen_;
    other_params.params["lr"] = "0.2";
    history_.push_back(approval(7, "root", 0, chosen_,
                                request_as(root_, decide_request(spec_.id, other_params))));
    Decision other_comment = chosen_;
    other_comment.comment = "not what I wrote";
    history_.push_back(approval(8, "nobody", nobody_uid_, other_comment,
                                request_as(nobody_, decide_request(spec_.id, chosen_))));
    history_.push_back(approval(9, "root", 0, chosen_, request_as(root_, withdraw_request(spec_.id))));
    history_.push_back(approval(10, "root", 0, chosen_, credential_as(root_, "not json", socket())));
    history_.push_back(approval(11, "root", 0, chosen_,
                                request_as(root_, decide_request(spec_.id, chosen_, "mallory"))));
    const Checkpoint c = fold(history_);
    EXPECT_EQ(check_of(c, 5).problem, "the credential is for another checkpoint, not 300:eval");
    EXPECT_EQ(check_of(c, 6).problem, "the credential asks for another decision");
    EXPECT_EQ(check_of(c, 7).problem, "the credential asks for another decision");
    EXPECT_EQ(check_of(c, 8).problem, "the credential asks for another decision");
    EXPECT_EQ(check_of(c, 9).problem, "the credential does not ask to decide");
    EXPECT_EQ(check_of(c, 10).problem, "the credential's payload is not a request");
    EXPECT_EQ(check_of(c, 11).problem, "the credential names another owner than alice");
    EXPECT_FALSE(check_of(c, 5).ok);
    EXPECT_TRUE(check_of(c, 3).ok);
}

TEST_F(VerifyTest, ApprovalCredentialMustBeTheReviewers) {
    // The owner copies root's genuine credential into an approval claiming to be nobody's.
    history_.push_back(approval(5, "nobody", nobody_uid_, chosen_,
                                request_as(root_, decide_request(spec_.id, chosen_))));
    history_.push_back(approval(6, "root", 0, chosen_, "MUNGE:AwQDAACm9k+/bK0=:"));
    const Checkpoint c = fold(history_);
    EXPECT_EQ(check_of(c, 5).problem,
              "the credential is root's (uid 0), not nobody's (uid " + std::to_string(nobody_uid_) + ")");
    EXPECT_NE(check_of(c, 6).problem.find("invalid munge credential"), std::string::npos) << check_of(c, 6).problem;
    EXPECT_FALSE(check_of(c, 6).ok);
}

TEST_F(VerifyTest, OwnerForgedDecisionsFail) {
    const std::string why = "the decision at 300:eval is not one its reviewers made through hawfd: ";
    // Through hawf-decide (or by hand) without hawfd.
    std::vector<Event> forged = history_;
    Event by_cli = event(5, EventType::Decided);
    by_cli.via = Via::Cli;
    by_cli.decision = chosen_;
    forged.push_back(by_cli);
    EXPECT_EQ(check_of(fold(forged), 5).problem, "not sealed by hawfd");
    EXPECT_HAWF_ERROR(verify_decision(fold(forged), socket()), K::Untrusted, why + "not sealed by hawfd");

    // "via hawfd" with approvals, sealed with a user's credential.
    forged = history_;
    forged.push_back(quorum_decision(nobody_));
    EXPECT_EQ(check_of(fold(forged), 5).problem, "sealed by uid " + std::to_string(nobody_uid_) + ", not root");
    EXPECT_HAWF_ERROR(verify_decision(fold(forged), socket()), K::Untrusted, why + "sealed by uid");

    // A genuine root seal, but for another decision (here: another comment).
    Event other = event(5, EventType::Decided, "root", 0);
    other.decision = Decision{chosen_.choice, chosen_.params, "another comment"};
    other.approvals = {3, 4};
    forged = history_;
    forged.push_back(quorum_decision(root_, decision_seal_payload(fold(history_), other)));
    EXPECT_EQ(check_of(fold(forged), 5).problem, "the seal is for another decision");
    EXPECT_HAWF_ERROR(verify_decision(fold(forged), socket()), K::Untrusted, why + "the seal is for another decision");

    // Amended or revoked after hawfd's decision: never sealed.
    forged = history_;
    forged.push_back(quorum_decision(root_));
    Event amended = event(6, EventType::Amended);
    amended.decision = Decision{"reject", {}, ""};
    forged.push_back(amended);
    const Checkpoint c = fold(forged);
    EXPECT_TRUE(check_of(c, 5).ok) << check_of(c, 5).problem;
    EXPECT_EQ(check_of(c, 6).problem, "not sealed by hawfd");
    EXPECT_EQ(check_of(c, 6).type, EventType::Amended);
    EXPECT_HAWF_ERROR(verify_decision(c, socket()), K::Untrusted, why + "not sealed by hawfd");
    forged.push_back(event(7, EventType::Revoked));
    EXPECT_EQ(check_of(fold(forged), 7).problem, "not sealed by hawfd");
}

TEST_F(VerifyTest, OwnerModeHasNothingToVerify) {
    CheckpointSpec owner_mode = spec_;
    owner_mode.reviewers.clear();
    owner_mode.quorum = 1;
    std::vector<Event> h = pending_history(owner_mode);
    Event d = event(3, EventType::Decided);
    d.via = Via::Cli;
    d.decision = chosen_;
    h.push_back(d);
    const Checkpoint c = fold(h);
    EXPECT_TRUE(verify_events(c, socket()).empty());
    EXPECT_NO_THROW(verify_decision(c, socket() + ".missing"));  // munged is not even asked
}

// ================================================================ the spec's seal

TEST(SpecSeal, PayloadBindsTheWholeSpecButTheSeal) {
    CheckpointSpec spec = reviewed_spec({"root", "@safety"}, 1001, 2);
    spec.required = {{{"@ops"}, 1, "/etc/hawf/hawf.yaml:9"}};
    spec.owner_may_decide = false;
    const std::string payload = spec_seal_payload(spec);
    EXPECT_EQ(json::parse(payload), (json{{"op", "opened"}, {"spec", to_json(spec)}}));
    EXPECT_EQ(payload, json::parse(payload).dump());  // canonical: sorted keys, no spaces
    // Recomputed from the record (with its seal), the same bytes.
    CheckpointSpec sealed = spec;
    sealed.seal = "MUNGE:AwQDAACm9k+/bK0=:";
    EXPECT_EQ(spec_seal_payload(sealed), payload);
    EXPECT_EQ(spec_seal_payload(spec_from_json(to_json(sealed))), payload);
    // Everything that says who decides and what changes it.
    const std::vector<std::function<void(CheckpointSpec&)>> changes = {
        [](CheckpointSpec& s) { s.id = parse_checkpoint_id("301:eval"); },
        [](CheckpointSpec& s) { s.owner_uid = 1002; },
        [](CheckpointSpec& s) { s.scope = Scope::Inline; },
        [](CheckpointSpec& s) { s.options.push_back("retry"); },
        [](CheckpointSpec& s) { s.params.clear(); },
        [](CheckpointSpec& s) { s.reviewers.pop_back(); },
        [](CheckpointSpec& s) { s.quorum = 1; },
        [](CheckpointSpec& s) { s.owner_may_decide = true; },
        [](CheckpointSpec& s) { s.required.clear(); },
        [](CheckpointSpec& s) { s.required[0].quorum = 2; },
        [](CheckpointSpec& s) { s.required[0].reviewers = {"@friends"}; },
        [](CheckpointSpec& s) { s.signal = "USR1"; },
    };
    for (std::size_t i = 0; i < changes.size(); ++i) {
        CheckpointSpec changed = spec;
        changes[i](changed);
        EXPECT_NE(spec_seal_payload(changed), payload) << i;
    }
    CheckpointSpec timed = reviewed_spec({}, 1001, 1);
    const std::string untimed = spec_seal_payload(timed);
    timed.timeout_s = 3600;
    timed.default_choice = "reject";
    EXPECT_NE(spec_seal_payload(timed), untimed);
}

// The same delegated checkpoint, for the seal over its spec.
class SpecSealTest : public VerifyTest {
protected:
    // SPEC sealed by WHO over PAYLOAD ("": its own).
    CheckpointSpec sealed_by(const passwd& who, CheckpointSpec spec, const std::string& payload = "") {
        spec.seal = credential_as(who, payload.empty() ? spec_seal_payload(spec) : payload, socket(),
                                  MungeDecoder::Anyone);
        return spec;
    }
    // What verify_spec says of SPEC ("" if it verifies).
    std::string problem_of(const CheckpointSpec& spec) {
        try {
            verify_spec(spec, socket());
            return "";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), K::Untrusted) << e.what();
            return e.what();
        }
    }
};

TEST_F(SpecSealTest, RootsSealVerifiesAlsoWhenReplayed) {
    const CheckpointSpec sealed = sealed_by(root_, spec_);
    for (int round = 0; round < 2; ++round) EXPECT_EQ(problem_of(sealed), "");  // then replayed: still root's
}

TEST_F(SpecSealTest, AnythingElseIsRefusedSayingWhy) {
    const std::string why = "the checkpoint 300:eval was not opened by hawf (its spec is not sealed): ";
    EXPECT_EQ(problem_of(spec_), why + "it has no seal");
    EXPECT_EQ(problem_of(sealed_by(nobody_, spec_)),
              why + "sealed by nobody (uid " + std::to_string(nobody_.pw_uid) + "), not root");
    // The owner keeps root's seal and drops the reviewers (or a policy's requirement).
    CheckpointSpec rewritten = sealed_by(root_, spec_);
    rewritten.reviewers.clear();
    rewritten.quorum = 1;
    EXPECT_EQ(problem_of(rewritten), why + "the seal is for another spec");
    // Root's credential over something else (a decision seal, say).
    EXPECT_EQ(problem_of(sealed_by(root_, spec_, R"({"op":"decided"})")), why + "the seal is for another spec");
    CheckpointSpec garbage = spec_;
    garbage.seal = "MUNGE:AwQDAACm9k+/bK0=:";
    EXPECT_NE(problem_of(garbage).find(why + "the seal does not verify: "), std::string::npos) << problem_of(garbage);
    const std::string missing = socket() + ".missing";
    EXPECT_HAWF_ERROR(verify_spec(sealed_by(root_, spec_), missing), K::System, missing);
}

// hawf log --verify: the spec is a check of its own (the opened event) when sealed, and
// with hawfd configured also when it is not; never otherwise.
TEST_F(SpecSealTest, VerifyEventsChecksTheSpec) {
    const auto checks_of = [&](const CheckpointSpec& spec, bool must) {
        return verify_events(fold(pending_history(spec)), socket(), must);
    };
    CheckpointSpec owner_mode = spec_;
    owner_mode.reviewers.clear();
    owner_mode.quorum = 1;
    EXPECT_TRUE(checks_of(owner_mode, false).empty());  // as before hawfd: nothing to check
    std::vector<EventCheck> checks = checks_of(owner_mode, true);
    ASSERT_EQ(checks.size(), 1u);
    EXPECT_EQ(checks[0].seq, 1u);
    EXPECT_EQ(checks[0].type, EventType::Opened);
    EXPECT_FALSE(checks[0].ok);
    EXPECT_EQ(checks[0].problem, "it has no seal");
    for (const bool must : {false, true}) {
        checks = checks_of(sealed_by(root_, owner_mode), must);
        ASSERT_EQ(checks.size(), 1u);
        EXPECT_TRUE(checks[0].ok) << checks[0].problem;
    }
    CheckpointSpec rewritten = sealed_by(root_, spec_);
    rewritten.reviewers = {"nobody"};
    rewritten.quorum = 1;
    checks = checks_of(rewritten, false);
    ASSERT_EQ(checks.size(), 1u);
    EXPECT_EQ(checks[0].problem, "the seal is for another spec");
    // Follow-ups registered before the job opened it: the opened event is not the first.
    std::vector<Event> later = pending_history(sealed_by(root_, owner_mode));
    Event follow = event(1, EventType::FollowUpAdded);
    follow.followup = FollowUp{owner_mode.id, owner_mode.owner_uid, "77", "/w/next.sh", {}};
    later.insert(later.begin(), follow);
    for (std::size_t i = 0; i < later.size(); ++i) later[i].seq = i + 1;
    checks = verify_events(fold(later), socket(), true);
    ASSERT_EQ(checks.size(), 1u);
    EXPECT_EQ(checks[0].seq, 2u);
    EXPECT_TRUE(checks[0].ok) << checks[0].problem;
}

TEST_F(VerifyTest, MungedUnreachableIsASystemError) {
    history_.push_back(quorum_decision(root_));
    const Checkpoint c = fold(history_);
    const std::string missing = socket() + ".missing";
    EXPECT_HAWF_ERROR(verify_events(c, missing), K::System, missing);
    EXPECT_HAWF_ERROR(verify_decision(c, missing), K::System, missing);
}

}  // namespace
}  // namespace hawf
