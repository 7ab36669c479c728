// hawf-decide CKPT... CHOICE [--set KEY=VALUE]... [--params-from=FILE] [-m TEXT]
//             [--amend] [--json] [--time=T] [--partition=P] [--nodes=N]
// hawf-decide --revoke CKPT...
// Records a human decision at a checkpoint (owner mode: the owner or root) and
// releases or cancels its follow-up jobs accordingly.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "cli.hpp"
#include "hawfd_client.hpp"
#include "display.hpp"
#include "error.hpp"
#include "review.hpp"
#include "views.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-decide [OPTIONS] CKPT... CHOICE
       hawf-decide --revoke CKPT...
Record a decision at checkpoint CKPT (JOBID:NAME) of one of your jobs. The
follow-up jobs waiting for it are released if the choice is theirs and
cancelled otherwise.

CKPT may name several checkpoints: JOBID_TASK:NAME for an array task (or the
task's own JOBID:NAME), JOBID_[1-5,9]:NAME, JOBID_*:NAME or JOBID:NAME of an
array job for its tasks, and several jobs separated by ','. Each is decided on
its own, with one line each; the exit status is 0 only if all were.

At a checkpoint with reviewers (--hawf-reviewers, a site policy) the reviewers
decide through hawfd: each hawf-decide records your approval, and the first
choice with the same parameters that --hawf-quorum reviewers approve becomes
the decision. --revoke then withdraws your approval (before the quorum).

  --set KEY=VALUE   set a parameter the checkpoint declared (repeatable)
  --params-from=FILE
                    parameters per checkpoint: JSON {"8": {"lr": 0.001}} or
                    CSV with a header (task,lr), keyed by task, job id or
                    checkpoint; they take precedence over --set
  -m, --message TEXT
                    a comment for the record and the follow-up jobs
  --amend           change a decision no follow-up has used yet
  --revoke          withdraw such a decision (the checkpoint is pending again
                    and its follow-ups wait again)
  --time=TIME       time limit of the follow-ups this decision releases
                    (Slurm's formats: MM, HH:MM:SS, D-HH:MM:SS)
  --partition=P     their partition
  --nodes=N         their node count (N or MIN-MAX)
  --user NAME       whose checkpoint, when Slurm no longer knows its job
                    (a reviewer, or root)
  --json            print the decision as JSON (several: a list)
  --local           a checkpoint of your runs without Slurm (hawf submit --local)
  -h, --help        show this help
      --version     print hawf-decide's version

--time, --partition and --nodes are applied before anything is released, and
what they changed is printed; if Slurm refuses any part for any follow-up,
every follow-up is put back as it was and nothing is recorded or released.
Exit status: 0 recorded, 1 refused or failed (also when Slurm refused to
release or cancel a follow-up: the decision stands), 2 usage error.
)";

// A resource value for scontrol update: only the characters its format uses.
std::string checked_resource(const std::string& flag, const std::string& value, const std::string& allowed_chars) {
    if (value.empty() || value.size() > 32 || value.find_first_not_of(allowed_chars) != std::string::npos)
        cli::usage_error("bad " + flag + " \"" + value + "\": use only " + allowed_chars);
    return value;
}

// What the command line asks of every checkpoint it names.
struct Order {
    Decision decision;  // the choice, --set and -m
    bool amend = false, revoking = false, json = false;
    std::string user;
    std::vector<std::string> reshape;
};

// What deciding one checkpoint did: as --json prints it, and for people (one line,
// a second when its job was signalled); the follow-ups' changes separately.
struct Outcome {
    nlohmann::json json;
    std::string text;
    std::vector<FollowUpChange> changes;
};

// A reviewer's approval (or its withdrawal) through hawfd, which records it in the
// owner's tree and, once the quorum is reached, decides and releases.
Outcome decide_through_hawfd(const cli::Context& ctx, const CheckpointId& id, const Order& order,
                             const Decision& decision) {
    if (order.amend) cli::usage_error("--amend: a decision its reviewers made is final (before the quorum, --revoke withdraws your approval)");
    if (!order.reshape.empty()) cli::usage_error("--time, --partition and --nodes do not apply to a checkpoint with reviewers yet");
    const bool revoking = order.revoking;
    nlohmann::json answer =
        cli::ask_hawfd(ctx, revoking ? withdraw_request(id, order.user) : decide_request(id, decision, order.user));
    Outcome out{answer, "", cli::changes_from_json(answer.value("follow_ups", nlohmann::json::array()))};
    const nlohmann::json& d = answer["decision"];
    const std::size_t quorum = answer.value("quorum", 1);
    if (!d.is_null()) {
        out.text = "decided " + id.str() + ": " + decision_text(d["choice"], d["params"]) + " by " +
                   shown(d["decided_by"].get<std::string>());
        return out;
    }
    // How many reviewers approved what this one did, as hawfd recorded it (parameters
    // typed), or, withdrawn, how many approvals stand.
    const std::string me = user_name(getuid());
    nlohmann::json mine;
    for (const auto& a : answer["approvals"])
        if (a["by"] == me) mine = a;
    std::size_t agreeing = 0;
    for (const auto& a : answer["approvals"])
        agreeing += revoking || (a["choice"] == mine["choice"] && a["params"] == mine["params"]);
    out.text = (revoking ? "withdrew your approval at " : "approved ") + id.str();
    if (!revoking && !mine.is_null()) out.text += ": " + decision_text(mine["choice"], mine["params"]);
    const std::string stand = revoking ? " stand" : "";
    if (answer.value("required", nlohmann::json::array()).empty())
        out.text += " (" + std::to_string(agreeing) + " of " + std::to_string(quorum) + " approvals" + stand +
                    "; the decision waits for " + std::to_string(quorum - std::min(agreeing, quorum)) + " more)";
    else  // site policies add lists of their own: hawf show tells what each still needs
        out.text += " (" + std::to_string(agreeing) + " approval" + (agreeing == 1 ? "" : "s") + stand +
                    "; the site's policies need more, see hawf show)";
    return out;
}

// ORDER recorded at one checkpoint in owner mode, its follow-ups and job not told yet.
struct Recorded {
    uid_t owner = 0;
    Checkpoint ckpt;
    DecideRequest request;
    std::vector<std::string> reshaped;  // what --time/--partition/--nodes changed
};

// ORDER at one checkpoint, with DECISION (its parameters may be the checkpoint's own):
// a reviewer's approval through hawfd (done), or recorded in the owner's tree (then
// sync_followups and finish).
std::variant<Outcome, Recorded> record_one(const cli::Context& ctx, const cli::Selected& selected, const Order& order,
                                           const Decision& decision) {
    const cli::Route route = cli::route(ctx, selected, order.user);
    if (route.via_hawfd) return decide_through_hawfd(ctx, selected.id, order, decision);
    Recorded r;
    r.owner = route.owner;
    r.request = {order.revoking ? std::nullopt : std::optional<Decision>(decision),
                 order.amend ? DecideMode::Amend : DecideMode::Decide, order.reshape};
    r.reshaped = prepare_decision(*ctx.slurm, *route.ckpt, r.request, getuid(), ctx.config.limits);
    const cli::AsOwner as_owner(r.owner);
    r.ckpt = record_decision(ctx.spool, r.owner, selected.id, r.request, current_actor(Via::Cli), ctx.config.limits);
    return r;
}

// R once Slurm made CHANGES to its follow-ups: signals its job (--hawf-signal) and
// tells hawfd (which tells the owner and the webhooks).
Outcome finish(const cli::Context& ctx, const Recorded& r, const Order& order, std::vector<FollowUpChange> changes) {
    const CheckpointId& id = r.ckpt.spec.id;
    const std::string signalled = signal_decided(*ctx.slurm, r.ckpt, r.request);
    nudge_hawfd(ctx.config, r.owner, id);
    Outcome out{decision_json(r.ckpt), "", std::move(changes)};
    if (out.json.is_null()) out.json = {{"checkpoint", id.str()}, {"state", to_string(r.ckpt.state)}};
    out.json["follow_ups"] = changes_json(out.changes);
    if (order.revoking)
        out.text = "revoked the decision at " + id.str() + ": it is pending again";
    else
        out.text = (order.amend ? "amended " : "decided ") + id.str() + ": " +
                   decision_text(r.request.decision->choice, nlohmann::json(r.request.decision->params));  // as typed
    if (!r.reshaped.empty()) out.json["reshaped"] = r.reshaped;
    for (const auto& line : r.reshaped) out.text += "\n" + line;
    if (!signalled.empty()) {
        out.json["signalled"] = signalled;
        const std::size_t batch = signalled.find("@batch");
        out.text += "\nsent SIG" + signalled.substr(0, batch) + " to " +
                    (batch == std::string::npos ? "job " : "the batch shell of job ") + id.job_id;
    }
    return out;
}

// --params-from's values for each of SELECTED (over --set's); refuses a row that
// names none of them, and two rows for one.
std::vector<Decision> decisions_for(const std::vector<cli::Selected>& selected, const Decision& common,
                                    const std::string& params_file) {
    std::vector<Decision> decisions(selected.size(), common);
    if (params_file.empty()) return decisions;
    std::ifstream in(params_file);
    std::stringstream content;
    if (!(in && content << in.rdbuf()) || content.str().size() > (16u << 20))
        cli::usage_error("--params-from: cannot read \"" + params_file + "\" (or it is over 16 MiB)");
    const ParamsTable table = parse_params_table(content.str(), params_file);
    std::set<std::string> used;
    for (std::size_t i = 0; i < selected.size(); ++i) {
        std::string row;
        for (const std::string& key : params_keys(selected[i].id)) {
            if (!table.count(key)) continue;
            if (!row.empty())
                cli::usage_error(params_file + ": " + quoted_text(row) + " and " + quoted_text(key) + " are both for " +
                                 selected[i].id.str());
            row = key;
        }
        if (row.empty()) continue;
        used.insert(row);
        for (const auto& [key, value] : table.at(row)) decisions[i].params[key] = value;
    }
    for (const auto& [key, values] : table)
        if (!used.count(key))
            cli::usage_error(params_file + ": " + quoted_text(key) + " is none of the checkpoints named");
    return decisions;
}

int decide_main(int argc, char** argv) {
    static const option long_options[] = {
        {"set", required_argument, nullptr, 's'},   {"message", required_argument, nullptr, 'm'},
        {"amend", no_argument, nullptr, 'a'},        {"revoke", no_argument, nullptr, 'r'},
        {"user", required_argument, nullptr, 'u'},   {"json", no_argument, nullptr, 'j'},
        {"time", required_argument, nullptr, 'T'},   {"partition", required_argument, nullptr, 'P'},
        {"nodes", required_argument, nullptr, 'N'},  {"params-from", required_argument, nullptr, 'F'},
        {"help", no_argument, nullptr, 'h'},         {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0}};
    Order order;
    Decision& decision = order.decision;
    std::string params_file;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "m:h", long_options, nullptr)) != -1;) {
        switch (c) {
            case 's': {
                auto [key, value] = parse_assignment(optarg);
                if (!decision.params.emplace(key, value).second) cli::usage_error("--set " + key + " given twice");
                break;
            }
            case 'm': decision.comment = optarg; break;
            case 'a': order.amend = true; break;
            case 'r': order.revoking = true; break;
            case 'u': order.user = optarg; break;
            case 'j': order.json = true; break;
            case 'T': order.reshape.push_back("TimeLimit=" + checked_resource("--time", optarg, "0123456789:-")); break;
            case 'P':
                check_name(optarg, "partition");
                order.reshape.push_back("Partition=" + std::string(optarg));
                break;
            case 'N': order.reshape.push_back("NumNodes=" + checked_resource("--nodes", optarg, "0123456789-")); break;
            case 'F': params_file = optarg; break;
            case 'h': std::cout << usage_text; return cli::exit_ok;
            case 'V': cli::print_version("hawf-decide");
            default: cli::usage_error("unknown option " + std::string(argv[optind - 1]) + ": see hawf-decide --help");
        }
    }
    const bool revoking = order.revoking;
    const int given = argc - optind;
    if (given < (revoking ? 1 : 2))
        cli::usage_error(revoking ? "--revoke takes CKPT..." : "expected CKPT... CHOICE: see hawf-decide --help");
    if (revoking && (order.amend || !decision.params.empty() || !decision.comment.empty() || !order.reshape.empty() ||
                     !params_file.empty()))
        cli::usage_error("--revoke takes no --amend, --set, --params-from, -m, --time, --partition or --nodes");
    const std::vector<std::string> texts(argv + optind, argv + argc - (revoking ? 0 : 1));
    for (const std::string& text : texts) parse_checkpoint_selection(text);  // every usage error first
    if (!revoking) {
        decision.choice = argv[argc - 1];
        check_name(decision.choice, "choice");
    }

    cli::Context ctx = cli::load_context();
    const std::vector<cli::Selected> selected = cli::select(ctx, texts, order.user);
    const std::vector<Decision> decisions = decisions_for(selected, decision, params_file);

    if (selected.size() == 1) {  // one checkpoint: its refusal is the command's
        auto one = record_one(ctx, selected[0], order, decisions[0]);
        if (auto* r = std::get_if<Recorded>(&one)) one = finish(ctx, *r, order, sync_followups(*ctx.slurm, r->ckpt));
        const Outcome& out = std::get<Outcome>(one);
        if (order.json) cli::print_json(out.json);
        else std::cout << out.text << "\n";
        return cli::report(out.changes, order.json) ? cli::exit_ok : cli::exit_error;
    }
    // Several: each on its own, one line each (its follow-ups in brackets). The
    // decisions are recorded first, then Slurm is told of all their follow-ups at
    // once: a follow-up array's tasks are released in one request.
    std::vector<std::variant<Outcome, Recorded, Error>> done;
    std::vector<Checkpoint> recorded;
    for (std::size_t i = 0; i < selected.size(); ++i) {
        try {
            done.push_back(std::visit([](auto&& v) -> std::variant<Outcome, Recorded, Error> { return v; },
                                      record_one(ctx, selected[i], order, decisions[i])));
            if (const auto* r = std::get_if<Recorded>(&done.back())) recorded.push_back(r->ckpt);
        } catch (const Error& e) {
            done.push_back(e);
        }
    }
    std::map<std::string, std::vector<FollowUpChange>> changes_of;  // by checkpoint
    for (const Checkpoint& ckpt : recorded) changes_of[ckpt.spec.id.str()];
    {
        std::map<std::string, std::string> checkpoint_of;  // follow-up job -> checkpoint
        for (const Checkpoint& ckpt : recorded)
            for (const auto& f : ckpt.followups) checkpoint_of[f.job] = ckpt.spec.id.str();
        for (FollowUpChange& change : sync_followups(*ctx.slurm, recorded))
            changes_of[checkpoint_of.at(change.job)].push_back(std::move(change));
    }
    nlohmann::json all = nlohmann::json::array();
    std::size_t failed = 0;
    for (std::size_t i = 0; i < selected.size(); ++i) {
        try {
            if (const auto* e = std::get_if<Error>(&done[i])) throw *e;
            if (const auto* r = std::get_if<Recorded>(&done[i]))
                done[i] = finish(ctx, *r, order, std::move(changes_of[selected[i].id.str()]));
            const Outcome& out = std::get<Outcome>(done[i]);
            const bool changed = cli::report(out.changes, true);
            failed += !changed;
            if (order.json) all.push_back(out.json);
            else std::cout << out.text << (out.changes.empty() ? "" : " (" + describe(out.changes) + ")") << std::endl;
        } catch (const Error& e) {
            ++failed;
            std::cerr << "hawf-decide: " << selected[i].id.str() << ": " << shown(e.what()) << std::endl;
            if (order.json) all.push_back({{"checkpoint", selected[i].id.str()}, {"error", e.what()}});
        }
    }
    if (order.json) cli::print_json(all);
    if (failed)
        std::cerr << "hawf-decide: " << failed << " of " << selected.size() << " checkpoints not "
                  << (revoking ? "revoked" : "decided") << " as asked" << std::endl;
    return failed ? cli::exit_error : cli::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-decide", [&] {
        cli::take_local_flag(argc, argv);
        return decide_main(argc, argv);
    });
}
