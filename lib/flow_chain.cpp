// hawf submit: a checked flow (flow.hpp) turned into its Slurm job chain at once.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <map>
#include <tuple>

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

// Where a stage's job lives in a loop's round K (>= 2): "train" -> "train@3".
std::string in_round(const std::string& stage, std::uint32_t round) {
    return round < 2 ? stage : stage + "@" + std::to_string(round);
}

// A record's "after" entry as the stages it names: a stage, or STAGE.CHECKPOINT of a
// stage with that checkpoint (stage names may hold dots: the record's stages tell).
FlowAfter resolve_after(const FlowRecord& record, const std::string& text) {
    for (const auto& s : record.stages) {
        if (text == s.name) return {s.name, ""};
        if (s.checkpoint.empty()) continue;
        const std::string name = parse_checkpoint_id(s.checkpoint).name;
        if (text == s.name + "." + name) return {s.name, name};
    }
    throw Error(ErrorKind::Untrusted, "a flow record whose stage waits for " + quoted_text(text) + ", which it lacks");
}

// Submits a flow's stages (as OWNER, from DIR, sbatch with ENV) and remembers what it
// submitted, to cancel it all if a later one fails.
struct Submitter {
    const Spool& spool;
    const Slurm& slurm;
    uid_t owner;
    const Actor& actor;
    std::string dir;
    const std::vector<std::string>* env;
    std::vector<std::string> submitted;

    // Stage S: after a checkpoint as its held follow-up (released on ON), else with
    // afterok on the stages it waits for. JOB_OF: the jobs of the stages AFTER names.
    std::string submit(const FlowRecord::Stage& s, const std::vector<FlowAfter>& after, const std::vector<std::string>& on,
                       const std::string& read, const std::map<std::string, std::string>& job_of) {
        std::vector<std::string> plain;  // the jobs of the stages it waits for by name
        const FlowAfter* gate = nullptr;
        for (const FlowAfter& a : after) {
            if (a.checkpoint.empty()) plain.push_back(job_of.at(a.stage));
            else gate = &a;
        }
        std::string job;
        if (gate) {
            FollowUpSubmission what{s.script, read, on, dir, env, s.args, plain};
            follow(CheckpointId{job_of.at(gate->stage), gate->checkpoint}, what, job);
        } else {
            std::vector<std::string> args = s.args;
            if (!plain.empty()) {
                args.push_back("--dependency=afterok:" + joined(plain, ":"));
                args.push_back("--kill-on-invalid-dep=yes");  // a cancelled branch takes its join with it
            }
            job = slurm.submit(args, read, dir, env);
        }
        submitted.push_back(job);
        return job;
    }

    // Round ROUND of repeating stage LOOP, held for the decision at the checkpoint of
    // PREVIOUS (the round before: its job, its name in the record); and the index
    // (flows/job.<job>: {flow, stage, round}) by which continue_flow knows it.
    FlowRecord::Stage next_round(const std::string& flow, const FlowRecord::Stage& loop, std::uint32_t round,
                                 const std::string& previous, const std::string& previous_name) {
        const std::string checkpoint = parse_checkpoint_id(loop.checkpoint).name;
        FlowRecord::Stage entry;
        entry.name = in_round(loop.name, round);
        entry.after = {previous_name + "." + checkpoint};
        entry.on = loop.repeat_on;
        FollowUpSubmission what{loop.script, spool.script_path(owner, loop.snapshot), loop.repeat_on, dir, env, loop.args, {}};
        follow(CheckpointId{previous, checkpoint}, what, entry.job);
        submitted.push_back(entry.job);
        entry.checkpoint = CheckpointId{entry.job, checkpoint}.str();
        const nlohmann::json index = {{"flow", flow}, {"stage", loop.name}, {"round", round}};
        if (!spool.save_flow_file(owner, "job." + entry.job, index.dump() + "\n"))
            throw Error(ErrorKind::Conflict, "job " + entry.job + " is in a flow already");
        return entry;
    }

    // A held follow-up of OF. Registered after OF's job already ended at it (a stage
    // that ran at once: no queue wait without Slurm), it also waits for the deadline,
    // as hawf-await --then does: the job's end scheduled only those registered before.
    void follow(const CheckpointId& of, const FollowUpSubmission& what, std::string& job) {
        const Checkpoint ckpt = submit_followup(spool, slurm, of, owner, what, actor, &job);
        for (const FollowUpChange& c : schedule_deadline(slurm, ckpt, job))
            if (!c.error.empty()) throw Error(ErrorKind::System, "follow-up " + job + " not " + c.action_text() + ": " + c.error);
    }

    // Cancels what it submitted, for an error: what that error then says.
    std::string undo() const {
        if (submitted.empty()) return "";
        try {
            slurm.cancel(submitted);
            return " (" + joined(submitted, ", ") + ", submitted before, cancelled)";
        } catch (const Error& cancel) {
            return " (" + joined(submitted, ", ") + " submitted before; cancelling them failed: " + cancel.what() + ")";
        }
    }
};

nlohmann::json stage_json(const FlowRecord::Stage& s) {
    nlohmann::json j = {{"name", s.name}, {"job", s.job}, {"checkpoint", s.checkpoint}, {"after", s.after}, {"on", s.on}};
    if (s.resubmittable()) {
        j["args"] = s.args;
        j["script"] = s.script;
        j["snapshot"] = s.snapshot;
    }
    if (s.repeat_max) j["repeat"] = {{"max", s.repeat_max}, {"on", s.repeat_on}};
    return j;
}

// hawf's own options for a stage's checkpoint (checkpoint_options), kept in its args.
bool checkpoint_option(const std::string& option) {
    for (const char* name : {"--hawf-checkpoint=", "--hawf-options=", "--hawf-params=", "--hawf-timeout=",
                             "--hawf-default=", "--hawf-reviewers="})
        if (option.rfind(name, 0) == 0) return true;
    return false;
}

// A stage as the record holds it, checked (a loop's later rounds are named "stage@K").
FlowRecord::Stage stage_from_json(const nlohmann::json& s) {
    FlowRecord::Stage stage;
    stage.name = s.at("name").get<std::string>();
    stage.job = s.at("job").get<std::string>();
    stage.checkpoint = s.at("checkpoint").get<std::string>();
    stage.after = s.at("after").get<std::vector<std::string>>();
    stage.on = s.at("on").get<std::vector<std::string>>();
    const std::size_t at = stage.name.rfind('@');
    check_name(stage.name.substr(0, at), "stage name");
    if (at != std::string::npos) {
        const std::string k = stage.name.substr(at + 1);
        if (!all_digits(k) || k.size() > 3)
            throw Error(ErrorKind::Untrusted, "a flow round named " + quoted_text(stage.name));
    }
    check_job_id(stage.job);
    if (!stage.checkpoint.empty()) parse_checkpoint_id(stage.checkpoint);
    for (const auto& choice : stage.on) check_name(choice, "choice");
    if (s.contains("snapshot")) {
        stage.args = s.at("args").get<std::vector<std::string>>();
        stage.script = s.at("script").get<std::string>();
        stage.snapshot = s.at("snapshot").get<std::string>();
        check_path(stage.script, "stage script");
        for (const auto& option : stage.args)  // what a flow file may give, and hawf's for the checkpoint
            if (option.empty() || option[0] != '-' || (!checkpoint_option(option) && !refused_sbatch_option(option).empty()))
                throw Error(ErrorKind::Untrusted, "a flow record with the sbatch option " + quoted_text(option));
    }
    if (s.contains("repeat")) {
        stage.repeat_max = s.at("repeat").at("max").get<std::uint32_t>();
        stage.repeat_on = s.at("repeat").at("on").get<std::vector<std::string>>();
        for (const auto& choice : stage.repeat_on) check_name(choice, "choice");
        if (!stage.resubmittable() || stage.checkpoint.empty() || stage.repeat_max < 2 || stage.repeat_max > 100)
            throw Error(ErrorKind::Untrusted, "a flow record with a repeat hawf did not write");
    }
    return stage;
}

// Reads a file of OWNER's flows tree as JSON, as strictly as everything read back.
template <typename Read>
auto read_flow_json(const std::string& what, Read read) {
    try {
        return read();
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Untrusted, "a " + what + " hawf did not write: " + e.what());
    }
}

std::string round_file(const std::string& flow, std::uint32_t round, const std::string& stage) {
    return flow + ".round." + std::to_string(round) + "." + stage;
}

}  // namespace

const FlowRecord::Stage* FlowRecord::stage(const std::string& stage_name) const {
    for (const auto& s : stages)
        if (s.name == stage_name) return &s;
    return nullptr;
}

nlohmann::json to_json(const FlowRecord& r) {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& s : r.stages) stages.push_back(stage_json(s));
    return {{"v", 1}, {"id", r.id}, {"name", r.name}, {"file", r.file}, {"submitted_at", r.submitted_at},
            {"stages", stages}};
}

FlowRecord flow_record_from_json(const nlohmann::json& j) {
    return read_flow_json("flow record", [&] {
        FlowRecord r;
        if (j.at("v") != 1) throw Error(ErrorKind::Untrusted, "a flow record of another version");
        r.id = j.at("id").get<std::string>();
        check_job_id(r.id);
        r.name = j.at("name").get<std::string>();
        check_name(r.name, "flow name");
        r.file = j.at("file").get<std::string>();
        check_path(r.file, "flow file");
        r.submitted_at = j.at("submitted_at").get<std::int64_t>();
        for (const auto& s : j.at("stages")) r.stages.push_back(stage_from_json(s));
        return r;
    });
}

std::vector<std::string> flow_ids(const Spool& spool, uid_t owner) {
    std::vector<std::string> ids;
    for (const auto& name : spool.flow_files(owner))
        if (all_digits(name)) ids.push_back(name);
    return ids;
}

std::optional<FlowRecord> load_flow_record(const Spool& spool, uid_t owner, const std::string& id) {
    check_job_id(id);
    const std::optional<std::string> text = spool.flow_file(owner, id);
    if (!text) return std::nullopt;
    FlowRecord record = flow_record_from_json(parse_json(*text));
    if (record.id != id) throw Error(ErrorKind::Untrusted, "flow " + id + "'s record names flow " + record.id);
    // Its rounds, in the order they came (2, 3, ...).
    std::vector<std::pair<unsigned long, std::string>> rounds;
    const std::string prefix = id + ".round.";
    for (const auto& name : spool.flow_files(owner))
        if (name.rfind(prefix, 0) == 0) rounds.emplace_back(std::strtoul(name.c_str() + prefix.size(), nullptr, 10), name);
    std::sort(rounds.begin(), rounds.end());
    for (const auto& [round, name] : rounds) {
        const auto round_text = spool.flow_file(owner, name);
        if (!round_text) continue;
        const nlohmann::json j = parse_json(*round_text);
        read_flow_json("flow round", [&] {
            for (const auto& s : j.at("stages")) record.stages.push_back(stage_from_json(s));
            return 0;
        });
    }
    return record;
}

std::map<std::string, nlohmann::json> flows_of_checkpoints(const Spool& spool, uid_t owner) {
    std::map<std::string, nlohmann::json> index;
    for (const auto& id : flow_ids(spool, owner)) {
        try {
            const std::optional<FlowRecord> record = load_flow_record(spool, owner, id);
            if (!record) continue;
            for (const auto& s : record->stages)
                if (!s.checkpoint.empty()) index[s.checkpoint] = {{"flow", record->id}, {"name", record->name}, {"stage", s.name}};
        } catch (const Error&) {  // not a listing's business: hawf status names what is wrong
        }
    }
    return index;
}

FlowRecord submit_flow(const Spool& spool, const Slurm& slurm, const Flow& flow, uid_t owner, const Actor& actor) {
    Submitter submitter{spool, slurm, owner, actor, absolute_dir(flow.dir), nullptr, {}};
    const std::string& dir = submitter.dir;
    FlowRecord record;
    record.name = flow.name;
    record.file = flow.path[0] == '/' ? flow.path : dir + "/" + flow.path.substr(flow.path.rfind('/') + 1);
    record.submitted_at = std::time(nullptr);
    // What a loop submits again: its stage and those after it.
    std::vector<std::string> again;
    for (const FlowStage& s : flow.stages)
        if (s.repeat_max) {
            again.push_back(s.name);
            for (const FlowStage* later : flow.downstream(s.name)) again.push_back(later->name);
        }
    std::map<std::string, std::string> job_of;  // stage -> its job
    try {
        for (const FlowStage& s : flow.stages) {
            FlowRecord::Stage stage;
            stage.name = s.name;
            stage.on = s.on;
            for (const FlowAfter& a : s.after) stage.after.push_back(a.str());
            stage.script = s.run.empty() ? (s.script[0] == '/' ? s.script : dir + "/" + s.script) : "";
            stage.args = s.sbatch;
            if (!names_job(s.sbatch)) stage.args.push_back("--job-name=" + flow.name + "." + s.name);
            if (s.checkpoint) {
                const auto more = checkpoint_options(*s.checkpoint);
                stage.args.insert(stage.args.end(), more.begin(), more.end());
            }
            // sbatch copies the script at submission; a run: command gets one written for it,
            // and so does a script a loop submits again (the copy taken now, as sbatch would).
            if (!s.run.empty()) stage.snapshot = spool.save_script(owner, s.name, "#!/bin/sh\n" + s.run + "\n");
            else if (std::find(again.begin(), again.end(), s.name) != again.end())
                stage.snapshot = spool.snapshot_script(owner, stage.script, "stage " + s.name);
            const std::string read = stage.snapshot.empty() ? stage.script : spool.script_path(owner, stage.snapshot);
            if (stage.script.empty()) stage.script = read;
            stage.job = submitter.submit(stage, s.after, s.on, read, job_of);
            if (s.checkpoint) stage.checkpoint = CheckpointId{stage.job, s.checkpoint->name}.str();
            job_of[s.name] = stage.job;
            stage.repeat_max = s.repeat_max;
            stage.repeat_on = s.repeat_on;
            if (std::find(again.begin(), again.end(), s.name) == again.end()) {  // kept only where a loop needs it
                stage.args.clear();
                stage.snapshot.clear();
            }
            if (record.stages.empty()) record.id = stage.job;
            record.stages.push_back(stage);
            if (s.repeat_max)  // its second round, held for the first round's decision
                record.stages.push_back(submitter.next_round(record.id, stage, 2, stage.job, stage.name));
        }
        if (!spool.save_flow_file(owner, record.id, to_json(record).dump(2) + "\n"))
            throw Error(ErrorKind::Conflict, "flow " + record.id + " exists already");
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot submit flow " + flow.name + ": " + e.what() + submitter.undo());
    }
    return record;
}

void continue_flow(const Spool& spool, const Slurm& slurm, uid_t owner, const std::string& job,
                   const std::vector<std::string>* env, const Actor& actor) {
    const std::optional<std::string> index_text = spool.flow_file(owner, "job." + job);
    if (!index_text) return;  // not a loop's round
    const nlohmann::json index = parse_json(*index_text);
    const auto [id, stage_name, round] = read_flow_json("flow round index", [&] {
        return std::make_tuple(index.at("flow").get<std::string>(), index.at("stage").get<std::string>(),
                               index.at("round").get<std::uint32_t>());
    });
    const std::string file = round_file(id, round, stage_name);
    if (spool.flow_file(owner, file)) return;  // this round did it before it was requeued
    const std::optional<FlowRecord> record = load_flow_record(spool, owner, id);
    if (!record) throw Error(ErrorKind::NotFound, "job " + job + " is a round of flow " + id + ", which has no record");
    const FlowRecord::Stage* loop = record->stage(stage_name);
    if (!loop || !loop->repeat_max || round < 2 || round > loop->repeat_max)
        throw Error(ErrorKind::Untrusted, "job " + job + " is round " + std::to_string(round) + " of stage " +
                                              quoted_text(stage_name) + ", which flow " + id + " does not repeat so");
    const std::string flow_dir = record->file.substr(0, record->file.rfind('/'));
    Submitter submitter{spool, slurm, owner, actor, flow_dir.empty() ? "/" : flow_dir, env, {}};
    std::vector<FlowRecord::Stage> entries;
    try {
        if (round < loop->repeat_max)
            entries.push_back(submitter.next_round(id, *loop, round + 1, job, in_round(stage_name, round)));
        // The stages after the loop, for this round: jobs of this round where they have one.
        std::map<std::string, std::string> job_of;
        for (const auto& s : record->stages)
            if (s.name.find('@') == std::string::npos) job_of[s.name] = s.job;
        job_of[stage_name] = job;
        std::vector<std::string> reached = {stage_name};
        for (const auto& s : record->stages) {
            if (s.name.find('@') != std::string::npos || s.name == stage_name) continue;
            std::vector<FlowAfter> after;
            bool later = false;
            for (const auto& text : s.after) {
                after.push_back(resolve_after(*record, text));
                later = later || std::find(reached.begin(), reached.end(), after.back().stage) != reached.end();
            }
            if (!later) continue;
            if (!s.resubmittable())
                throw Error(ErrorKind::Untrusted, "flow " + id + "'s record cannot submit stage " + s.name + " again");
            reached.push_back(s.name);
            FlowRecord::Stage entry;
            entry.name = in_round(s.name, round);
            entry.on = s.on;
            for (const FlowAfter& a : after) {
                const bool of_round = std::find(reached.begin(), reached.end(), a.stage) != reached.end();
                entry.after.push_back(FlowAfter{of_round ? in_round(a.stage, round) : a.stage, a.checkpoint}.str());
            }
            entry.job = submitter.submit(s, after, s.on, spool.script_path(owner, s.snapshot), job_of);
            if (!s.checkpoint.empty()) entry.checkpoint = CheckpointId{entry.job, parse_checkpoint_id(s.checkpoint).name}.str();
            job_of[s.name] = entry.job;
            entries.push_back(entry);
        }
        nlohmann::json stages = nlohmann::json::array();
        for (const auto& e : entries) stages.push_back(stage_json(e));
        if (!spool.save_flow_file(owner, file, nlohmann::json({{"stages", stages}}).dump(2) + "\n"))
            throw Error(ErrorKind::Conflict, "round " + std::to_string(round) + " of stage " + stage_name +
                                                 " was submitted meanwhile");
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot continue flow " + id + " after round " + std::to_string(round) + " of stage " +
                                  stage_name + ": " + e.what() + submitter.undo());
    }
}

}  // namespace hawf
