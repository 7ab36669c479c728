// hawf-decide CKPT CHOICE [--set KEY=VALUE]... [-m TEXT] [--amend] [--json]
//             [--time=T] [--partition=P] [--nodes=N]
// hawf-decide --revoke CKPT
// Records a human decision at a checkpoint (owner mode: the owner or root) and
// releases or cancels its follow-up jobs accordingly.
#include <getopt.h>
#include <unistd.h>

#include <iostream>

#include "cli.hpp"
#include "display.hpp"
#include "error.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-decide [OPTIONS] CKPT CHOICE
       hawf-decide --revoke CKPT
Record a decision at checkpoint CKPT (JOBID:NAME) of one of your jobs. The
follow-up jobs waiting for it are released if the choice is theirs and
cancelled otherwise.

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
  --user NAME       (root) whose checkpoint, when several users have one by that id
  --json            print the decision as JSON
  -h, --help        show this help

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

int decide_main(int argc, char** argv) {
    static const option long_options[] = {
        {"set", required_argument, nullptr, 's'},   {"message", required_argument, nullptr, 'm'},
        {"amend", no_argument, nullptr, 'a'},        {"revoke", no_argument, nullptr, 'r'},
        {"user", required_argument, nullptr, 'u'},   {"json", no_argument, nullptr, 'j'},
        {"time", required_argument, nullptr, 'T'},   {"partition", required_argument, nullptr, 'P'},
        {"nodes", required_argument, nullptr, 'N'},  {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0}};
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
    const uid_t owner = cli::owner_of(ctx, id, user);
    const Checkpoint before = cli::load_checkpoint(ctx, owner, id);
    check_may_decide(before.spec, getuid());
    if (!reshape.empty()) {  // refuse what decide() would refuse before touching Slurm
        check_decision(before.spec, decision, ctx.config.limits);
        const State needed = amend ? State::Decided : State::Pending;
        if (before.state != needed)
            throw Error(ErrorKind::Conflict, "cannot " + std::string(amend ? "amend " : "decide ") + id.str() +
                                                 ": it is " + to_string(before.state));
        reshape_followups(ctx.slurm, before, decision.choice, reshape);
    }
    const Actor actor = current_actor("cli");
    const cli::AsOwner as_owner(owner);
    Checkpoint ckpt = revoking ? revoke(ctx.spool, owner, id, actor)
                               : decide(ctx.spool, owner, id, decision,
                                        amend ? DecideMode::Amend : DecideMode::Decide, actor, ctx.config.limits);
    const std::vector<FollowUpChange> changes = sync_followups(ctx.slurm, ckpt);
    // A checkpoint opened with --signal tells its still running job at once.
    std::string signalled;
    if (!revoking && !ckpt.spec.signal.empty()) {
        const std::optional<JobInfo> job = ctx.slurm.job(id.job_id);
        if (job && job->state == "RUNNING") {
            ctx.slurm.signal(id.job_id, ckpt.spec.signal);
            signalled = ckpt.spec.signal;
        }
    }
    if (json) {
        nlohmann::json out = decision_json(ckpt);
        if (out.is_null()) out = {{"checkpoint", id.str()}, {"state", to_string(ckpt.state)}};
        out["follow_ups"] = cli::to_json(changes);
        if (!signalled.empty()) out["signalled"] = signalled;
        cli::print_json(out);
    } else if (revoking) {
        std::cout << "revoked the decision at " << id.str() << ": it is pending again\n";
    } else {
        std::cout << (amend ? "amended " : "decided ") << id.str() << ": " << decision.choice;
        for (const auto& [key, value] : decision.params) std::cout << " " << key << "=" << shown(value);
        std::cout << "\n";
    }
    if (!signalled.empty() && !json) std::cout << "sent SIG" << signalled << " to job " << id.job_id << "\n";
    return cli::report(changes, json) ? cli::exit_ok : cli::exit_error;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-decide", [&] { return decide_main(argc, argv); });
}
