// Parsing and validation of everything a user types: checkpoint names and ids,
// choice lists, typed parameter declarations and values, durations.
// Every function either returns a well-formed value or throws Error(Usage)
// whose message names the bad value and what is allowed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hawf {

// TEXT in double quotes for a message, control characters shown as escapes and cut
// after 80 bytes, so a refusal stays one harmless line whatever it echoes.
std::string quoted_text(const std::string& text);

// NAME: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
void check_name(const std::string& name, const std::string& what = "checkpoint name");

// A Slurm job id: "1234" or, for an array task, "1234_7".
void check_job_id(const std::string& job_id);
// An array's job id: "1234", never a task.
void check_array_job_id(const std::string& job_id);

struct CheckpointId {
    std::string job_id;  // "1234" or "1234_7"
    std::string name;
    std::string str() const { return job_id + ":" + name; }
    bool operator==(const CheckpointId& o) const { return job_id == o.job_id && name == o.name; }
};
CheckpointId parse_checkpoint_id(const std::string& text);

// What a command line names as "JOBS:NAME": checkpoint NAME of each of JOBS, a
// ','-separated list of "4242" (a job; for an array job all its tasks; for an array
// task's own job id that task), "4242_8", "4242_[1-5,9]" or "4242_*".
struct JobSelector {
    std::string job;                  // "4242"
    bool all_tasks = false;           // "4242_*"
    std::vector<std::uint32_t> tasks;  // "4242_8", "4242_[1-5,9]"; none: "4242" as it is
};
struct CheckpointSelection {
    std::vector<JobSelector> jobs;
    std::string name;
};
// At most max_selected tasks in all (Slurm's own MaxArraySize tops at 4,000,001).
constexpr std::size_t max_selected = 100000;
CheckpointSelection parse_checkpoint_selection(const std::string& text);
// "1-5,9" for sorted TASKS (Slurm's --array and job-range syntax).
std::string task_ranges(const std::vector<std::uint32_t>& tasks);

// What a follow-up waits for (--hawf-after): "4242:eval", or "4242_*:eval" for a
// follow-up array (--hawf-then on an array job) whose task T waits for 4242_T:eval.
struct FollowUpOf {
    CheckpointId id;        // {"4242", "eval"}
    bool each_task = false;  // "4242_*": id.job_id is the array job
    // The checkpoint of task TASK of the follow-up array (each_task), else id.
    CheckpointId for_task(std::uint32_t task) const {
        return each_task ? CheckpointId{id.job_id + "_" + std::to_string(task), id.name} : id;
    }
    std::string str() const { return id.job_id + (each_task ? "_*:" : ":") + id.name; }
};
FollowUpOf parse_followup_of(const std::string& text);

// Of IDS, checkpoint NAME of the tasks of array ARRAY_JOB, in task order.
std::vector<CheckpointId> array_tasks(const std::vector<CheckpointId>& ids, const std::string& array_job,
                                      const std::string& name);

// "A,B,C": at least one, each a valid name, no duplicates.
std::vector<std::string> parse_choices(const std::string& text, const std::string& what = "options");

// --hawf-notify: "mail,ml-team" (channel names, each once, at most 16) or "none" alone.
std::vector<std::string> parse_notify_channels(const std::string& text);
// "a,b,c" of NAMES (for messages).
std::string joined(const std::vector<std::string>& names, const char* separator = ", ");
// The same of EACH(item) for every item of ITEMS.
template <typename Items, typename Each>
std::string joined(const Items& items, const char* separator, Each each) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : separator) + each(item);
    return out;
}
// An enum's names: TABLE holds {value, name} pairs. The name of VALUE ("?" if none),
// and the value named NAME (none if no entry has that name).
template <typename E, std::size_t N>
std::string name_in(const std::pair<E, const char*> (&table)[N], E value) {
    for (const auto& [v, name] : table)
        if (v == value) return name;
    return "?";
}
template <typename E, std::size_t N>
std::optional<E> value_in(const std::pair<E, const char*> (&table)[N], const std::string& name) {
    for (const auto& [v, known] : table)
        if (name == known) return v;
    return std::nullopt;
}
// S is one or more of 0-9.
bool all_digits(const std::string& s);
// The parts of S between the SEPs: "a,,b" -> {"a", "", "b"}, "" -> {""}.
std::vector<std::string> split(const std::string& s, char sep);
// A plain address LOCAL@DOMAIN as hawfd puts it in an SMTP envelope and a To: header:
// no display name, no spaces, quotes, angle brackets or control characters.
bool valid_mail_address(const std::string& address);

enum class ParamType { Int, Float, Bool, String, Enum };

struct ParamSpec {
    std::string key;                  // [A-Za-z_][A-Za-z0-9_]{0,63}
    ParamType type = ParamType::String;
    std::vector<std::string> values;  // for Enum
    std::string type_text() const;    // "int", "enum(a|b)", ...
    bool operator==(const ParamSpec& o) const {
        return key == o.key && type == o.type && values == o.values;
    }
};
// "lr:float,mode:enum(fast|slow)"
std::vector<ParamSpec> parse_param_specs(const std::string& text);
ParamSpec parse_param_spec(const std::string& text);

// Checks VALUE against the declared type; returns it unchanged (values are kept
// verbatim so they are delivered exactly as typed). Limits the size to max_bytes.
std::string check_param_value(const ParamSpec& spec, const std::string& value, std::size_t max_bytes);

// "KEY=VALUE" from --set; VALUE may hold '=', newlines, quotes.
std::pair<std::string, std::string> parse_assignment(const std::string& text);

// hawf-decide --params-from: parameter values per checkpoint, from a JSON object
// {"8": {"lr": 0.001, "tag": "b"}, ...} or CSV (a header row "task,lr,tag", then one
// row per task; an empty cell sets nothing), keyed by task ("8"), job id ("4242_8")
// or checkpoint ("4242_8:eval"). Values become text as --set takes them (JSON
// numbers and booleans as written). SOURCE names the file in errors.
using ParamsTable = std::map<std::string, std::map<std::string, std::string>>;
ParamsTable parse_params_table(const std::string& content, const std::string& source);
// The keys a row of a ParamsTable may have for checkpoint ID, most specific first.
std::vector<std::string> params_keys(const CheckpointId& id);

// "90s", "30m", "24h", "2d" -> seconds (> 0, at most max_duration_s).
constexpr std::int64_t max_duration_s = 365LL * 86400;
std::int64_t parse_duration(const std::string& text);
std::string format_duration(std::int64_t seconds);

// Text that goes into a JSON record must be valid UTF-8 (no other bytes survive JSON).
void check_utf8(const std::string& text, const std::string& what);

// A user name as hawf records and shows it (an actor, an owner): a passwd name,
// [A-Za-z0-9_][A-Za-z0-9._@-]* with an optional trailing '$', at most 255 bytes,
// or the decimal uid user_name() gives for a uid without one. Nothing that could
// pass for an option, a path or another column.
void check_user_name(const std::string& name, const std::string& what = "user name");

// A host name: 1-255 letters, digits, '.', '_' or '-'.
void check_host_name(const std::string& name, const std::string& what = "host name");

// A file path hawf stores and shows (a follow-up's script): 1-4096 bytes of UTF-8
// without control characters (C0, DEL, C1), which check_utf8 alone lets through.
void check_path(const std::string& path, const std::string& what);

// A signal hawf may send to a running job: USR1, USR2, HUP, INT, TERM or CONT, to
// every process of the job, or with "@batch" (USR1@batch) to its batch shell only.
void check_signal(const std::string& name);

// --hawf-then=SCRIPT[:CHOICE,...]
struct ThenSpec {
    std::string script;
    std::vector<std::string> on;  // empty: the first option
};
ThenSpec parse_then(const std::string& text);

}  // namespace hawf
