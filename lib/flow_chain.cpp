// hawf submit: a checked flow (flow.hpp) turned into its Slurm job chain at once.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <ctime>
#include <map>

#include "actions.hpp"
#include "error.hpp"
#include "flow.hpp"
#include "followups.hpp"
#include "slurm.hpp"
#include "spool.hpp"
#include "validate.hpp"

namespace hawf {
namespace {

// The --hawf-* options of a stage's checkpoint, as a user would give them to sbatch.
std::vector<std::string> checkpoint_options(const FlowCheckpoint& c) {
    std::vector<std::string> args = {"--hawf-checkpoint=" + c.name};
    if (!c.options.empty()) args.push_back("--hawf-options=" + joined(c.options, ","));
    if (!c.params.empty())
        args.push_back("--hawf-params=" +
                       joined(c.params, ",", [](const ParamSpec& p) { return p.key + ":" + p.type_text(); }));
    if (c.timeout_s) {
        args.push_back("--hawf-timeout=" + std::to_string(c.timeout_s) + "s");
        args.push_back("--hawf-default=" + c.default_choice);
    }
    if (!c.reviewers.empty()) args.push_back("--hawf-reviewers=" + joined(c.reviewers, ","));
    return args;
}

bool names_job(const std::vector<std::string>& sbatch) {
    for (const auto& o : sbatch)
        if (o == "-J" || o.rfind("--job-name", 0) == 0 || (o.rfind("-J", 0) == 0 && o.size() > 2)) return true;
    return false;
}

std::string absolute_dir(const std::string& dir) {
    char real[PATH_MAX];
    if (!realpath(dir.c_str(), real)) throw system_error("cannot resolve the flow's directory " + dir, errno);
    return real;
}

}  // namespace

nlohmann::json to_json(const FlowRecord& r) {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& s : r.stages)
        stages.push_back({{"name", s.name}, {"job", s.job}, {"checkpoint", s.checkpoint}, {"after", s.after}, {"on", s.on}});
    return {{"v", 1}, {"id", r.id}, {"name", r.name}, {"file", r.file}, {"submitted_at", r.submitted_at},
            {"stages", stages}};
}

FlowRecord flow_record_from_json(const nlohmann::json& j) {
    FlowRecord r;
    try {
        if (j.at("v") != 1) throw Error(ErrorKind::Untrusted, "a flow record of another version");
        r.id = j.at("id").get<std::string>();
        check_job_id(r.id);
        r.name = j.at("name").get<std::string>();
        check_name(r.name, "flow name");
        r.file = j.at("file").get<std::string>();
        r.submitted_at = j.at("submitted_at").get<std::int64_t>();
        for (const auto& s : j.at("stages")) {
            FlowRecord::Stage stage{s.at("name").get<std::string>(), s.at("job").get<std::string>(),
                                    s.at("checkpoint").get<std::string>(), s.at("after").get<std::vector<std::string>>(),
                                    s.at("on").get<std::vector<std::string>>()};
            check_name(stage.name, "stage name");
            check_job_id(stage.job);
            if (!stage.checkpoint.empty()) parse_checkpoint_id(stage.checkpoint);
            for (const auto& choice : stage.on) check_name(choice, "choice");
            r.stages.push_back(std::move(stage));
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Untrusted, std::string("a flow record hawf did not write: ") + e.what());
    }
    return r;
}

std::map<std::string, nlohmann::json> flows_of_checkpoints(const Spool& spool, uid_t owner) {
    std::map<std::string, nlohmann::json> index;
    for (const auto& id : spool.flow_ids(owner)) {
        try {
            const auto text = spool.flow(owner, id);
            if (!text) continue;
            const FlowRecord record = flow_record_from_json(parse_json(*text));
            for (const auto& s : record.stages)
                if (!s.checkpoint.empty()) index[s.checkpoint] = {{"flow", record.id}, {"name", record.name}, {"stage", s.name}};
        } catch (const Error&) {  // not a listing's business: hawf status names what is wrong
        }
    }
    return index;
}

FlowRecord submit_flow(const Spool& spool, const Slurm& slurm, const Flow& flow, uid_t owner, const Actor& actor) {
    const std::string dir = absolute_dir(flow.dir);
    FlowRecord record;
    record.name = flow.name;
    record.file = flow.path[0] == '/' ? flow.path : dir + "/" + flow.path.substr(flow.path.rfind('/') + 1);
    record.submitted_at = std::time(nullptr);
    std::map<std::string, std::string> job_of;  // stage -> its job
    std::vector<std::string> submitted;
    try {
        for (const FlowStage& s : flow.stages) {
            const std::string script = s.run.empty() ? (s.script[0] == '/' ? s.script : dir + "/" + s.script) : "";
            // sbatch copies the script at submission; a run: command gets one written for it.
            const std::string read =
                s.run.empty() ? script
                              : spool.script_path(owner, spool.save_script(owner, s.name, "#!/bin/sh\n" + s.run + "\n"));
            std::vector<std::string> args = s.sbatch;
            if (!names_job(s.sbatch)) args.push_back("--job-name=" + flow.name + "." + s.name);
            if (s.checkpoint) {
                const auto more = checkpoint_options(*s.checkpoint);
                args.insert(args.end(), more.begin(), more.end());
            }
            std::vector<std::string> plain;  // the jobs of the stages it waits for by name
            for (const FlowAfter& a : s.after)
                if (a.checkpoint.empty()) plain.push_back(job_of.at(a.stage));
            FlowRecord::Stage stage{s.name, "", "", {}, s.on};
            for (const FlowAfter& a : s.after) stage.after.push_back(a.str());
            if (const FlowAfter* gate = s.after_checkpoint()) {
                const CheckpointId of{job_of.at(gate->stage), gate->checkpoint};
                FollowUpSubmission what{s.run.empty() ? script : read, read, s.on, dir, nullptr, args, plain};
                submit_followup(spool, slurm, of, owner, what, actor, &stage.job);
            } else {
                if (!plain.empty()) {
                    args.push_back("--dependency=afterok:" + joined(plain, ":"));
                    args.push_back("--kill-on-invalid-dep=yes");  // a cancelled branch takes its join with it
                }
                stage.job = slurm.submit(args, read, dir);
            }
            submitted.push_back(stage.job);
            if (s.checkpoint) stage.checkpoint = CheckpointId{stage.job, s.checkpoint->name}.str();
            job_of[s.name] = stage.job;
            record.stages.push_back(std::move(stage));
        }
        record.id = record.stages.front().job;
        spool.save_flow(owner, record.id, to_json(record).dump(2) + "\n");
    } catch (const Error& e) {
        std::string undone;
        if (!submitted.empty()) {
            try {
                slurm.cancel(submitted);
                undone = " (" + joined(submitted, ", ") + ", submitted before, cancelled)";
            } catch (const Error& cancel) {
                undone = " (" + joined(submitted, ", ") + " submitted before; cancelling them failed: " + cancel.what() + ")";
            }
        }
        throw Error(e.kind(), "cannot submit flow " + flow.name + ": " + e.what() + undone);
    }
    return record;
}

}  // namespace hawf
