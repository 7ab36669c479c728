// Delegated mode (SPEC "Reviewers and hawfd"): who may approve a checkpoint, when
// approvals make its decision, and the munge credentials that prove who did what.
//
// A reviewer's hawf-decide sends hawfd a request sealed in a munge credential made as
// the reviewer (its payload is the request below); hawfd records it as an Approved
// event that keeps the credential. When a choice with identical parameters has
// approvals that meet every requirement (the job's own: spec.quorum distinct approvers
// among spec.reviewers; each site policy's: its quorum among its reviewers), hawfd
// records the Decided event with its own seal: a credential made as root whose payload
// binds the checkpoint, its owner, the decision and the approvals. Only root can make
// a credential of uid 0, so an owner who writes a decision into their own tree cannot
// make it verify.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record.hpp"

namespace hawf {

constexpr std::size_t max_reviewers = 32;  // entries of --hawf-reviewers (with a policy's)
constexpr std::uint32_t max_quorum = 64;
constexpr std::size_t max_requirements = 16;  // site policies that apply to one checkpoint

// One reviewers entry as read back from a record: a user name or "@" and a group
// name, both in check_user_name's grammar. Syntax only; Error(Usage).
void check_reviewer_entry(const std::string& entry);
// A list of them as a spec holds it: each well-formed, each once, at most
// max_reviewers (empty: owner mode). Syntax only; Error(Usage).
void check_reviewers(const std::vector<std::string>& reviewers);

// "bob, @safety": REVIEWERS for a message, escaped (lib/display).
std::string reviewers_shown(const std::vector<std::string>& reviewers);

// --hawf-reviewers=USER,@GROUP,...: at least one, each well-formed and existing here
// (NSS), each once, at most max_reviewers. Error(Usage) naming the bad entry.
std::vector<std::string> parse_reviewers(const std::string& text);

// --hawf-quorum=N: 1..max_quorum. Error(Usage).
std::uint32_t parse_quorum(const std::string& text);

// The distinct users REVIEWERS name: the named users and the listed members of the
// named groups (getgrnam's member list). What --hawf-quorum is checked against.
std::vector<uid_t> reviewer_uids(const std::vector<std::string>& reviewers);

// Whether UID is among REVIEWERS: named, or a member of a named group (its primary
// group or a supplementary one, getgrouplist).
bool is_reviewer(const std::vector<std::string>& reviewers, uid_t uid);

// Everyone SPEC names as a reviewer: the job's own reviewers, then each site policy's,
// each entry once, in that order. Who may approve or see a delegated checkpoint.
std::vector<std::string> all_reviewers(const CheckpointSpec& spec);

// Delegated mode: whether CALLER may approve at SPEC's checkpoint: one of the job's
// reviewers or of a site policy's, and its owner only if listed so and owner_may_decide.
// Error(Denied) naming all the reviewers otherwise. (Owner mode: check_may_decide,
// actions.hpp.)
void check_may_approve(const CheckpointSpec& spec, uid_t caller);

// Whether APPROVALS (Approved events agreeing on one decision; an approver given twice
// counts once) meet every requirement of SPEC: the job's own, spec.quorum distinct
// approvers among spec.reviewers (none if it has no reviewers), and each of
// spec.required, its quorum among its reviewers. An approver counts for every list
// that names them (NSS, now: is_reviewer); the owner for none when !owner_may_decide.
// Without site policies every approval counts for the job's own list: hawfd admitted
// it as one of its reviewers (check_may_approve), and there is no other list it could
// have been admitted for.
bool requirements_met(const CheckpointSpec& spec, const std::vector<const Event*>& approvals);

// A decision the approvals in force have reached, and the Approved events (their
// seq numbers, in order) that make it.
struct Quorum {
    Decision decision;  // the choice and parameters; comment: the approvals' non-empty comments, one per line
    // The approvals in force for this choice and parameters, in the order given, up to
    // and including the one that completed the last requirement (so the last one here).
    std::vector<std::uint64_t> approvals;
    bool operator==(const Quorum& o) const;
};
// The choice (with identical parameters) whose approvals in force met every
// requirement first (requirements_met; "first": its completing approval came before
// any other choice's); nullopt while none does, and once the checkpoint is no longer
// pending. COUNTS, if given, says which approvals in force count at all (hawfd leaves
// out those whose credentials do not verify; record_quorum, those hawfd did not count).
std::optional<Quorum> reached_quorum(const Checkpoint& ckpt,
                                     const std::function<bool(const Event& approval)>& counts = {});

// What hawf-decide asks hawfd for, the payload of the reviewer's credential:
// {"op":"decide","checkpoint":"J:N","choice":...,"params":{...},"comment":...} and
// "user" (the owner) when OWNER_USER is not "".
nlohmann::json decide_request(const CheckpointId& id, const Decision& decision, const std::string& owner_user = "");
// {"op":"withdraw","checkpoint":"J:N"} (and "user").
nlohmann::json withdraw_request(const CheckpointId& id, const std::string& owner_user = "");

// The payload of hawfd's seal over DECIDED (a Decided event not yet or already in
// CKPT's history: via hawfd, a quorum, "op":"decided"; via timeout, the default hawfd
// took at the deadline, "op":"default"): the checkpoint, its owner's uid, the
// decision, and the seq, uid and name of each approval it names (looked up in CKPT's
// history: Error Untrusted if one is not an approval there). Canonical JSON: the
// same bytes when recomputed from the log.
std::string decision_seal_payload(const Checkpoint& ckpt, const Event& decided);

// The payload of root's seal over SPEC (CheckpointSpec::seal): {"op":"opened","spec":
// ...} with the whole spec as the record writes it but the seal, so it binds the
// checkpoint, its owner, scope, options, parameters, timeout and default, follow-ups,
// signal, reviewers, quorum, owner_may_decide and the site policies' requirements.
// Canonical JSON: the same bytes when recomputed from the record.
std::string spec_seal_payload(const CheckpointSpec& spec);

// Whether SPEC was opened by hawf where hawfd is configured: its seal decodes (munged at
// MUNGE_SOCKET, "" = default; expired and replayed credentials still verify) to uid 0
// with exactly spec_seal_payload(SPEC). Error(Untrusted) "the checkpoint J:N was not
// opened by hawf (its spec is not sealed): WHY" otherwise; Error(System) if munged
// cannot be asked. Anyone can decode the seal.
void verify_spec(const CheckpointSpec& spec, const std::string& munge_socket);

// One approval, withdrawal or decision of a checkpoint held against its credential.
struct EventCheck {
    std::uint64_t seq = 0;
    EventType type = EventType::Decided;
    std::string by;       // as the event claims
    bool ok = false;
    std::string problem;  // why not, one line ("" when ok)
};
// Checks, decoding with munged at MUNGE_SOCKET ("" = default): the spec (the Opened
// event: verify_spec's rule) when it is sealed, or, with SPEC_MUST_BE_SEALED (hawfd is
// configured), whenever the checkpoint has been opened; each Approved and
// Withdrawn event (the reviewer's credential: its uid is the event's by_uid, its
// payload the request for exactly this checkpoint and decision) and each decision
// (Decided, Amended, Revoked) of a delegated checkpoint (only hawfd's sealed Decided
// verifies: uid 0, the payload decision_seal_payload recomputes). Owner-mode
// decisions carry no credential and are not listed. Expired and replayed credentials
// still verify (munge authenticates them; SLURM-NOTES). Reviewers' credentials are
// made for root to decode: run as root (hawfd). Error(System) if munged cannot be asked.
std::vector<EventCheck> verify_events(const Checkpoint& ckpt, const std::string& munge_socket,
                                      bool spec_must_be_sealed = false);

// What a follow-up's delivery checks before it runs: for a delegated checkpoint, the
// decision in force is hawfd's (a quorum's, or the default it took at the deadline)
// and its seal verifies. Error(Untrusted) saying why not;
// nothing to check in owner mode. Anyone can decode hawfd's seal.
void verify_decision(const Checkpoint& ckpt, const std::string& munge_socket);

}  // namespace hawf
