#include "views.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "actions.hpp"
#include "display.hpp"
#include "error.hpp"
#include "fsutil.hpp"
#include "validate.hpp"

namespace hawf {

using nlohmann::json;

std::string local_time_text(const std::string& utc) { return format_local_time(parse_time(utc)); }

std::string param_text(const json& value) { return value.is_string() ? shown(value.get<std::string>()) : value.dump(); }

std::string decision_text(const json& choice, const json& params) {
    std::string text = shown(choice.get<std::string>());
    for (const auto& [key, value] : params.items()) text += " " + key + "=" + param_text(value);
    return text;
}

json approvals_json(const Checkpoint& ckpt) {
    json list = json::array();
    for (const auto& a : ckpt.approvals)
        list.push_back({{"by", a.by}, {"by_uid", a.by_uid}, {"at", format_time(a.at)}, {"choice", a.decision->choice},
                        {"params", typed_params(ckpt.spec, a.decision->params)}, {"comment", a.decision->comment}});
    return list;
}

json summary_json(const Checkpoint& c) { return summary_json(c, user_name(c.spec.owner_uid)); }

json summary_json(const Checkpoint& c, const std::string& owner_name) {
    json j = {{"checkpoint", c.spec.id.str()}, {"owner", owner_name}, {"state", to_string(c.state)},
              {"options", c.spec.options}, {"opened_at", format_time(c.history.front().at)}};
    if (c.deadline()) j["deadline"] = format_time(c.deadline());
    if (c.decision()) j["decision"] = decision_json(c);
    if (c.spec.delegated()) {
        j["reviewers"] = c.spec.reviewers;  // the job's own requirement
        j["quorum"] = c.spec.quorum;
        json required = json::array();       // each site policy's, all to be met as well
        for (const auto& r : c.spec.required)
            required.push_back({{"reviewers", r.reviewers}, {"quorum", r.quorum}, {"policy", r.policy}});
        j["required"] = std::move(required);
        j["approvals"] = approvals_json(c);
    }
    return j;
}

namespace {

// Adds what directory DIR holds to FILES, PREFIX before each name, and what its
// directories hold, DEPTH levels down at most, until FILES has max_listed_files.
// Links are listed, never followed.
void list_files(int dir, const std::string& prefix, int depth, json& files) {
    std::vector<std::string> names = list_dir(dir);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        if (files.size() >= max_listed_files) return;
        struct stat st;
        if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        const bool is_dir = S_ISDIR(st.st_mode);
        files.push_back({{"name", prefix + name}, {"bytes", st.st_size},
                         {"type", is_dir ? "dir" : S_ISLNK(st.st_mode) ? "link" : "file"}});
        if (!is_dir || depth == 0) continue;
        const Fd sub(openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub) list_files(sub.get(), prefix + name + "/", depth - 1, files);
    }
}

}  // namespace

json checkpoint_files(const Spool& spool, uid_t owner, const CheckpointId& id, std::string* report) {
    json files = json::array();
    const std::string dir = spool.files_dir(owner, id);
    Fd fd = spool.open_files_dir(owner, id);
    if (!fd) return files;
    list_files(fd.get(), "", max_listed_depth, files);
    try {
        std::size_t size = 0;
        // 3 bytes more: where the cut falls in a UTF-8 character, whether the next byte continues it.
        if (auto text = read_file_start(fd.get(), "report.md", Trust{owner}, dir + "/report.md",
                                        max_report_bytes + 3, &size)) {
            *report = *text;
            if (size > max_report_bytes) {  // its start, never a UTF-8 character cut in two
                std::size_t end = max_report_bytes;
                while (end > 0 && (static_cast<unsigned char>((*report)[end]) & 0xC0) == 0x80) --end;
                report->resize(end);
                *report += "\n[... report.md has " + std::to_string(size) + " bytes; the first " +
                           std::to_string(max_report_bytes / 1024) + " KiB are shown: hawf cat " + id.str() +
                           " report.md]\n";
            }
        }
    } catch (const Error& e) {
        *report = "(not shown: " + std::string(e.what()) + ")\n";  // escaped with the report
    }
    return files;
}

std::string checkpoint_file(const Spool& spool, uid_t owner, const CheckpointId& id, const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || name.size() > 255)
        throw Error(ErrorKind::Usage, "bad file name " + quoted_text(name) +
                                          ": give the name of a file in the checkpoint directory (hawf show lists them)");
    const std::string shown = spool.files_dir(owner, id) + "/" + name;
    const Fd dir = spool.open_files_dir(owner, id);
    std::optional<std::string> data;
    if (dir) data = read_file(dir.get(), name, Trust{owner}, shown, max_cat_bytes);
    if (!data) throw Error(ErrorKind::NotFound, id.str() + " has no file " + quoted_text(name));
    return *data;
}

namespace {
constexpr char base64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string encode_base64(const std::string& bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
        const std::size_t left = bytes.size() - i;  // 1, 2, or 3 and more
        out += base64_digits[(n >> 18) & 63];
        out += base64_digits[(n >> 12) & 63];
        out += left > 1 ? base64_digits[(n >> 6) & 63] : '=';
        out += left > 2 ? base64_digits[n & 63] : '=';
    }
    return out;
}

std::string decode_base64(const std::string& text) {
    if (text.size() % 4) throw Error(ErrorKind::Untrusted, "not base64: its length is not a multiple of 4");
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        std::uint32_t n = 0;
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = text[i + static_cast<std::size_t>(k)];
            const char* at = c ? std::strchr(base64_digits, c) : nullptr;
            if (c == '=' && i + 4 == text.size() && k >= 2) {
                ++pad;
            } else if (at && !pad) {
                n |= static_cast<std::uint32_t>(at - base64_digits) << (18 - 6 * k);
            } else {
                throw Error(ErrorKind::Untrusted, "not base64: bad character at " + std::to_string(i + k));
            }
        }
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>((n >> 8) & 255);
        if (pad < 1) out += static_cast<char>(n & 255);
    }
    return out;
}

json followup_states(const Slurm& slurm, const Checkpoint& c) {
    json list = json::array();
    for (const auto& f : c.followups) {
        std::string state = "unknown", reason;
        try {
            if (const std::optional<JobInfo> job = slurm.job(f.job)) {
                state = job->state;
                reason = job->reason == "None" ? "" : job->reason;
            } else {
                state = "gone";
            }
        } catch (const Error& e) {
            reason = e.what();
        }
        list.push_back({{"job", f.job}, {"script", f.script}, {"on", c.releasing_choices(f)},
                        {"state", state}, {"reason", reason}});
    }
    return list;
}

json changes_json(const std::vector<FollowUpChange>& changes) {
    json list = json::array();
    for (const auto& c : changes) {
        json j = {{"job", c.job}, {"action", to_string(c.action)}};
        if (c.action == FollowUpAction::Eligible) j["at"] = c.at;
        if (!c.error.empty()) j["error"] = c.error;
        if (c.unsure) j["unsure"] = true;
        list.push_back(j);
    }
    return list;
}

json show_json(const Checkpoint& c, const std::string& files_dir, json files, const std::string& report,
               json followups) {
    json j = summary_json(c);
    j["opened_on"] = c.history.front().host;
    j["spec"] = to_json(c.spec);
    j["files_dir"] = files_dir;
    j["files"] = std::move(files);
    j["report"] = report;
    j["follow_ups"] = std::move(followups);
    return j;
}

namespace {

// What ls's lists take in any case (states, columns), as hawf names them.
std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

}  // namespace

std::vector<State> parse_state_list(const std::string& text) {
    std::vector<State> states;
    for (const std::string& name : split(text, ',')) states.push_back(parse_state(lowercase(name)));
    return states;
}

std::vector<std::string> parse_job_list(const std::string& text) {
    std::vector<std::string> jobs = split(text, ',');
    for (const auto& job : jobs) {
        try {
            check_job_id(job);
        } catch (const Error&) {
            throw Error(ErrorKind::Usage, "bad job id " + quoted_text(job) + " in --jobs: use JOBID or JOBID_TASK, "
                                                                            "comma-separated");
        }
    }
    return jobs;
}

bool listed(const ListFilter& filter, const json& row) {
    const auto any_of = [](const auto& list, const auto& matches) {
        return list.empty() || std::any_of(list.begin(), list.end(), matches);
    };
    const CheckpointId id = parse_checkpoint_id(row.at("checkpoint").get<std::string>());
    const std::string state = row.at("state").get<std::string>(), owner = row.at("owner").get<std::string>();
    return any_of(filter.states, [&](State s) { return to_string(s) == state; }) &&
           any_of(filter.owners, [&](const std::string& o) { return o == owner; }) &&
           any_of(filter.jobs, [&](const std::string& j) { return j == id.job_id || j + "_" == id.job_id.substr(0, j.size() + 1); });
}

namespace {

const char* const list_columns[] = {"checkpoint", "job",  "name",     "state",      "owner",     "options",
                                    "opened",     "deadline", "decision", "decided_by", "reviewers", "flow"};

std::string local_time(const json& row, const char* key) {
    return row.contains(key) ? local_time_text(row[key].get<std::string>()) : "";
}

std::string list_cell(const json& row, const std::string& column) {
    const CheckpointId id = parse_checkpoint_id(row.at("checkpoint").get<std::string>());
    const json none = json::object();
    const json& decision = row.contains("decision") && row["decision"].is_object() ? row["decision"] : none;
    std::string cell;
    if (column == "checkpoint") cell = id.str();
    else if (column == "job") cell = id.job_id;
    else if (column == "name") cell = id.name;
    else if (column == "state") cell = row.at("state").get<std::string>();
    else if (column == "owner") cell = shown(row.at("owner").get<std::string>());
    else if (column == "options") cell = joined(row.at("options").get<std::vector<std::string>>(), ",");
    else if (column == "opened") cell = local_time(row, "opened_at");
    else if (column == "deadline") cell = local_time(row, "deadline");
    else if (column == "decision") cell = decision.value("choice", "");
    else if (column == "decided_by") cell = shown(decision.value("decided_by", ""));
    else if (column == "reviewers" && row.contains("reviewers"))
        cell = shown(joined(row["reviewers"].get<std::vector<std::string>>(), ","));
    else if (column == "flow" && row.contains("flow") && row["flow"].is_object())
        cell = row["flow"].value("flow", "");
    return cell.empty() ? "-" : cell;
}

}  // namespace

std::vector<std::string> parse_list_format(const std::string& text) {
    std::vector<std::string> columns = split(text, ',');
    for (auto& column : columns) {
        column = lowercase(column);
        if (std::find(std::begin(list_columns), std::end(list_columns), column) == std::end(list_columns))
            throw Error(ErrorKind::Usage, "unknown column " + quoted_text(column) + " in --format: use " +
                                              joined(std::vector<std::string>(std::begin(list_columns),
                                                                              std::end(list_columns)), ", "));
    }
    return columns;
}

std::string list_table(const std::vector<json>& rows, const std::vector<std::string>& columns, bool header,
                       bool parsable) {
    std::vector<std::vector<std::string>> table;
    if (header) {
        table.emplace_back();
        for (const auto& column : columns) {
            std::string title = column;
            for (char& c : title) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            table.back().push_back(title);
        }
    }
    for (const auto& row : rows) {
        table.emplace_back();
        for (const auto& column : columns) table.back().push_back(list_cell(row, column));
    }
    // Columns as wide as their widest value, two spaces apart; the last unpadded.
    std::vector<std::size_t> width(columns.size());
    for (const auto& cells : table)
        for (std::size_t i = 0; i < cells.size(); ++i) width[i] = std::max(width[i], cells[i].size());
    std::string out;
    for (const auto& cells : table) {
        for (std::size_t i = 0; i < cells.size(); ++i) {
            out += cells[i];
            if (i + 1 == cells.size()) break;
            out += parsable ? "|" : std::string(width[i] + 2 - cells[i].size(), ' ');
        }
        out += "\n";
    }
    return out;
}

}  // namespace hawf
