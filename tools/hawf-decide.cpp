// hawf-decide CKPT CHOICE [--set KEY=VALUE]... [-m TEXT] [--amend] [--json]
// hawf-decide --revoke CKPT
// Records a human decision at a checkpoint (owner mode: the owner or root).
#include <getopt.h>
#include <unistd.h>

#include <iostream>

#include "cli.hpp"
#include "error.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-decide [OPTIONS] CKPT CHOICE
       hawf-decide --revoke CKPT
Record a decision at checkpoint CKPT (JOBID:NAME) of one of your jobs.

  --set KEY=VALUE   set a parameter the checkpoint declared (repeatable)
  -m, --message TEXT
                    a comment for the record and the follow-up jobs
  --amend           change a decision no follow-up has used yet
  --revoke          withdraw such a decision (the checkpoint is pending again)
  --user NAME       (root) whose checkpoint, when several users have one by that id
  --json            print the decision as JSON
  -h, --help        show this help

Exit status: 0 recorded, 1 refused or failed, 2 usage error.
)";

int decide_main(int argc, char** argv) {
    static const option long_options[] = {
        {"set", required_argument, nullptr, 's'}, {"message", required_argument, nullptr, 'm'},
        {"amend", no_argument, nullptr, 'a'},      {"revoke", no_argument, nullptr, 'r'},
        {"user", required_argument, nullptr, 'u'}, {"json", no_argument, nullptr, 'j'},
        {"help", no_argument, nullptr, 'h'},       {nullptr, 0, nullptr, 0}};
    Decision decision;
    bool amend = false, revoking = false, json = false;
    std::string user;
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
            case 'h': std::cout << usage_text; return cli::exit_ok;
            default: cli::usage_error("unknown option " + std::string(argv[optind - 1]) + ": see hawf-decide --help");
        }
    }
    const int want = revoking ? 1 : 2;
    if (argc - optind != want)
        cli::usage_error(revoking ? "--revoke takes one argument, CKPT" : "expected CKPT CHOICE: see hawf-decide --help");
    if (revoking && (amend || !decision.params.empty() || !decision.comment.empty()))
        cli::usage_error("--revoke takes no --amend, --set or -m");
    const CheckpointId id = parse_checkpoint_id(argv[optind]);
    if (!revoking) {
        decision.choice = argv[optind + 1];
        check_name(decision.choice, "choice");
    }

    cli::Context ctx = cli::load_context();
    const uid_t owner = cli::owner_of(ctx, id, user);
    check_may_decide(ctx.spool.load(owner, id).spec, getuid());
    const Actor actor = current_actor("cli");
    cli::act_as_owner(owner);
    Checkpoint ckpt = revoking ? revoke(ctx.spool, owner, id, actor)
                               : decide(ctx.spool, owner, id, decision,
                                        amend ? DecideMode::Amend : DecideMode::Decide, actor, ctx.config.limits);
    if (json) {
        nlohmann::json out = decision_json(ckpt);
        if (out.is_null()) out = {{"checkpoint", id.str()}, {"state", to_string(ckpt.state)}};
        cli::print_json(out);
    } else if (revoking) {
        std::cout << "revoked the decision at " << id.str() << ": it is pending again\n";
    } else {
        std::cout << (amend ? "amended " : "decided ") << id.str() << ": " << decision.choice;
        for (const auto& [key, value] : decision.params) std::cout << " " << key << "=" << value;
        std::cout << "\n";
    }
    return cli::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-decide", [&] { return decide_main(argc, argv); });
}
