// hawf ls|show|log|doctor: look around the spool and check an install.
#include <dlfcn.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "display.hpp"
#include "flow.hpp"
#include "local_jobs.hpp"
#include "error.hpp"
#include "hawfd_client.hpp"
#include "munge.hpp"
#include "process.hpp"

using namespace hawf;
using nlohmann::json;

namespace {

const char* const usage_text = R"(Usage: hawf COMMAND [OPTIONS]
Look at checkpoints and decisions, and check an install.

  hawf ls [--all] [-t STATES] [-u USERS | --me] [-j JOBS] [--review]
          [-h] [-o COLUMNS] [--parsable] [--json]
                       pending checkpoints you own (root: everyone's) or
                       may review (through hawfd); --all: in any state;
                       -t/--states: of these (expected, running, pending,
                       decided, applied, failed; any case); -u/--user:
                       these owners; --me: yours only; -j/--jobs: of these
                       jobs (an array's id: all its tasks); --review: only
                       those you review; -h/--noheader; -o/--format:
                       columns (checkpoint, job, name, state, owner,
                       options, opened, deadline, decision, decided_by,
                       reviewers, flow); --parsable: cells joined by "|"
  hawf show CKPT [--user=NAME] [--json]
                       one checkpoint: options, parameters, deadline,
                       reviewers and approvals, decision, the files its
                       step left (in its directories too), its report.md
                       (its start if long; a reviewer's: via hawfd)
  hawf cat CKPT FILE [--user=NAME]
                       a file the checkpoint's step left (at most 512 KiB;
                       control characters escaped on a terminal)
  hawf log [CKPT] [--user=NAME] [--json]
                       history: who did what when (without CKPT: all of
                       your checkpoints; root: everyone's)
  hawf log --verify [CKPT] [--user=NAME] [--json]
                       check every approval and decision of checkpoints
                       with reviewers against its munge credential; exit
                       1 listing those that do not verify
  hawf doctor [--plugin=PATH] [--step-helper=PATH] [--json]
                       check the config, the spool, the plugin and the
                       step helper (and, when configured, munge and hawfd)
  hawf submit [--check] [--local] FLOW.yaml [--json]
                       submit a flow file's stages (hawf-flow(5)) as one
                       Slurm job chain at once and print the flow's id;
                       every mistake with its line first, and nothing
                       submitted; --check: only check, and show the stages;
                       --local: run it on this machine, without Slurm
  hawf status FLOW [--user=NAME] [--json]
                       a flow's stages: job, state, checkpoint, decision,
                       who it waits for (root: --user's flow)
  hawf cancel FLOW [--user=NAME]
                       cancel what is left of a flow
  hawf gc --older-than=DUR [--dry-run] [--json]
                       remove your decided, applied and failed checkpoints
                       (root: everyone's) whose last event is older than
                       DUR (e.g. 30d) and no follow-up of which is still
                       queued or running, with their files

--user names the owner of a checkpoint whose job Slurm no longer knows.
--local (any command): your runs without Slurm (hawf submit --local).
hawf --version prints hawf's version.
Exit status: 0 success, 1 error (doctor: a check failed), 2 usage error.
)";

struct Args {
    std::vector<std::string> positional;
    bool json = false, all = false, dry_run = false, review = false, verify = false;
    bool noheader = false, parsable = false, me = false;  // ls
    bool check = false;                                   // submit
    std::int64_t older_than = 0;
    std::string state, plugin = HAWF_PLUGIN_PATH, step_helper = HAWF_STEP_HELPER_PATH, user,
        format = default_list_format, jobs;
};

// Options may come before or after the arguments; each command accepts only its own.
Args parse_args(int argc, char** argv, const std::string& command) {
    static const option long_options[] = {
        {"json", no_argument, nullptr, 'J'},          {"all", no_argument, nullptr, 'a'},
        {"state", required_argument, nullptr, 't'},   {"states", required_argument, nullptr, 't'},
        {"plugin", required_argument, nullptr, 'p'},  {"user", required_argument, nullptr, 'u'},
        {"older-than", required_argument, nullptr, 'O'}, {"dry-run", no_argument, nullptr, 'n'},
        {"help", no_argument, nullptr, 'H'},          {"review", no_argument, nullptr, 'R'},
        {"verify", no_argument, nullptr, 'v'},        {"noheader", no_argument, nullptr, 'h'},
        {"format", required_argument, nullptr, 'o'},  {"parsable", no_argument, nullptr, 'P'},
        {"me", no_argument, nullptr, 'M'},            {"jobs", required_argument, nullptr, 'j'},
        {"step-helper", required_argument, nullptr, 'S'}, {"check", no_argument, nullptr, 'C'},
        {nullptr, 0, nullptr, 0}};
    const std::map<std::string, std::string> allowed = {{"ls", "JatuRhoPMj"}, {"show", "Ju"}, {"cat", "u"},
                                                        {"log", "Juv"},       {"doctor", "JpS"}, {"gc", "JOn"},
                                                        {"submit", "JC"},     {"status", "Ju"},  {"cancel", "u"}};
    auto it = allowed.find(command);
    if (it == allowed.end())
        cli::usage_error("unknown command \"" + command +
                         "\": use ls, show, cat, log, submit, status, cancel, doctor or gc");
    Args args;
    opterr = 0;
    optind = 2;
    // As in squeue, -h is --noheader for ls; --help is help everywhere.
    for (int c; (c = getopt_long(argc, argv, "ho:u:j:t:", long_options, nullptr)) != -1;) {
        if (c == 'H' || (c == 'h' && command != "ls")) {
            std::cout << usage_text;
            std::exit(cli::exit_ok);
        }
        if (c == '?' || it->second.find(static_cast<char>(c)) == std::string::npos)
            cli::usage_error("hawf " + command + " does not take " + std::string(argv[optind - 1]) + ": see hawf --help");
        switch (c) {
            case 'J': args.json = true; break;
            case 'a': args.all = true; break;
            case 't': args.state = optarg; break;
            case 'p': args.plugin = optarg; break;
            case 'u': args.user = optarg; break;
            case 'O': args.older_than = parse_duration(optarg); break;
            case 'h': args.noheader = true; break;
            case 'o': args.format = optarg; break;
            case 'P': args.parsable = true; break;
            case 'M': args.me = true; break;
            case 'j': args.jobs = optarg; break;
            case 'S': args.step_helper = optarg; break;
            case 'n': args.dry_run = true; break;
            case 'R': args.review = true; break;
            case 'v': args.verify = true; break;
            case 'C': args.check = true; break;
        }
    }
    args.positional.assign(argv + optind, argv + argc);
    return args;
}

// The users whose trees a command covers: the caller's, or for root everyone's.
std::vector<uid_t> owners_covered(const cli::Context& ctx) {
    return getuid() == 0 ? ctx.spool.owners() : std::vector<uid_t>{getuid()};
}

// Calls VISIT with each checkpoint a listing covers, one at a time (so memory does
// not grow with what other users put in their trees): the caller's own, or for
// root everyone's, read as their owner. Entries that vanished are skipped; those
// failing their checks, a user's tree failing its checks (root), and checkpoints
// past limits.max_checkpoints are reported once on stderr and skipped.
void for_each_checkpoint(const cli::Context& ctx, bool only_pending, const std::function<void(Checkpoint&)>& visit) {
    const bool root = getuid() == 0;
    const std::size_t limit = ctx.config.limits.max_checkpoints;
    for (uid_t owner : owners_covered(ctx)) {
        try {
            const cli::AsOwner as_owner(owner);
            Spool::Reader reader = ctx.spool.reader(owner);
            std::vector<CheckpointId> ids = only_pending ? ctx.spool.pending_ids(owner) : ctx.spool.all_ids(owner);
            if (ids.size() > limit) {
                std::cerr << "hawf: " << shown(user_name(owner)) << " has " << ids.size()
                          << " checkpoints, more than limits.max_checkpoints (" << limit << "): skipping "
                          << ids.size() - limit << "\n";
                ids.resize(limit);
            }
            for (const auto& id : ids) {
                try {
                    Checkpoint c = reader.load(id);
                    if (!only_pending || c.state == State::Pending) visit(c);
                } catch (const Error& e) {
                    if (e.kind() != ErrorKind::NotFound)
                        std::cerr << "hawf: skipping " << id.str() << ": " << shown(e.what()) << "\n";
                }
            }
        } catch (const Error& e) {
            if (!root) throw;
            std::cerr << "hawf: skipping uid " << owner << ": " << shown(e.what()) << "\n";
        }
    }
}

int cmd_ls(const Args& args) {
    if (!args.positional.empty()) cli::usage_error("hawf ls takes no arguments");
    if (args.me && !args.user.empty()) cli::usage_error("hawf ls: --me and --user exclude each other");
    const std::vector<std::string> columns = parse_list_format(args.format);
    ListFilter filter;
    if (!args.state.empty()) filter.states = parse_state_list(args.state);
    else if (!args.all) filter.states = {State::Pending};
    if (!args.user.empty()) filter.owners = split(args.user, ',');
    for (const auto& owner : filter.owners) check_user_name(owner, "user in --user");
    if (args.me) filter.owners = {user_name(getuid())};
    if (!args.jobs.empty()) filter.jobs = parse_job_list(args.jobs);
    cli::Context ctx = cli::load_context();
    const bool only_pending = filter.states == std::vector<State>{State::Pending};
    // A listing keeps one small row per checkpoint.
    std::vector<json> rows;
    const auto add = [&](json row) {
        if (listed(filter, row)) rows.push_back(std::move(row));
    };
    std::map<uid_t, std::string> owner_names;  // one NSS lookup per owner, not one per row
    std::map<uid_t, std::map<std::string, json>> flows;  // each owner's flows read once
    if (!args.review)
        for_each_checkpoint(ctx, only_pending, [&](const Checkpoint& c) {
            const uid_t owner = c.spec.owner_uid;
            auto name = owner_names.find(owner);
            if (name == owner_names.end()) name = owner_names.emplace(owner, user_name(owner)).first;
            auto index = flows.find(owner);
            if (index == flows.end()) index = flows.emplace(owner, flows_of_checkpoints(ctx.spool, owner)).first;
            json row = summary_json(c, name->second);
            if (const auto in = index->second.find(c.spec.id.str()); in != index->second.end()) row["flow"] = in->second;
            add(std::move(row));
        });
    // Other users' checkpoints the caller may approve: hawfd alone can read them.
    const bool pending_listed = filter.states.empty() ||
                                std::find(filter.states.begin(), filter.states.end(), State::Pending) != filter.states.end();
    if (ctx.config.hawfd_configured() && getuid() != 0 && pending_listed && !args.me) {
        try {
            json reviewed = cli::ask_hawfd(ctx, {{"op", "review"}});
            for (auto& c : reviewed.at("checkpoints")) add(std::move(c));
            if (const std::size_t more = reviewed.value("more", 0); more)
                std::cerr << "hawf: " << more << " more checkpoints you may review are not listed (hawfd lists "
                          << reviewed["checkpoints"].size() << " at most)\n";
        } catch (const Error& e) {
            if (args.review) throw;
            std::cerr << "hawf: not listing the checkpoints you review: " << shown(e.what()) << "\n";
        }
    } else if (args.review && !ctx.config.hawfd_configured()) {
        throw Error(ErrorKind::Config, "--review needs hawfd: hawfd.address is not set in " + ctx.config.path);
    }
    std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["opened_at"] < b["opened_at"]; });
    if (args.json) cli::print_json(rows);
    else std::cout << list_table(rows, columns, !args.noheader, args.parsable);
    return cli::exit_ok;
}

// hawf log --verify: each sealed spec, approval and decision held against its munge
// credential. Root decodes them here; for a checkpoint with reviewers anyone else
// asks hawfd (reviewers' credentials are made for root to decode).
int cmd_verify(const Args& args) {
    const cli::Context ctx = cli::load_context();
    json results = json::array();
    // With hawfd configured every spec is sealed by root when opened: an owner-mode
    // spec then has that one check, which anyone can decode.
    const bool sealed_specs = ctx.config.hawfd_configured();
    const auto verify = [&](const Checkpoint& c) {
        if (!c.spec.delegated() && !sealed_specs && c.spec.seal.empty()) return;
        json checks;
        if (getuid() == 0 || !c.spec.delegated()) {
            checks = json::array();
            for (const EventCheck& e : verify_events(c, ctx.config.hawfd.munge_socket, sealed_specs))
                checks.push_back({{"seq", e.seq}, {"event", to_string(e.type)}, {"by", e.by}, {"ok", e.ok},
                                  {"problem", e.problem}});
        } else {
            checks = cli::ask_hawfd(ctx, {{"op", "verify"}, {"checkpoint", c.spec.id.str()},
                                          {"user", user_name(c.spec.owner_uid)}})
                         .at("checks");
        }
        for (auto& check : checks) {
            check["checkpoint"] = c.spec.id.str();
            results.push_back(std::move(check));
        }
    };
    if (args.positional.size() > 1) cli::usage_error("hawf log --verify takes at most one checkpoint JOBID:NAME");
    if (!args.positional.empty()) {
        const cli::Selected selected = cli::select_one(ctx, args.positional[0], args.user);
        const CheckpointId& id = selected.id;
        const cli::Route route = cli::route(ctx, selected, args.user);
        if (route.ckpt) {
            verify(*route.ckpt);
        } else {
            json answer = cli::ask_hawfd(ctx, {{"op", "verify"}, {"checkpoint", id.str()}, {"user", args.user}});
            for (auto& check : answer.at("checks")) {
                check["checkpoint"] = id.str();
                results.push_back(std::move(check));
            }
        }
    } else {
        for_each_checkpoint(ctx, false, verify);
    }
    bool all_ok = true;
    for (const auto& r : results) all_ok = all_ok && r["ok"] == true;
    if (args.json) {
        cli::print_json(results);
    } else {
        for (const auto& r : results)
            std::cout << r["checkpoint"].get<std::string>() << "  " << r["seq"] << "  " << r["event"].get<std::string>()
                      << " by " << shown(r["by"].get<std::string>()) << ": "
                      << (r["ok"] == true ? "verified" : "NOT VERIFIED: " + shown(r["problem"].get<std::string>())) << "\n";
        std::cout << results.size() << " credentials checked, "
                  << (all_ok ? "all verified" : "some do not verify") << "\n";
    }
    return all_ok ? cli::exit_ok : cli::exit_error;
}

struct LoadedCheckpoint {
    cli::Context ctx;
    uid_t owner;
    Checkpoint ckpt;
};

LoadedCheckpoint load_one(const Args& args, const std::string& command) {
    if (args.positional.size() != 1) cli::usage_error("hawf " + command + " takes one checkpoint JOBID:NAME");
    cli::Context ctx = cli::load_context();
    const auto [owner, id] = cli::select_one(ctx, args.positional[0], args.user);
    Checkpoint ckpt = cli::load_checkpoint(ctx, owner, id);
    return {std::move(ctx), owner, std::move(ckpt)};
}

// hawf show for people, from what `hawf show --json` prints (made here or by hawfd).
void print_show(const json& j) {
    const json& spec = j["spec"];
    std::vector<std::string> params;
    for (const auto& p : spec["params"]) params.push_back(p["key"].get<std::string>() + ":" + p["type"].get<std::string>());
    const std::int64_t timeout = spec["timeout_s"];
    // Every value a user wrote is escaped: this may be root's or a reviewer's terminal.
    std::cout << "checkpoint: " << j["checkpoint"].get<std::string>() << "\n"
              << "owner:      " << shown(j["owner"].get<std::string>()) << " (uid " << spec["owner_uid"] << ")\n"
              << "state:      " << j["state"].get<std::string>() << "\n"
              << "opened:     " << local_time_text(j["opened_at"]) << " on " << shown(j["opened_on"].get<std::string>()) << "\n"
              << "options:    " << joined(j["options"].get<std::vector<std::string>>()) << "\n"
              << "params:     " << (params.empty() ? "-" : joined(params)) << "\n";
    if (timeout)
        std::cout << "timeout:    " << format_duration(timeout) << ", default " << spec["default"].get<std::string>()
                  << (j.contains("deadline") ? ", deadline " + local_time_text(j["deadline"]) : "") << "\n";
    if (j.contains("reviewers")) {
        const auto names = [](const json& list) {
            std::vector<std::string> reviewers;
            for (const auto& r : list) reviewers.push_back(shown(r.get<std::string>()));
            return joined(reviewers);
        };
        if (!j["reviewers"].empty())
            std::cout << "reviewers:  " << names(j["reviewers"]) << " (quorum " << j["quorum"] << ")\n";
        for (const auto& r : j.value("required", json::array()))
            std::cout << "required:   " << r["quorum"] << " of " << names(r["reviewers"]) << " (site policy "
                      << shown(r["policy"].get<std::string>()) << ")\n";
        for (const auto& a : j["approvals"])
            std::cout << "approval:   " << shown(a["by"].get<std::string>()) << ": " << decision_text(a["choice"], a["params"]) << " at "
                      << local_time_text(a["at"]) << "\n";
        if (!j.contains("decision"))
            std::cout << "approvals:  " << j["approvals"].size()
                      << " so far; the decision is the first choice with the same parameters that every"
                         " list above approves\n";
    }
    if (j.contains("decision")) {
        const json& d = j["decision"];
        std::cout << "decision:   " << d["choice"].get<std::string>() << " by "
                  << shown(d["decided_by"].get<std::string>()) << " at " << local_time_text(d["decided_at"]) << " ("
                  << shown(d["via"].get<std::string>()) << ")\n";
        for (const auto& [key, value] : d["params"].items()) std::cout << "  " << key << " = " << param_text(value) << "\n";
        if (!d["comment"].get<std::string>().empty()) std::cout << "comment:    " << shown(d["comment"].get<std::string>()) << "\n";
    }
    for (const auto& f : j["follow_ups"]) {
        std::cout << "follow-up:  " << f["job"].get<std::string>() << " " << shown(f["script"].get<std::string>())
                  << " (on " << joined(f["on"].get<std::vector<std::string>>(), ",") << "): "
                  << shown(f["state"].get<std::string>());
        if (!f["reason"].get<std::string>().empty()) std::cout << " (" << shown(f["reason"].get<std::string>()) << ")";
        std::cout << "\n";
    }
    if (j.contains("flow"))
        std::cout << "flow:       " << j["flow"]["flow"].get<std::string>() << " " << shown(j["flow"]["name"].get<std::string>())
                  << ", stage " << j["flow"]["stage"].get<std::string>() << "\n";
    std::cout << "files:      " << shown(j["files_dir"].get<std::string>()) << "\n";
    for (const auto& f : j["files"])
        std::cout << "  " << shown(f["name"].get<std::string>()) << " (" << f["type"].get<std::string>() << ", "
                  << f["bytes"].get<long long>() << " bytes)\n";
    const std::string report = j["report"];
    if (!report.empty())
        std::cout << "--- report.md ---\n" << shown_text(report) << (report.back() == '\n' ? "" : "\n");
}

int cmd_show(const Args& args) {
    if (args.positional.size() != 1) cli::usage_error("hawf show takes one checkpoint JOBID:NAME");
    const cli::Context ctx = cli::load_context();
    const cli::Selected selected = cli::select_one(ctx, args.positional[0], args.user);
    const CheckpointId& id = selected.id;
    const cli::Route route = cli::route(ctx, selected, args.user);
    json j;
    if (route.ckpt) {
        std::string report;
        json files;
        {
            const cli::AsOwner as_owner(route.owner);
            files = checkpoint_files(ctx.spool, route.owner, id, &report);
        }
        j = show_json(*route.ckpt, ctx.spool.files_dir(route.owner, id), std::move(files), report,
                      followup_states(*ctx.slurm, *route.ckpt));
        const auto flows = flows_of_checkpoints(ctx.spool, route.owner);
        if (const auto in = flows.find(id.str()); in != flows.end()) j["flow"] = in->second;
    } else {  // a reviewer: the owner's tree is private, hawfd shows it
        j = cli::ask_hawfd(ctx, {{"op", "show"}, {"checkpoint", id.str()}, {"user", args.user}}).at("show");
    }
    if (args.json) cli::print_json(j);
    else print_show(j);
    return cli::exit_ok;
}

// hawf cat CKPT FILE: a file the checkpoint's step left. On a terminal its control
// characters are escaped (it may be another user's text); piped, the bytes as they are.
int cmd_cat(const Args& args) {
    if (args.positional.size() != 2) cli::usage_error("hawf cat takes a checkpoint JOBID:NAME and a FILE");
    const std::string& file = args.positional[1];
    const cli::Context ctx = cli::load_context();
    const cli::Selected selected = cli::select_one(ctx, args.positional[0], args.user);
    const CheckpointId& id = selected.id;
    const cli::Route route = cli::route(ctx, selected, args.user);
    std::string data;
    if (route.ckpt) {
        const cli::AsOwner as_owner(route.owner);
        data = checkpoint_file(ctx.spool, route.owner, id, file);
    } else {
        const json answer =
            cli::ask_hawfd(ctx, {{"op", "cat"}, {"checkpoint", id.str()}, {"file", file}, {"user", args.user}});
        data = decode_base64(answer.at("data").get<std::string>());
    }
    if (isatty(STDOUT_FILENO)) std::cout << shown_text(data);
    else std::cout << data;
    return std::cout.flush() ? cli::exit_ok : cli::exit_error;
}

int cmd_log(const Args& args) {
    if (args.verify) return cmd_verify(args);
    // One row per event, in time order; rows, not checkpoints, are kept.
    struct Row {
        std::int64_t at;
        std::string line;
        json event;
    };
    std::vector<Row> rows;
    auto add = [&](const Checkpoint& c) {
        for (const auto& ev : c.history) {
            Row row{ev.at, "", nullptr};
            if (args.json) {
                row.event = to_json(ev);
                row.event["checkpoint"] = c.spec.id.str();
            } else {
                row.line = format_local_time(ev.at) + "  " + c.spec.id.str() + "  " + to_string(ev.type) + " by " +
                           shown(ev.by) + " (" + to_string(ev.via) + " on " + shown(ev.host) + ")";
                if (ev.decision) row.line += ": " + ev.decision->choice;
                if (ev.type == EventType::Failed) row.line += ": " + exit_text(ev.exit_status);
            }
            rows.push_back(std::move(row));
        }
    };
    if (!args.positional.empty()) add(load_one(args, "log").ckpt);
    else for_each_checkpoint(cli::load_context(), false, add);
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.at < b.at; });
    if (args.json) {
        json list = json::array();
        for (auto& r : rows) list.push_back(std::move(r.event));
        cli::print_json(list);
    } else {
        for (const auto& r : rows) std::cout << r.line << "\n";
    }
    return cli::exit_ok;
}

// Doctor's report: one line per check (ok or FAIL), or one JSON object; exit 1 if any failed.
int print_checks(bool as_json, const json& checks) {
    bool failed = false;
    for (const auto& c : checks) failed = failed || !c["ok"].get<bool>();
    if (as_json) {
        cli::print_json({{"ok", !failed}, {"checks", checks}});
    } else {
        for (const auto& c : checks)
            std::cout << (c["ok"].get<bool>() ? "ok    " : "FAIL  ") << std::left << std::setw(17)
                      << c["check"].get<std::string>() << shown(c["detail"].get<std::string>()) << "\n";
    }
    return failed ? cli::exit_error : cli::exit_ok;
}

std::optional<std::string> read_oci_conf(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// oci.conf (PATH, holding TEXT) runs the runtime through hawf-oci-run, one of this
// release that only root can change (it runs for every containerized task).
std::string check_oci_conf(const std::string& path, const std::string& text) {
    std::istringstream lines(text);
    std::string wrapper;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("RunTimeRun=", 0) != 0 && line.rfind("RunTimeCreate=", 0) != 0) continue;
        const auto at = line.find("hawf-oci-run");
        if (at == std::string::npos) continue;
        const auto start = line.find_last_of(" =\"", at) + 1;
        wrapper = line.substr(start, at + std::strlen("hawf-oci-run") - start);
    }
    if (wrapper.empty())
        throw Error(ErrorKind::Config, path + " runs the container runtime without hawf-oci-run: a task in srun "
                                              "--container does not see its checkpoint's directory (Slurm 23.02+); "
                                              "put it in front: RunTimeRun=\"exec " HAWF_OCI_RUN_PATH " runc ...\"");
    if (const std::string unsafe = unsafe_for_root(wrapper); !unsafe.empty()) throw Error(ErrorKind::Untrusted, unsafe);
    const CommandResult r = run_command({wrapper, "--version"});
    if (!r.ok() || r.out != "hawf-oci-run " HAWF_VERSION "\n")
        throw Error(ErrorKind::Config, wrapper + " --version says " + quoted_text(r.out.substr(0, r.out.find('\n'))) +
                                           ", not of this release");
    return path + " runs the runtime through " + wrapper;
}

int cmd_doctor(const Args& args) {
    if (!args.positional.empty()) cli::usage_error("hawf doctor takes no arguments");
    json checks = json::array();
    bool failed = false;
    auto check = [&](const std::string& name, const std::function<std::string()>& body) {
        try {
            checks.push_back({{"check", name}, {"ok", true}, {"detail", body()}});
        } catch (const std::exception& e) {
            failed = true;
            checks.push_back({{"check", name}, {"ok", false}, {"detail", shown(e.what())}});
        }
    };
    Config config;
    std::vector<std::string> config_errors;  // every one, each on its own line
    check("config", [&] {
        config = load_config(config_path_from_env(), &config_errors);
        if (!config.found && config.path != default_config_path)
            throw Error(ErrorKind::Config, "HAWF_CONF names " + config.path + ", which does not exist");
        if (!config_errors.empty()) throw Error(ErrorKind::Config, config_errors.front());
        return config.path + (config.found ? "" : " (absent: built-in defaults)");
    });
    for (std::size_t i = 1; i < config_errors.size(); ++i)
        checks.push_back({{"check", "config"}, {"ok", false}, {"detail", shown(config_errors[i])}});
    // The spool and hawfd are the config's: with a broken config they are unknown.
    if (failed) {
        checks.push_back({{"check", "spool"}, {"ok", false}, {"detail", "not checked: the config has errors (above)"}});
        return print_checks(args.json, checks);
    }
    Spool spool(config.spool);
    check("spool", [&] {
        Fd root = spool.open_root();
        struct stat st;
        fstat(root.get(), &st);
        std::ostringstream mode;
        mode << std::oct << (st.st_mode & 07777);
        return config.spool + " (mode " + mode.str() + (st.st_mode & S_ISVTX ? ", sticky" : "") + ")";
    });
    check("your spool tree", [&] {
        auto pending = spool.pending_ids(getuid());
        return std::to_string(pending.size()) + " pending";
    });
    check("plugin", [&] {
        void* handle = dlopen(args.plugin.c_str(), RTLD_LAZY | RTLD_LOCAL);
        if (!handle) throw Error(ErrorKind::NotFound, "cannot load " + args.plugin + ": " + dlerror());
        std::string detail = args.plugin;
        for (const char* symbol : {"plugin_name", "plugin_type", "plugin_version", "spank_plugin_version",
                                   "slurm_spank_init"})
            if (!dlsym(handle, symbol)) {
                dlclose(handle);
                throw Error(ErrorKind::NotFound, args.plugin + " does not export " + symbol + ": Slurm would ignore it");
            }
        auto version = *static_cast<const unsigned*>(dlsym(handle, "plugin_version"));
        char release[16];
        std::snprintf(release, sizeof release, "%u.%02u", version >> 16, (version >> 8) & 0xff);
        detail += " (built for Slurm " + std::string(release) + ")";
        dlclose(handle);
        // What hawf.so loads, from beside itself, for a job that uses a --hawf-* option.
        char real[PATH_MAX];
        const std::string engine = realpath(args.plugin.c_str(), real)
                                       ? std::string(real).substr(0, std::string(real).rfind('/')) + "/hawf_engine.so"
                                       : "hawf_engine.so";
        void* engine_handle = dlopen(engine.c_str(), RTLD_LAZY | RTLD_LOCAL);
        if (!engine_handle) throw Error(ErrorKind::NotFound, "cannot load " + engine + ": " + dlerror() +
                                                                 " (jobs using --hawf-* options would fail)");
        const bool complete = dlsym(engine_handle, "hawf_engine_option") && dlsym(engine_handle, "hawf_engine_exit");
        dlclose(engine_handle);
        if (!complete) throw Error(ErrorKind::NotFound, engine + " is not a hawf engine of this release");
        return detail + ", with " + engine;
    });
    // Loadable is not loaded: only plugstack.conf makes srun, sbatch and slurmstepd use it.
    check("slurm", [&] {
        const CommandResult r = run_command({"srun", "--help"}, "", nullptr, 30);
        if (!r.ok()) throw Error(ErrorKind::System, "srun --help: " + r.message());
        if (r.out.find("--hawf-checkpoint") == std::string::npos)
            throw Error(ErrorKind::Config, "srun --help does not show --hawf-checkpoint: Slurm does not load hawf "
                                           "(plugstack.conf needs a line naming hawf.so)");
        return std::string("srun --help shows --hawf-checkpoint: Slurm loads hawf");
    });
    // What slurmstepd runs for hawf, as root and as the job's user: only root may
    // change it, and it must be of this release (run_as_user.cpp).
    check("step helper", [&] {
        if (const std::string unsafe = unsafe_for_root(args.step_helper); !unsafe.empty())
            throw Error(ErrorKind::Untrusted, unsafe);
        const CommandResult r = run_command({args.step_helper, "--version"});
        const std::string expected = "hawf-step-helper " HAWF_VERSION;
        if (!r.ok() || r.out != expected + "\n")
            throw Error(ErrorKind::Config, args.step_helper + " --version says " +
                                               quoted_text(r.out.substr(0, r.out.find('\n'))) + ", not " +
                                               quoted_text(expected) + ": the plugin and the tools differ");
        return args.step_helper + " (" + expected + ")";
    });
    // Slurm's native containers, where oci.conf is beside slurm.conf: since 23.02 only
    // hawf-oci-run in front of the runtime binds a task's checkpoint directory.
    const char* slurm_conf = std::getenv("SLURM_CONF");
    const std::string conf_dir = slurm_conf ? std::string(slurm_conf).substr(0, std::string(slurm_conf).rfind('/'))
                                            : std::string("/etc/slurm");
    if (const auto oci_conf = read_oci_conf(conf_dir + "/oci.conf")) check("containers", [&] {
        return check_oci_conf(conf_dir + "/oci.conf", *oci_conf);
    });
    // Reviewers decide through hawfd: a munge round trip, then hawfd itself.
    if (config.hawfd_configured()) {
        const std::string& socket = config.hawfd.munge_socket;
        check("munge", [&] {
            const MungeCredential decoded = munge_decode(munge_encode("hawf doctor", socket), socket);
            if (decoded.status != MungeStatus::Valid || decoded.uid != getuid() || decoded.payload != "hawf doctor")
                throw Error(ErrorKind::Untrusted, "munged gives back a " + std::string(to_string(decoded.status)) +
                                                      " credential of uid " + std::to_string(decoded.uid) +
                                                      " for a fresh one of yours");
            return (socket.empty() ? std::string("the default socket") : socket) + ": a credential round trip works";
        });
        check("hawfd", [&] {
            const json answer = hawfd_request(config, {{"op", "ping"}}, std::chrono::seconds(10));
            const std::string known_as = answer.value("user", "?"), here = user_name(getuid());
            // Reviewers are named by user: hawfd's node must know each uid by the same name.
            if (known_as != here)
                throw Error(ErrorKind::Config, "hawfd at " + config.hawfd.address + " knows uid " +
                                                   std::to_string(getuid()) + " as " + known_as + ", this node as " +
                                                   here + ": the user databases differ");
            return "hawfd at " + config.hawfd.address + " answers (version " + answer.value("hawfd", "?") +
                   "), knows you as " + known_as;
        });
    }
    // Notifications hawfd gave up on (your checkpoints'; root: everyone's).
    if (config.notify.configured()) {
        check("notify", [&] {
            const json answer = hawfd_request(config, {{"op", "outbox"}}, std::chrono::seconds(10));
            const json& failed_list = answer.at("failed");
            const std::string queued = std::to_string(answer.value("queued", 0)) + " waiting to be sent";
            if (failed_list.empty()) return queued + ", none given up";
            std::string given_up;
            for (const auto& f : failed_list)
                given_up += "; " + f.value("event", "?") + " of " + f.value("checkpoint", "?") + " to " +
                            f.value("channel", "?") + ": " + f.value("error", "?");
            const std::size_t total = failed_list.size() + answer.value("more_failed", std::size_t{0});
            throw Error(ErrorKind::System, std::to_string(total) + " given up (" + queued + ")" + given_up +
                                               (total > failed_list.size() ? "; ..." : ""));
        });
    }
    return print_checks(args.json, checks);
}

// Whether a follow-up of C may still start and read C's decision: Slurm still has it
// queued, held or running. Throws when Slurm does not answer.
bool followup_may_start(const Slurm& slurm, const Checkpoint& c) {
    for (const auto& f : c.followups)
        if (const auto job = slurm.job(f.job); job && job->active()) return true;
    return false;
}

// Applied, failed and decided checkpoints are history once no follow-up may still start
// and read them (a decided `stop` with none is history at once): nothing reads them
// any more but people. Each removal runs as the checkpoint's owner; one that fails is
// reported and the others go on, so no user's tree can stop the collection of
// everyone else's.
int cmd_gc(const Args& args) {
    if (!args.positional.empty()) cli::usage_error("hawf gc takes no arguments");
    if (!args.older_than) cli::usage_error("hawf gc needs --older-than=DUR (e.g. 30d)");
    cli::Context ctx = cli::load_context();
    const std::int64_t now = std::time(nullptr), cutoff = now - args.older_than;
    bool failed = false;
    json removed = json::array();
    for_each_checkpoint(ctx, false, [&](const Checkpoint& c) {
        const bool ended = c.state == State::Applied || c.state == State::Failed || c.state == State::Decided;
        if (!ended || c.history.back().at >= cutoff) return;
        const std::string owner = shown(user_name(c.spec.owner_uid));
        try {
            if (followup_may_start(*ctx.slurm, c)) return;
            if (!args.dry_run) ctx.spool.remove(c.spec.owner_uid, c.spec.id);
        } catch (const Error& e) {
            std::cerr << "hawf: cannot remove " << c.spec.id.str() << " (" << owner << "): " << shown(e.what()) << "\n";
            failed = true;
            return;
        }
        removed.push_back({{"checkpoint", c.spec.id.str()}, {"owner", user_name(c.spec.owner_uid)},
                           {"state", to_string(c.state)}});
        if (!args.json)
            std::cout << (args.dry_run ? "would remove " : "removed ") << c.spec.id.str() << " (" << owner << ", "
                      << to_string(c.state) << ")\n";
    });
    // What killed writers and interrupted removals left: temporary files no writer
    // is still finishing (a write takes milliseconds; an hour is beyond doubt).
    if (!args.dry_run) {
        const std::int64_t stale_before = now - std::min<std::int64_t>(args.older_than, 3600);
        for (uid_t owner : owners_covered(ctx)) {
            try {
                const cli::AsOwner as_owner(owner);
                ctx.spool.clean(owner, stale_before, cutoff);
            } catch (const Error& e) {
                std::cerr << "hawf: cannot clean up uid " << owner << ": " << shown(e.what()) << "\n";
                failed = true;
            }
        }
    }
    if (args.json) cli::print_json(removed);
    return failed ? cli::exit_error : cli::exit_ok;
}

// A stage as --check shows it: what it waits for, what it runs, its checkpoint.
std::string describe_stage(const FlowStage& s) {
    std::vector<std::string> parts;
    if (!s.after.empty())
        parts.push_back("after " + joined(s.after, ", ", [](const FlowAfter& a) { return a.str(); }) +
                        (s.on.empty() ? "" : " on " + joined(s.on, ",")));
    parts.push_back(s.run.empty() ? "script " + s.script : "run " + quoted_text(s.run));
    if (!s.sbatch.empty()) parts.push_back("sbatch " + joined(s.sbatch, " "));
    if (const auto& c = s.checkpoint) {
        std::string text = "checkpoint " + c->name;
        if (!c->options.empty()) text += " (" + joined(c->options, ", ") + ")";
        if (c->timeout_s) text += " timeout " + format_duration(c->timeout_s) + " default " + c->default_choice;
        if (!c->reviewers.empty()) text += " reviewers " + joined(c->reviewers, ",");
        parts.push_back(text);
    }
    if (s.repeat_max)
        parts.push_back("repeats up to " + std::to_string(s.repeat_max) + " rounds on " + joined(s.repeat_on, ","));
    return joined(parts, "; ");
}

json stage_json(const FlowStage& s) {
    json j = {{"name", s.name}, {"sbatch", s.sbatch}, {"on", s.on}, {"after", json::array()}};
    j[s.run.empty() ? "script" : "run"] = s.run.empty() ? s.script : s.run;
    for (const auto& a : s.after) j["after"].push_back({{"stage", a.stage}, {"checkpoint", a.checkpoint}});
    if (const auto& c = s.checkpoint) {
        json params = json::object();
        for (const auto& p : c->params) params[p.key] = p.type_text();
        j["checkpoint"] = {{"name", c->name},           {"options", c->options},   {"params", params},
                           {"timeout_s", c->timeout_s}, {"default", c->default_choice}, {"reviewers", c->reviewers}};
    }
    if (s.repeat_max) j["repeat"] = {{"max", s.repeat_max}, {"on", s.repeat_on}};
    return j;
}

int cmd_submit(const Args& args) {
    if (args.positional.size() != 1) cli::usage_error("hawf submit takes one flow file");
    cli::Context ctx = cli::load_context();
    std::vector<std::string> errors;
    const Flow flow = load_flow(args.positional[0], ctx.config.default_options, errors);
    if (errors.empty() && !ctx.config.hawfd_configured())
        for (const auto& s : flow.stages)
            if (s.checkpoint && !s.checkpoint->reviewers.empty())
                errors.push_back(flow.path + ":" + std::to_string(s.line) + ": stage " + s.name +
                                 ": reviewers need hawfd, which hawf.yaml does not configure");
    if (errors.empty() && !ctx.config.local_jobs.empty())  // run here: what of sbatch's options is not honoured
        for (const auto& s : flow.stages)
            for (const auto& option : s.sbatch)
                if (const std::string note = local_sbatch_note(option); !note.empty())
                    std::cerr << "hawf: note: " << shown(flow.path) << ":" << s.line << ": stage " << s.name << ": "
                              << shown(note) << "\n";
    if (errors.empty() && !args.check) {
        const FlowRecord record = submit_flow(ctx.spool, *ctx.slurm, flow, getuid(), current_actor(Via::Cli));
        if (args.json) cli::print_json(to_json(record));
        else std::cout << record.id << "\n";
        return cli::exit_ok;
    }
    if (args.json) {
        json stages = json::array();
        for (const auto& s : flow.stages) stages.push_back(stage_json(s));
        cli::print_json({{"flow", flow.name}, {"file", flow.path}, {"ok", errors.empty()}, {"errors", errors},
                         {"stages", errors.empty() ? stages : json::array()}});
    } else if (errors.empty()) {
        std::cout << "flow " << shown(flow.name) << " (" << shown(flow.path) << "): " << flow.stages.size()
                  << " stages, no mistakes\n";
        std::size_t width = 0;
        for (const auto& s : flow.stages) width = std::max(width, s.name.size());
        for (const auto& s : flow.stages)
            std::cout << "  " << std::left << std::setw(static_cast<int>(width) + 2) << s.name << shown(describe_stage(s))
                      << "\n";
    } else {
        for (const auto& e : errors) std::cerr << "hawf: " << shown(e) << "\n";
    }
    return errors.empty() ? cli::exit_ok : cli::exit_error;
}

// The flow FLOW (the one positional argument) of the caller, or for root of --user.
struct OwnedFlow {
    uid_t owner;
    FlowRecord record;
};
OwnedFlow flow_record(const cli::Context& ctx, const Args& args, const char* command) {
    if (args.positional.size() != 1) cli::usage_error(std::string("hawf ") + command + " takes one flow id");
    const std::string& id = args.positional[0];
    try {
        check_job_id(id);
    } catch (const Error&) {
        cli::usage_error("bad flow id " + quoted_text(id) + ": hawf submit printed it (a job id, e.g. 4321)");
    }
    uid_t owner = getuid();
    if (!args.user.empty()) {
        const struct passwd* pw = getpwnam(args.user.c_str());
        if (!pw) cli::usage_error("unknown user " + quoted_text(args.user) + " for --user");
        if (pw->pw_uid != getuid() && getuid() != 0)
            cli::usage_error("--user=" + args.user + ": only root sees another user's flows");
        owner = pw->pw_uid;
    }
    const cli::AsOwner as_owner(owner);
    std::optional<FlowRecord> record = load_flow_record(ctx.spool, owner, id);
    if (!record)
        throw Error(ErrorKind::NotFound, owner == getuid() ? "you have no flow " + id
                                                           : shown(user_name(owner)) + " has no flow " + id);
    return {owner, std::move(*record)};
}

// One stage as hawf status shows it: its job as Slurm has it, its checkpoint as the spool has it.
json stage_status(const cli::Context& ctx, uid_t owner, const FlowRecord::Stage& s) {
    json j = {{"name", s.name}, {"job", s.job}, {"after", s.after}, {"on", s.on}};
    const std::optional<JobInfo> job = ctx.slurm->job(s.job);
    j["state"] = job ? job->state : "ENDED";  // Slurm forgets ended jobs after MinJobAge
    j["held"] = job && job->held;
    j["reason"] = job ? job->reason : "";
    if (!s.checkpoint.empty()) {
        json c = {{"id", s.checkpoint}, {"state", "expected"}};
        try {
            const cli::AsOwner as_owner(owner);
            const Checkpoint ckpt = ctx.spool.load(owner, parse_checkpoint_id(s.checkpoint));
            c["state"] = to_string(ckpt.state);
            if (const Decision* d = ckpt.decision()) {
                c["decision"] = d->choice;
                c["decided_by"] = ckpt.decided_by();
            }
            if (ckpt.state == State::Pending)
                c["waiting_for"] = ckpt.spec.delegated() ? joined(ckpt.spec.reviewers, ",") : ckpt.spec.owner;
            if (ckpt.deadline()) c["deadline"] = format_time(ckpt.deadline());
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
        }
        j["checkpoint"] = c;
    }
    return j;
}

std::string stage_line(const json& s) {
    std::string name = s["name"].get<std::string>();
    if (const auto at = name.rfind('@'); at != std::string::npos)
        name = name.substr(0, at) + " (round " + name.substr(at + 1) + ")";
    std::string line = name + "  job " + s["job"].get<std::string>() + "  " +
                       s["state"].get<std::string>() + (s["held"] == true ? " (held)" : "");
    if (s.contains("checkpoint")) {
        const json& c = s["checkpoint"];
        line += "  checkpoint " + c["id"].get<std::string>() + " " + c["state"].get<std::string>();
        if (c.contains("decision"))
            line += ": " + c["decision"].get<std::string>() + " by " + c["decided_by"].get<std::string>();
        if (c.contains("waiting_for")) line += ": waits for " + c["waiting_for"].get<std::string>();
        if (c.contains("deadline")) line += " (deadline " + c["deadline"].get<std::string>() + ")";
    }
    if (!s["after"].empty()) {
        line += "  after " + joined(s["after"].get<std::vector<std::string>>(), ", ");
        if (!s["on"].empty()) line += " on " + joined(s["on"].get<std::vector<std::string>>(), ",");
    }
    return line;
}

// The stage the first of S's "after" names ("train", "train.eval": stage names may
// hold dots, so the longest stage name it starts with); "" if none.
std::string parent_of(const json& stages, const json& s) {
    if (s["after"].empty()) return "";
    const std::string first = s["after"][0].get<std::string>();
    std::string parent;
    for (const auto& other : stages) {
        const std::string name = other["name"].get<std::string>();
        if ((first == name || first.rfind(name + ".", 0) == 0) && name.size() > parent.size()) parent = name;
    }
    return parent;
}

// The flow as a tree: each stage under the first stage it waits for.
void draw(const json& stages, const std::string& parent, const std::string& indent) {
    std::vector<const json*> children;
    for (const auto& s : stages)
        if (parent_of(stages, s) == parent) children.push_back(&s);
    for (std::size_t i = 0; i < children.size(); ++i) {
        const bool last = i + 1 == children.size();
        const std::string branch = parent.empty() ? "" : last ? "`- " : "|- ";
        std::cout << indent << branch << shown(stage_line(*children[i])) << "\n";
        draw(stages, (*children[i])["name"].get<std::string>(),
             indent + (parent.empty() ? "" : last ? "   " : "|  "));
    }
}

int cmd_status(const Args& args) {
    cli::Context ctx = cli::load_context();
    const auto [owner, record] = flow_record(ctx, args, "status");
    json stages = json::array();
    for (const auto& s : record.stages) stages.push_back(stage_status(ctx, owner, s));
    if (args.json) {
        cli::print_json({{"flow", record.id}, {"name", record.name}, {"file", record.file},
                         {"submitted_at", format_time(record.submitted_at)}, {"stages", stages}});
        return cli::exit_ok;
    }
    std::cout << "flow " << record.id << " " << shown(record.name) << " (" << shown(record.file) << "), submitted "
              << format_local_time(record.submitted_at) << "\n";
    draw(stages, "", "  ");
    return cli::exit_ok;
}

int cmd_cancel(const Args& args) {
    cli::Context ctx = cli::load_context();
    const FlowRecord record = flow_record(ctx, args, "cancel").record;
    std::vector<std::string> left;
    for (const auto& s : record.stages)
        if (const auto job = ctx.slurm->job(s.job); job && job->active()) left.push_back(s.job);
    if (left.empty()) {
        std::cout << "flow " << record.id << ": nothing left to cancel\n";
        return cli::exit_ok;
    }
    ctx.slurm->cancel(left);
    std::cout << "flow " << record.id << ": cancelled " << joined(left, ", ") << "\n";
    return cli::exit_ok;
}

int hawf_main(int argc, char** argv) {
    if (argc < 2)
        cli::usage_error("missing command: ls, show, cat, log, submit, status, cancel, doctor or gc (see hawf --help)");
    const std::string command = argv[1];
    if (command == "-h" || command == "--help" || command == "help") {
        std::cout << usage_text;
        return cli::exit_ok;
    }
    if (command == "--version") cli::print_version("hawf");
    Args args = parse_args(argc, argv, command);
    if (command == "ls") return cmd_ls(args);
    if (command == "show") return cmd_show(args);
    if (command == "cat") return cmd_cat(args);
    if (command == "log") return cmd_log(args);
    if (command == "gc") return cmd_gc(args);
    if (command == "submit") return cmd_submit(args);
    if (command == "status") return cmd_status(args);
    if (command == "cancel") return cmd_cancel(args);
    return cmd_doctor(args);
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf", [&] {
        cli::take_local_flag(argc, argv);
        return hawf_main(argc, argv);
    });
}
