// How a checkpoint is shown: the JSON `hawf ls --json` and `hawf show --json` print,
// built once here so hawf (the owner, root) and hawfd (a reviewer's view) agree.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "followups.hpp"
#include "record.hpp"
#include "slurm.hpp"
#include "spool.hpp"

namespace hawf {

// A listing's row: checkpoint, owner (the uid whose tree holds it, never a name the
// record claims), state, options, opened_at, deadline, decision; for a delegated
// checkpoint also reviewers, quorum and the approvals in force. OWNER_NAME is
// user_name(ckpt.spec.owner_uid), which a listing looks up once per owner, not per row.
nlohmann::json summary_json(const Checkpoint& ckpt, const std::string& owner_name);
nlohmann::json summary_json(const Checkpoint& ckpt);

// hawf ls, with squeue's habits: which rows (-t/--states, -u/--user, -j/--jobs) and
// which columns (-o/--format), each a comma-separated list, states in any case.
struct ListFilter {
    std::vector<State> states;        // empty: any
    std::vector<std::string> owners;  // user names; empty: any
    std::vector<std::string> jobs;    // "28" also matches its array tasks (28_3); empty: any
};
std::vector<State> parse_state_list(const std::string& text);
std::vector<std::string> parse_job_list(const std::string& text);
bool listed(const ListFilter& filter, const nlohmann::json& row);  // ROW: a summary_json

// -o/--format: column names (checkpoint, job, name, state, owner, options, opened,
// deadline, decision, decided_by, reviewers); Error(Usage) naming one that is not.
constexpr const char* default_list_format = "checkpoint,state,owner,options,deadline";
std::vector<std::string> parse_list_format(const std::string& text);
// ROWS as a table: a header (unless !HEADER) and columns two spaces apart; with
// PARSABLE cells joined by "|" unpadded. Times in local time, as Slurm shows them;
// what users wrote escaped (shown), "-" for nothing.
std::string list_table(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& columns, bool header,
                       bool parsable);

// "approve lr=0.0001 note=..." for people, from a decision's or approval's JSON
// choice and params (text escaped, other values as JSON writes them).
std::string decision_text(const nlohmann::json& choice, const nlohmann::json& params);
// A record's time (format_time's UTC text) as Slurm shows times: local, no zone.
std::string local_time_text(const std::string& utc);
// A parameter's value for people: text escaped, other values as JSON writes them.
std::string param_text(const nlohmann::json& value);

// The approvals in force: [{"by","by_uid","at","choice","params","comment"}, ...].
nlohmann::json approvals_json(const Checkpoint& ckpt);

// The files the step left for the reviewer ([{"name","bytes","type"}], sorted; in
// directories too, "dir/name", max_listed_depth levels down, max_listed_files at
// most, links listed and never followed) and, into REPORT, its report.md (read
// without following links; of a longer one its first max_report_bytes and a line
// saying so), as the owner (or root acting as the owner) reads them.
constexpr std::size_t max_listed_files = 1000;
constexpr int max_listed_depth = 8;
constexpr std::size_t max_report_bytes = 64 * 1024;
nlohmann::json checkpoint_files(const Spool& spool, uid_t owner, const CheckpointId& id, std::string* report);

// The follow-ups with their state in Slurm ("gone" once Slurm forgot them).
nlohmann::json followup_states(const Slurm& slurm, const Checkpoint& ckpt);

// hawf cat: the file NAME (one entry of the checkpoint directory, a regular file,
// no link followed) of OWNER's checkpoint ID, at most max_cat_bytes. Error(Usage)
// for a NAME that is not a plain entry name, NotFound, Untrusted (too large, a link,
// not a regular file).
constexpr std::size_t max_cat_bytes = 512 * 1024;
std::string checkpoint_file(const Spool& spool, uid_t owner, const CheckpointId& id, const std::string& name);

// Bytes as base64 (RFC 4648) and back, for a file's content in JSON; decode throws
// Error(Untrusted) on anything that is not base64.
std::string encode_base64(const std::string& bytes);
std::string decode_base64(const std::string& text);

// What happened to the follow-ups: [{"job","action","at"? (eligible),"error"?,"unsure"?}].
nlohmann::json changes_json(const std::vector<FollowUpChange>& changes);

// What `hawf show --json` prints: the summary plus opened_on, spec, files_dir, files, report, follow_ups.
nlohmann::json show_json(const Checkpoint& ckpt, const std::string& files_dir, nlohmann::json files,
                         const std::string& report, nlohmann::json followups);

}  // namespace hawf
