#include "views.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "actions.hpp"
#include "error.hpp"
#include "fsutil.hpp"

namespace hawf {

using nlohmann::json;

json approvals_json(const Checkpoint& ckpt) {
    json list = json::array();
    for (const auto& a : ckpt.approvals)
        list.push_back({{"by", a.by}, {"by_uid", a.by_uid}, {"at", format_time(a.at)}, {"choice", a.decision->choice},
                        {"params", a.decision->params}, {"comment", a.decision->comment}});
    return list;
}

json summary_json(const Checkpoint& c) {
    json j = {{"checkpoint", c.spec.id.str()}, {"owner", user_name(c.spec.owner_uid)}, {"state", to_string(c.state)},
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

json checkpoint_files(const Spool& spool, uid_t owner, const CheckpointId& id, std::string* report) {
    json files = json::array();
    const std::string dir = spool.files_dir(owner, id);
    Fd fd = spool.open_files_dir(owner, id);
    if (!fd) return files;
    for (const auto& name : list_dir(fd.get())) {
        struct stat st;
        if (fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        files.push_back({{"name", name}, {"bytes", st.st_size},
                         {"type", S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : "file"}});
    }
    std::sort(files.begin(), files.end(), [](const json& a, const json& b) { return a["name"] < b["name"]; });
    try {
        if (auto text = read_file(fd.get(), "report.md", Trust{owner}, dir + "/report.md", 64 * 1024)) *report = *text;
    } catch (const Error& e) {
        *report = "(not shown: " + std::string(e.what()) + ")\n";  // escaped with the report
    }
    return files;
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
        json j = {{"job", c.job}, {"action", c.action}};
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

}  // namespace hawf
