// hawf-await CKPT [--timeout=DUR] [--poll] [--env] [--json]
// Waits for the decision at a checkpoint and prints it.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>

#include "cli.hpp"
#include "error.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-await [OPTIONS] CKPT
Wait until checkpoint CKPT (JOBID:NAME) is decided and print the choice.

  --timeout=DUR   give up after DUR (90s, 30m, 24h, 2d) and exit 75
  --poll          do not wait: exit 75 at once if not decided
  --env           print export lines (HAWF_DECISION, HAWF_PARAM_<KEY>, ...) for eval
  --json          print the decision as one JSON object
  --user NAME     whose checkpoint, when several users have one by that id
  -h, --help      show this help

Exit status: 0 decided, 75 still pending, 2 usage error, 1 any other error
(including a checkpoint whose step failed: there is nothing to decide).
)";

// The environment a follow-up sees, as "export NAME='value'" lines.
void print_env(const Checkpoint& ckpt) {
    const Decision& d = *ckpt.decision();
    auto line = [](const std::string& name, const std::string& value) {
        std::cout << "export " << name << "=" << cli::shell_quote(value) << "\n";
    };
    line("HAWF_AFTER", ckpt.spec.id.str());
    line("HAWF_DECISION", d.choice);
    line("HAWF_DECIDED_BY", ckpt.decided->by);
    line("HAWF_COMMENT", d.comment);
    for (const auto& [key, value] : d.params) {
        std::string upper = key;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
        line("HAWF_PARAM_" + upper, value);
    }
}

int await_main(int argc, char** argv) {
    static const option long_options[] = {
        {"timeout", required_argument, nullptr, 't'}, {"poll", no_argument, nullptr, 'p'},
        {"env", no_argument, nullptr, 'e'},           {"json", no_argument, nullptr, 'j'},
        {"user", required_argument, nullptr, 'u'},    {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0}};
    std::int64_t timeout = -1;  // wait forever
    bool poll = false, env = false, json = false;
    std::string user;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", long_options, nullptr)) != -1;) {
        switch (c) {
            case 't': timeout = parse_duration(optarg); break;
            case 'p': poll = true; break;
            case 'e': env = true; break;
            case 'j': json = true; break;
            case 'u': user = optarg; break;
            case 'h': std::cout << usage_text; return cli::exit_ok;
            default: cli::usage_error("unknown option " + std::string(argv[optind - 1]) + ": see hawf-await --help");
        }
    }
    if (argc - optind != 1) cli::usage_error("expected one checkpoint JOBID:NAME: see hawf-await --help");
    if (env && json) cli::usage_error("--env and --json exclude each other");
    if (poll && timeout >= 0) cli::usage_error("--poll and --timeout exclude each other");
    const CheckpointId id = parse_checkpoint_id(argv[optind]);

    cli::Context ctx = cli::load_context();
    const uid_t owner = cli::owner_of(ctx, id, user);
    const std::int64_t give_up = timeout >= 0 ? std::time(nullptr) + timeout : -1;
    for (;;) {
        Checkpoint ckpt = ctx.spool.load(owner, id);
        if (ckpt.state == State::Failed)
            throw Error(ErrorKind::Conflict, id.str() + " failed (its step did not exit 0): there is nothing to decide");
        if (ckpt.decision()) {
            if (json) cli::print_json(decision_json(ckpt));
            else if (env) print_env(ckpt);
            else std::cout << ckpt.decision()->choice << "\n";
            return cli::exit_ok;
        }
        const std::int64_t now = std::time(nullptr);
        if (poll || (give_up >= 0 && now >= give_up)) {
            if (json) cli::print_json({{"checkpoint", id.str()}, {"state", to_string(ckpt.state)}});
            else std::cerr << "hawf-await: " << id.str() << " is " << to_string(ckpt.state) << "\n";
            return cli::exit_pending;
        }
        std::int64_t nap = ctx.config.poll_interval_s;
        if (give_up >= 0) nap = std::min(nap, give_up - now);
        sleep(static_cast<unsigned>(nap));
    }
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-await", [&] { return await_main(argc, argv); });
}
