// hawf-decide CKPT CHOICE [--set KEY=VALUE]... [-m TEXT] [--amend] [--json]
//             [--time=T] [--partition=P] [--nodes=N]
// hawf-decide --revoke CKPT
// Records a human decision at a checkpoint (owner mode: the owner or root) and
// releases or cancels its follow-up jobs accordingly.
#include <getopt.h>
#include <unistd.h>

#include <iostream>

#include <algorithm>

#include "cli.hpp"
#include "hawfd_client.hpp"
#include "display.hpp"
#include "error.hpp"
#include "review.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-decide [OPTIONS] CKPT CHOICE
       hawf-decide --revoke CKPT
Record a decision at checkpoint CKPT (JOBID:NAME) of one of your jobs. The
follow-up jobs waiting for it are released if the choice is theirs and
cancelled otherwise.

At a checkpoint with reviewers (--hawf-reviewers, a site policy) the reviewers
decide through hawfd: each hawf-decide records your approval, and the first
choice with the same parameters that --hawf-quorum reviewers approve becomes
the decision. --revoke then withdraws your approval (before the quorum).

  --set KEY=VALUE   set a parameter the checkpoint declared (repeatable)
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
  --json            print the decision as JSON
  -h, --help        show this help
      --version     print hawf-decide's version

--time, --partition and --nodes are applied before anything is released; if
Slurm refuses one, nothing is recorded or released.
Exit status: 0 recorded, 1 refused or failed (also when Slurm refused to
release or cancel a follow-up: the decision stands), 2 usage error.
)";

// A resource value for scontrol update: only the characters its format uses.
std::string checked_resource(const std::string& flag, const std::string& value, const std::string& allowed_chars) {
    if (value.empty() || value.size() > 32 || value.find_first_not_of(allowed_chars) != std::string::npos)
        cli::usage_error("bad " + flag + " \"" + value + "\": use only " + allowed_chars);
    return value;
}

// "approve lr=1e-4" for people.
std::string describe_decision(const std::string& choice, const nlohmann::json& params) {
    std::string text = choice;
    for (const auto& [key, value] : params.items()) text += " " + key + "=" + shown(value.get<std::string>());
    return text;
}

// A reviewer's approval (or its withdrawal, REVOKING) through hawfd, which records
// it in the owner's tree and, once the quorum is reached, decides and releases.
int decide_through_hawfd(const cli::Context& ctx, const CheckpointId& id, const std::string& user, bool revoking,
                         const Decision& decision, bool json) {
    const nlohmann::json answer =
        cli::ask_hawfd(ctx, revoking ? withdraw_request(id, user) : decide_request(id, decision, user));
    const std::vector<FollowUpChange> changes = cli::changes_from_json(answer.value("follow_ups", nlohmann::json::array()));
    if (json) {
        cli::print_json(answer);
        return cli::report(changes, true) ? cli::exit_ok : cli::exit_error;
    }
    const nlohmann::json& d = answer["decision"];
    const std::size_t quorum = answer.value("quorum", 1);
    if (!d.is_null()) {
        std::cout << "decided " << id.str() << ": " << describe_decision(d["choice"], d["params"]) << " by "
                  << shown(d["decided_by"].get<std::string>()) << "\n";
    } else {
        // How many reviewers approved what this one did (or, withdrawn, how many approvals stand).
        std::size_t agreeing = 0;
        for (const auto& a : answer["approvals"])
            agreeing += revoking || (a["choice"] == decision.choice && a["params"] == nlohmann::json(decision.params));
        std::cout << (revoking ? "withdrew your approval at " : "approved ") << id.str();
        if (!revoking) std::cout << ": " << describe_decision(decision.choice, nlohmann::json(decision.params));
        if (answer.value("required", nlohmann::json::array()).empty())
            std::cout << " (" << agreeing << " of " << quorum << " approvals" << (revoking ? " stand" : "")
                      << "; the decision waits for " << quorum - std::min(agreeing, quorum) << " more)\n";
        else  // site policies add lists of their own: hawf show tells what each still needs
            std::cout << " (" << agreeing << " approval" << (agreeing == 1 ? "" : "s") << (revoking ? " stand" : "")
                      << "; the site's policies need more, see hawf show)\n";
    }
    return cli::report(changes, false) ? cli::exit_ok : cli::exit_error;
}

int decide_main(int argc, char** argv) {
    static const option long_options[] = {
        {"set", required_argument, nullptr, 's'},   {"message", required_argument, nullptr, 'm'},
        {"amend", no_argument, nullptr, 'a'},        {"revoke", no_argument, nullptr, 'r'},
        {"user", required_argument, nullptr, 'u'},   {"json", no_argument, nullptr, 'j'},
        {"time", required_argument, nullptr, 'T'},   {"partition", required_argument, nullptr, 'P'},
        {"nodes", required_argument, nullptr, 'N'},  {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},     {nullptr, 0, nullptr, 0}};
    Decision decision;
    bool amend = false, revoking = false, json = false;
    std::string user;
    std::vector<std::string> reshape;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "m:h", long_options, nullptr)) != -1;) {
        switch (c) {
            case 's': {
                auto [key, value] = parse_assignment(optarg);
                if (!decision.params.emplace(key, value).second) cli::usage_error("--set " + key + " given twice");
                break;
            }
            case 'm': decision.comment = optarg; break;
            case 'a': amend = true; break;
            case 'r': revoking = true; break;
            case 'u': user = optarg; break;
            case 'j': json = true; break;
            case 'T': reshape.push_back("TimeLimit=" + checked_resource("--time", optarg, "0123456789:-")); break;
            case 'P':
                check_name(optarg, "partition");
                reshape.push_back("Partition=" + std::string(optarg));
                break;
            case 'N': reshape.push_back("NumNodes=" + checked_resource("--nodes", optarg, "0123456789-")); break;
            case 'h': std::cout << usage_text; return cli::exit_ok;
            case 'V': cli::print_version("hawf-decide");
            default: cli::usage_error("unknown option " + std::string(argv[optind - 1]) + ": see hawf-decide --help");
        }
    }
    const int want = revoking ? 1 : 2;
    if (argc - optind != want)
        cli::usage_error(revoking ? "--revoke takes one argument, CKPT" : "expected CKPT CHOICE: see hawf-decide --help");
    if (revoking && (amend || !decision.params.empty() || !decision.comment.empty() || !reshape.empty()))
        cli::usage_error("--revoke takes no --amend, --set, -m, --time, --partition or --nodes");
    const CheckpointId id = parse_checkpoint_id(argv[optind]);
    if (!revoking) {
        decision.choice = argv[optind + 1];
        check_name(decision.choice, "choice");
    }

    cli::Context ctx = cli::load_context();
    const cli::Route route = cli::route(ctx, id, user);
    if (route.via_hawfd) {
        if (amend) cli::usage_error("--amend: a decision its reviewers made is final (before the quorum, --revoke withdraws your approval)");
        if (!reshape.empty()) cli::usage_error("--time, --partition and --nodes do not apply to a checkpoint with reviewers yet");
        return decide_through_hawfd(ctx, id, user, revoking, decision, json);
    }
    const uid_t owner = route.owner;
    const DecideRequest request{revoking ? std::nullopt : std::optional<Decision>(decision),
                                amend ? DecideMode::Amend : DecideMode::Decide, reshape};
    prepare_decision(ctx.slurm, *route.ckpt, request, getuid(), ctx.config.limits);
    const cli::AsOwner as_owner(owner);
    const auto [ckpt, changes, signalled] =
        decide_and_sync(ctx.spool, ctx.slurm, owner, id, request, current_actor(Via::Cli), ctx.config.limits);
    nudge_hawfd(ctx.config, owner, id);  // hawfd tells the owner and the webhooks
    if (json) {
        nlohmann::json out = decision_json(ckpt);
        if (out.is_null()) out = {{"checkpoint", id.str()}, {"state", to_string(ckpt.state)}};
        out["follow_ups"] = changes_json(changes);
        if (!signalled.empty()) out["signalled"] = signalled;
        cli::print_json(out);
    } else if (revoking) {
        std::cout << "revoked the decision at " << id.str() << ": it is pending again\n";
    } else {
        std::cout << (amend ? "amended " : "decided ") << id.str() << ": " << decision.choice;
        for (const auto& [key, value] : decision.params) std::cout << " " << key << "=" << shown(value);
        std::cout << "\n";
    }
    if (!signalled.empty() && !json) {
        const std::size_t batch = signalled.find("@batch");
        std::cout << "sent SIG" << signalled.substr(0, batch) << " to "
                  << (batch == std::string::npos ? "job " : "the batch shell of job ") << id.job_id << "\n";
    }
    return cli::report(changes, json) ? cli::exit_ok : cli::exit_error;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-decide", [&] { return decide_main(argc, argv); });
}
