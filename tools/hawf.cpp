// hawf ls|show|log|doctor: look around the spool and check an install.
#include <dlfcn.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <map>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "display.hpp"
#include "error.hpp"
#include "hawfd_client.hpp"
#include "munge.hpp"

using namespace hawf;
using nlohmann::json;

namespace {

const char* const usage_text = R"(Usage: hawf COMMAND [OPTIONS]
Look at checkpoints and decisions, and check an install.

  hawf ls [--all] [--state=STATE] [--json]
                       pending checkpoints you own (root: everyone's);
                       --all: in any state; --state: expected, running,
                       pending, decided, applied or failed
  hawf show CKPT [--user=NAME] [--json]
                       one checkpoint: options, parameters, deadline,
                       decision, the files its step left, its report.md
  hawf log [CKPT] [--user=NAME] [--json]
                       history: who did what when (without CKPT: all of
                       your checkpoints; root: everyone's)
  hawf doctor [--plugin=PATH] [--json]
                       check the config, the spool and the plugin (and,
                       when configured, munge and hawfd)
  hawf gc --older-than=DUR [--dry-run] [--json]
                       remove your applied and failed checkpoints (root:
                       everyone's) whose last event is older than DUR
                       (e.g. 30d), with their files

--user names the owner when several users have a checkpoint of that id.
Exit status: 0 success, 1 error (doctor: a check failed), 2 usage error.
)";

struct Args {
    std::vector<std::string> positional;
    bool json = false, all = false, dry_run = false;
    std::int64_t older_than = 0;
    std::string state, plugin = HAWF_PLUGIN_PATH, user;
};

// Options may come before or after the arguments; each command accepts only its own.
Args parse_args(int argc, char** argv, const std::string& command) {
    static const option long_options[] = {
        {"json", no_argument, nullptr, 'j'},          {"all", no_argument, nullptr, 'a'},
        {"state", required_argument, nullptr, 's'},   {"plugin", required_argument, nullptr, 'p'},
        {"user", required_argument, nullptr, 'u'},    {"older-than", required_argument, nullptr, 'o'},
        {"dry-run", no_argument, nullptr, 'n'},       {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0}};
    const std::map<std::string, std::string> allowed = {
        {"ls", "jas"}, {"show", "ju"}, {"log", "ju"}, {"doctor", "jp"}, {"gc", "jon"}};
    auto it = allowed.find(command);
    if (it == allowed.end()) cli::usage_error("unknown command \"" + command + "\": use ls, show, log, doctor or gc");
    Args args;
    opterr = 0;
    optind = 2;
    for (int c; (c = getopt_long(argc, argv, "h", long_options, nullptr)) != -1;) {
        if (c == 'h') {
            std::cout << usage_text;
            std::exit(cli::exit_ok);
        }
        if (c == '?' || it->second.find(static_cast<char>(c)) == std::string::npos)
            cli::usage_error("hawf " + command + " does not take " + std::string(argv[optind - 1]) + ": see hawf --help");
        switch (c) {
            case 'j': args.json = true; break;
            case 'a': args.all = true; break;
            case 's': parse_state(optarg), args.state = optarg; break;
            case 'p': args.plugin = optarg; break;
            case 'u': args.user = optarg; break;
            case 'o': args.older_than = parse_duration(optarg); break;
            case 'n': args.dry_run = true; break;
        }
    }
    args.positional.assign(argv + optind, argv + argc);
    return args;
}

std::string join(const std::vector<std::string>& items, const char* sep = ",") {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
    return out;
}

json summary_json(const Checkpoint& c) {
    // The owner shown is the uid whose tree holds the checkpoint (the load checked
    // the record agrees), never a name the record itself claims.
    json j = {{"checkpoint", c.spec.id.str()}, {"owner", user_name(c.spec.owner_uid)}, {"state", to_string(c.state)},
              {"options", c.spec.options}, {"opened_at", format_time(c.history.front().at)}};
    if (c.deadline()) j["deadline"] = format_time(c.deadline());
    if (c.decision()) j["decision"] = decision_json(c);
    return j;
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
            std::vector<CheckpointId> ids = only_pending ? ctx.spool.pending_ids(owner) : ctx.spool.all_ids(owner);
            if (ids.size() > limit) {
                std::cerr << "hawf: " << shown(user_name(owner)) << " has " << ids.size()
                          << " checkpoints, more than limits.max_checkpoints (" << limit << "): skipping "
                          << ids.size() - limit << "\n";
                ids.resize(limit);
            }
            for (const auto& id : ids) {
                try {
                    Checkpoint c = ctx.spool.load(owner, id);
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
    cli::Context ctx = cli::load_context();
    const bool only_pending = !args.all && (args.state.empty() || args.state == "pending");
    // What a row needs, kept small: a listing holds one per checkpoint.
    struct Row {
        std::int64_t opened;
        std::vector<std::string> cells;
        json summary;
    };
    std::vector<Row> rows;
    for_each_checkpoint(ctx, only_pending, [&](const Checkpoint& c) {
        if (!args.state.empty() && to_string(c.state) != args.state) return;
        Row row{c.history.front().at, {}, nullptr};
        if (args.json) row.summary = summary_json(c);
        else
            row.cells = {c.spec.id.str(), to_string(c.state), shown(user_name(c.spec.owner_uid)), join(c.spec.options),
                         c.deadline() ? format_time(c.deadline()) : "-"};
        rows.push_back(std::move(row));
    });
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.opened < b.opened; });
    if (args.json) {
        json list = json::array();
        for (auto& r : rows) list.push_back(std::move(r.summary));
        cli::print_json(list);
        return cli::exit_ok;
    }
    // Columns as wide as their widest value, two spaces apart.
    const std::vector<std::string> header = {"CHECKPOINT", "STATE", "OWNER", "OPTIONS", "DEADLINE"};
    std::vector<std::size_t> width(header.size());
    for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.cells.size(); ++i) width[i] = std::max(width[i], r.cells[i].size());
    auto print = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i + 1 < cells.size(); ++i)
            std::cout << std::left << std::setw(static_cast<int>(width[i] + 2)) << cells[i];
        std::cout << cells.back() << "\n";
    };
    print(header);
    for (const auto& r : rows) print(r.cells);
    return cli::exit_ok;
}

struct LoadedCheckpoint {
    cli::Context ctx;
    uid_t owner;
    Checkpoint ckpt;
};

LoadedCheckpoint load_one(const Args& args, const std::string& command) {
    if (args.positional.size() != 1) cli::usage_error("hawf " + command + " takes one checkpoint JOBID:NAME");
    const CheckpointId id = parse_checkpoint_id(args.positional[0]);
    cli::Context ctx = cli::load_context();
    const uid_t owner = cli::owner_of(ctx, id, args.user);
    Checkpoint ckpt = cli::load_checkpoint(ctx, owner, id);
    return {std::move(ctx), owner, std::move(ckpt)};
}

// The files a step left for the reviewer, and its report.md (read without following links).
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

// The follow-ups of a checkpoint with their state in Slurm ("gone" once Slurm forgot them).
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

int cmd_show(const Args& args) {
    auto [ctx, owner, c] = load_one(args, "show");
    std::string report;
    json files;
    {
        const cli::AsOwner as_owner(owner);
        files = checkpoint_files(ctx.spool, owner, c.spec.id, &report);
    }
    json followups = followup_states(ctx.slurm, c);
    if (args.json) {
        json j = summary_json(c);
        j["spec"] = to_json(c.spec);
        j["files_dir"] = ctx.spool.files_dir(owner, c.spec.id);
        j["files"] = files;
        j["report"] = report;
        j["follow_ups"] = followups;
        cli::print_json(j);
        return cli::exit_ok;
    }
    std::vector<std::string> params;
    for (const auto& p : c.spec.params) params.push_back(p.key + ":" + p.type_text());
    // Every value a user wrote is escaped: this may be root's terminal.
    std::cout << "checkpoint: " << c.spec.id.str() << "\n"
              << "owner:      " << shown(user_name(owner)) << " (uid " << owner << ")\n"
              << "state:      " << to_string(c.state) << "\n"
              << "opened:     " << format_time(c.history.front().at) << " on " << shown(c.history.front().host) << "\n"
              << "options:    " << join(c.spec.options, ", ") << "\n"
              << "params:     " << (params.empty() ? "-" : join(params, ", ")) << "\n";
    if (c.spec.timeout_s)
        std::cout << "timeout:    " << format_duration(c.spec.timeout_s) << ", default " << c.spec.default_choice
                  << (c.deadline() ? ", deadline " + format_time(c.deadline()) : "") << "\n";
    if (const Decision* d = c.decision()) {
        std::cout << "decision:   " << d->choice << " by " << shown(c.decided->by) << " at "
                  << format_time(c.decided->at) << " (" << shown(c.decided->via) << ")\n";
        for (const auto& [key, value] : d->params) std::cout << "  " << key << " = " << shown(value) << "\n";
        if (!d->comment.empty()) std::cout << "comment:    " << shown(d->comment) << "\n";
    }
    for (const auto& f : followups) {
        std::cout << "follow-up:  " << f["job"].get<std::string>() << " " << shown(f["script"].get<std::string>())
                  << " (on " << join(f["on"].get<std::vector<std::string>>()) << "): "
                  << shown(f["state"].get<std::string>());
        if (!f["reason"].get<std::string>().empty()) std::cout << " (" << shown(f["reason"].get<std::string>()) << ")";
        std::cout << "\n";
    }
    std::cout << "files:      " << ctx.spool.files_dir(owner, c.spec.id) << "\n";
    for (const auto& f : files)
        std::cout << "  " << shown(f["name"].get<std::string>()) << " (" << f["type"].get<std::string>() << ", "
                  << f["bytes"].get<long long>() << " bytes)\n";
    if (!report.empty())
        std::cout << "--- report.md ---\n" << shown_text(report) << (report.back() == '\n' ? "" : "\n");
    return cli::exit_ok;
}

int cmd_log(const Args& args) {
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
                row.line = format_time(ev.at) + "  " + c.spec.id.str() + "  " + to_string(ev.type) + " by " +
                           shown(ev.by) + " (" + shown(ev.via) + " on " + shown(ev.host) + ")";
                if (ev.decision) row.line += ": " + ev.decision->choice;
                if (ev.type == EventType::Failed) row.line += ": wait status " + std::to_string(ev.exit_status);
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
    check("config", [&] {
        config = load_config(config_path_from_env());
        return config.path + (config.found ? "" : " (absent: built-in defaults)");
    });
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
        return detail;
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
    if (args.json) {
        cli::print_json({{"ok", !failed}, {"checks", checks}});
    } else {
        for (const auto& c : checks)
            std::cout << (c["ok"].get<bool>() ? "ok    " : "FAIL  ") << std::left << std::setw(17)
                      << c["check"].get<std::string>() << shown(c["detail"].get<std::string>()) << "\n";
    }
    return failed ? cli::exit_error : cli::exit_ok;
}

// Applied and failed checkpoints are history: nothing reads them any more but people.
// Each removal runs as the checkpoint's owner; one that fails is reported and the
// others go on, so no user's tree can stop the collection of everyone else's.
int cmd_gc(const Args& args) {
    if (!args.positional.empty()) cli::usage_error("hawf gc takes no arguments");
    if (!args.older_than) cli::usage_error("hawf gc needs --older-than=DUR (e.g. 30d)");
    cli::Context ctx = cli::load_context();
    const std::int64_t now = std::time(nullptr), cutoff = now - args.older_than;
    bool failed = false;
    json removed = json::array();
    for_each_checkpoint(ctx, false, [&](const Checkpoint& c) {
        if ((c.state != State::Applied && c.state != State::Failed) || c.history.back().at >= cutoff) return;
        const std::string owner = shown(user_name(c.spec.owner_uid));
        try {
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

int hawf_main(int argc, char** argv) {
    if (argc < 2) cli::usage_error("missing command: ls, show, log, doctor or gc (see hawf --help)");
    const std::string command = argv[1];
    if (command == "-h" || command == "--help" || command == "help") {
        std::cout << usage_text;
        return cli::exit_ok;
    }
    Args args = parse_args(argc, argv, command);
    if (command == "ls") return cmd_ls(args);
    if (command == "show") return cmd_show(args);
    if (command == "log") return cmd_log(args);
    if (command == "gc") return cmd_gc(args);
    return cmd_doctor(args);
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf", [&] { return hawf_main(argc, argv); });
}
