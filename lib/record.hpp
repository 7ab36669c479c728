// The one record format: a checkpoint's history is a sequence of immutable events
// (JSON, one file each). Everything else — the checkpoint's state, its current
// decision — is derived by folding the events in order, so there is nothing to
// keep consistent and a crash can never leave two truths.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "limits.hpp"
#include "validate.hpp"

namespace hawf {

// Variables a job gets: a name and value for each environment variable, in order.
using Environment = std::vector<std::pair<std::string, std::string>>;

// Through what an event was written: the plugin in a job, a command (hawf-decide,
// hawf-await), a deadline passing, or hawfd for a reviewer.
enum class Via { Plugin, Cli, Timeout, Hawfd };
std::string to_string(Via via);
// Error(Untrusted) for another name: only records carry one.
Via parse_via(const std::string& name);

// Where a checkpoint was opened, so what ends it: an srun step, an sbatch job's batch
// step, or hawf-await --open inside a running job.
enum class Scope { Step, Job, Inline };
std::string to_string(Scope scope);
// Error(Untrusted) for another name: only records carry one.
Scope parse_scope(const std::string& name);

// What the marked job declared; fixed when the checkpoint is opened.
struct CheckpointSpec {
    CheckpointId id;
    uid_t owner_uid = 0;
    std::string owner;                 // user name, for display
    Scope scope = Scope::Step;
    std::vector<std::string> options;  // allowed choices, in order
    std::vector<ParamSpec> params;
    std::int64_t timeout_s = 0;        // 0: no timeout
    std::string default_choice;        // required when timeout_s > 0
    std::vector<ThenSpec> then;        // follow-ups declared with --hawf-then
    std::string signal;                // sent to the running job on a decision ("USR1"), or ""
    // Delegated mode (--hawf-reviewers, --hawf-quorum, site policies): who decides
    // instead of the owner. The job's own requirement: QUORUM distinct approvals from
    // its REVIEWERS (empty: the job asked for none, and quorum is 1).
    std::vector<std::string> reviewers;  // user names and "@group"s, each once
    std::uint32_t quorum = 1;            // distinct reviewers who must approve the same decision
    bool owner_may_decide = true;        // false (a policy): the owner may not approve even if listed
    // What a site policy requires besides the job's own reviewers: QUORUM distinct
    // approvals from its REVIEWERS. A decision needs every requirement met (the job's
    // own and each of these); one approver counts for every list that names them, but
    // the job's reviewers never count towards a policy's quorum unless the policy names
    // them too.
    struct Requirement {
        std::vector<std::string> reviewers;  // at least one: users and "@group"s, each once
        std::uint32_t quorum = 1;
        std::string policy;                  // where the policy is: "FILE:LINE"
        bool operator==(const Requirement& o) const {
            return reviewers == o.reviewers && quorum == o.quorum && policy == o.policy;
        }
    };
    std::vector<Requirement> required;  // from site policies, in config order
    // Where hawfd tells people about the checkpoint (--hawf-notify): channel names of
    // hawf.yaml's notify: ("mail", webhook names) or {"none"}; empty: the site's
    // default. Written only when given, so other records are unchanged.
    std::vector<std::string> notify;
    // Root's munge credential over the rest of the spec (review.hpp: spec_seal_payload),
    // made where the checkpoint is opened when hawfd is configured: the plugin's child
    // in slurmstepd before it drops root, hawfd for hawf-await --open. The owner can
    // rewrite their tree, not make a credential of uid 0; delivery (with hawfd) runs
    // follow-ups only of a checkpoint whose spec verifies. "" = none (written only
    // when present, so other records are unchanged).
    std::string seal;
    // Neither own reviewers nor policies: owner mode (quorum 1, owner_may_decide).
    bool delegated() const { return !reviewers.empty() || !required.empty(); }

    const ParamSpec* param(const std::string& key) const;
    bool has_option(const std::string& choice) const;
    // Cross-field rules (timeout needs a default, default and then-choices among options;
    // reviewers well-formed, 1 <= quorum <= 64; without own reviewers the quorum is 1;
    // each requirement has reviewers, a quorum in range and names its policy, at most
    // max_requirements; owner mode lets the owner decide) and the limits: how many
    // options, parameters, enum values and reviewers, how large a record.
    void check(const Limits& limits = Limits{}) const;
};

struct Decision {
    std::string choice;
    std::map<std::string, std::string> params;  // values verbatim, checked against the spec
    std::string comment;
};

// The choice is one of the options, every parameter is declared and its value fits
// its type, and the decision fits in a record of limits.max_record_bytes.
void check_decision(const CheckpointSpec& spec, const Decision& decision, const Limits& limits);

// A job waiting in Slurm's queue (held, afterok on the checkpoint's job) for a
// decision whose choice is in ON; empty ON means the checkpoint's first option.
struct FollowUp {
    CheckpointId of;   // the checkpoint it follows
    uid_t owner_uid = 0;
    std::string job;   // its Slurm job id
    std::string script;
    std::vector<std::string> on;
};

enum class EventType {
    Opened, Pending, Failed, Decided, Amended, Revoked, Applied, NodeEnded, Reopened, FollowUpAdded,
    Approved,   // a reviewer's approval of a decision (delegated mode); the checkpoint stays pending
    Withdrawn,  // a reviewer withdrew their approval before the quorum
};
std::string to_string(EventType type);

struct Event {
    std::uint64_t seq = 0;             // 1, 2, ...: also the file name
    EventType type = EventType::Opened;
    std::int64_t at = 0;               // unix seconds
    std::string by;                    // user name of the actor
    uid_t by_uid = 0;
    Via via = Via::Cli;
    std::string host;
    std::optional<CheckpointSpec> spec;    // Opened
    std::optional<Decision> decision;      // Decided, Amended, Approved
    int exit_status = 0;                   // Failed, NodeEnded: a wait status
    std::uint32_t node = 0;                // NodeEnded: which node of a multi-node step
    std::optional<FollowUp> followup;      // FollowUpAdded
    std::string job;                       // Applied: the follow-up that started with the decision
    // Approved, Withdrawn: the reviewer's munge credential that asked for it (its payload
    // is the request, see review.hpp); Decided via hawfd: hawfd's seal over the decision.
    std::string credential;
    std::vector<std::uint64_t> approvals;  // Decided via hawfd: the Approved events that made the quorum
};

// Expected: follow-ups wait for a checkpoint its job has not opened yet.
enum class State { Expected, Running, Pending, Decided, Applied, Failed };
std::string to_string(State state);
State parse_state(const std::string& text);

struct Checkpoint {
    CheckpointSpec spec;
    State state = State::Running;
    std::optional<Event> decided;  // the Decided/Amended event in force, if any
    std::int64_t pending_since = 0;
    std::map<std::uint32_t, int> nodes_ended;  // multi-node step: node -> wait status
    std::vector<FollowUp> followups;
    // Delegated mode: the approvals in force, one per reviewer (a newer approval of the
    // same reviewer replaces theirs), in the order given; frozen once decided.
    std::vector<Event> approvals;
    std::vector<Event> history;

    const Decision* decision() const { return decided ? &*decided->decision : nullptr; }
    // Who made the decision in force, as HAWF_DECIDED_BY says it: the reviewers whose
    // approvals made a quorum ("bob,carol"), else the event's actor; "" if undecided.
    std::string decided_by() const;

    std::int64_t deadline() const { return spec.timeout_s && pending_since ? pending_since + spec.timeout_s : 0; }
    // The choices that release follow-up F (its own, or the first option).
    std::vector<std::string> releasing_choices(const FollowUp& f) const;
    const FollowUp* followup(const std::string& job) const;
    std::uint64_t last_seq() const { return history.empty() ? 0 : history.back().seq; }
};

// Builds the checkpoint from its events; throws Error(Untrusted) on a history that
// could not have been written by hawf (gaps, transitions that are not allowed, more
// events than the ceiling of limits.max_events, a withdrawal without an approval, a
// quorum decision whose approvals are not in force, not distinct, do not agree with
// it or are fewer than its largest quorum). Who wrote an event is not checked here
// (that needs munge: review.hpp verifies), nor whether the approvers are on the
// lists the requirements name (that needs NSS: review.hpp's requirements_met, applied
// when the decision is made and bound by hawfd's seal).
Checkpoint fold(std::vector<Event> events);

// The state an event moves a checkpoint in `from` to, or nullopt if not allowed.
std::optional<State> transition(State from, EventType type);

nlohmann::json to_json(const CheckpointSpec& spec);
nlohmann::json to_json(const Decision& decision);
nlohmann::json to_json(const Event& event);
// Strict: unknown types, missing fields or bad values throw Error(Untrusted). Every
// field is held to what the command line accepts: integers must be JSON integers in
// range, names and hosts well-formed, values of their declared type; a spec within
// Limits::ceilings().
Event event_from_json(const nlohmann::json& json);

// The largest munge credential hawf writes or reads: a delegated checkpoint's spec
// and decisions travel to hawfd in one and are sealed in one (hawfd's request line
// holds it and its envelope).
constexpr std::size_t max_credential_bytes = 511 * 1024;
// At most the bytes of a munge credential over PAYLOAD_BYTES: "MUNGE:", base64 of the
// payload with munge's header, MAC and cipher padding (under 256 bytes), ':'.
std::size_t credential_bytes(std::size_t payload_bytes);

// How deeply a record, request or answer may nest: ours go 6 levels deep. nlohmann
// copies and prints recursively, so a deeper text from another user could overflow
// the stack of whoever reads it (root's `hawf ls`, hawfd).
constexpr int max_json_depth = 32;
// TEXT as JSON, or a discarded value when it is not JSON or nests deeper than
// max_json_depth: the one way hawf parses text someone else wrote.
nlohmann::json parse_json(std::string_view text);
CheckpointSpec spec_from_json(const nlohmann::json& json);
// The fields of EV that event_from_json checks (actor, host, via, follow-up script),
// for a writer to refuse up front what it could not read back: Error(Untrusted).
void check_event_fields(const Event& ev);

// The decision as delivered to follow-ups and printed by hawf-await --json.
nlohmann::json decision_json(const Checkpoint& ckpt);
// PARAMS as JSON of the types SPEC declares: int and float numbers, bool true/false,
// string and enum text (so is a value that no longer parses as its type).
nlohmann::json typed_params(const CheckpointSpec& spec, const std::map<std::string, std::string>& params);

std::string format_time(std::int64_t unix_seconds);  // 2026-11-27T01:02:03Z
// The same in local time without the zone ("2026-11-27T02:02:03"), as Slurm takes it.
std::string format_local_time(std::int64_t unix_seconds);
std::int64_t parse_time(const std::string& text);

}  // namespace hawf
