// hawf-await: the waiting side. Waits for (or polls) the decision at a checkpoint,
// chains a follow-up job to it, or opens a checkpoint inside a running job.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "cli.hpp"
#include "container.hpp"
#include "display.hpp"
#include "hawfd_client.hpp"
#include "error.hpp"

using namespace hawf;

namespace {

const char* const usage_text = R"(Usage: hawf-await [--timeout=DUR | --poll] [--env | --json] [CKPT]
       hawf-await --then=SCRIPT [--on=CHOICE,...] CKPT [-- SBATCH-ARGS...]
       hawf-await --open=NAME [--options=A,B] [--params=K:TYPE,...]
                  [--timeout=DUR --default=CHOICE] [--signal=SIG] [--env | --json]
Wait until checkpoint CKPT (JOBID:NAME) is decided and print the choice; or
submit SCRIPT now as a follow-up held until CKPT is decided with a choice in
--on (default: the first option) and print its job id; or, inside a running
job, open checkpoint NAME now while the job keeps computing.

CKPT of an array task is JOBID_TASK:NAME; the task's own job id works too
($SLURM_JOB_ID:NAME). Inside a job, without CKPT: the job's (the array
task's) one checkpoint.

  --timeout=DUR   give up after DUR (90s, 1h30m, 1.5h, 1:30:00) and exit 75;
                  with --open: take --default when undecided after DUR
  --poll          do not wait: exit 75 at once if not decided
  --env           print export lines (HAWF_DECISION, HAWF_PARAM_<KEY>, ...) for eval;
                  with --open: HAWF_CHECKPOINT and HAWF_CHECKPOINT_DIR (both with
                  Apptainer's copies, for a container started after)
  --json          print one JSON object
  --user NAME     whose checkpoint, when several users have one by that id
  --then=SCRIPT   submit SCRIPT (relative to here) as a follow-up of CKPT
  --on=A,B        the choices that release it
  --open=NAME     open checkpoint NAME of this job ($SLURM_JOB_ID)
  --options, --params, --default
                  as --hawf-options, --hawf-params, --hawf-default of sbatch
  --signal=SIG    send SIG (USR1, USR2, HUP, INT, TERM, CONT) to every process
                  of this job when the checkpoint is decided (an untrapped
                  SIGUSR1 kills a process); SIG@batch: to the batch shell
                  alone (USR1@batch: safe for its children); none by default
  --local         a checkpoint of your runs without Slurm (hawf submit --local)
  -h, --help      show this help
      --version   print hawf-await's version

A checkpoint whose job is still queued is waited for. Past a checkpoint's
deadline with no decision, its owner's hawf-await records the default.
Exit status: 0 decided (or follow-up submitted, checkpoint opened), 75 still
pending, 2 usage error, 1 any other error (including a checkpoint whose step
failed: there is nothing to decide).
)";

struct Args {
    std::string ckpt, user, then, on, open, options, params, default_choice, signal;
    std::vector<std::string> sbatch_args;
    std::int64_t timeout = -1;
    bool poll = false, env = false, json = false;
};

Args parse_args(int argc, char** argv) {
    static const option long_options[] = {
        {"timeout", required_argument, nullptr, 't'}, {"poll", no_argument, nullptr, 'p'},
        {"env", no_argument, nullptr, 'e'},           {"json", no_argument, nullptr, 'j'},
        {"user", required_argument, nullptr, 'u'},    {"then", required_argument, nullptr, 'T'},
        {"on", required_argument, nullptr, 'O'},      {"open", required_argument, nullptr, 'o'},
        {"options", required_argument, nullptr, 'C'}, {"params", required_argument, nullptr, 'P'},
        {"default", required_argument, nullptr, 'D'}, {"signal", required_argument, nullptr, 'S'},
        {"help", no_argument, nullptr, 'h'},          {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0}};
    Args a;
    // Everything after "--" belongs to sbatch, not to us.
    int own = argc;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--") == 0) {
            own = i;
            break;
        }
    a.sbatch_args.assign(argv + std::min(own + 1, argc), argv + argc);
    opterr = 0;
    for (int c; (c = getopt_long(own, argv, "h", long_options, nullptr)) != -1;) {
        switch (c) {
            case 't': a.timeout = parse_duration(optarg); break;
            case 'p': a.poll = true; break;
            case 'e': a.env = true; break;
            case 'j': a.json = true; break;
            case 'u': a.user = optarg; break;
            case 'T': a.then = optarg; break;
            case 'O': a.on = optarg; break;
            case 'o': a.open = optarg; break;
            case 'C': a.options = optarg; break;
            case 'P': a.params = optarg; break;
            case 'D': a.default_choice = optarg; break;
            case 'S': check_signal(optarg), a.signal = optarg; break;
            case 'h': std::cout << usage_text; std::exit(cli::exit_ok);
            case 'V': cli::print_version("hawf-await");
            default: cli::usage_error("unknown option " + std::string(argv[optind - 1]) + ": see hawf-await --help");
        }
    }
    std::vector<std::string> positional(argv + optind, argv + own);
    const bool opening = !a.open.empty();
    if (!opening && (!a.options.empty() || !a.params.empty() || !a.default_choice.empty() || !a.signal.empty()))
        cli::usage_error("--options, --params, --default and --signal go with --open=NAME");
    if (a.then.empty() && (!a.on.empty() || !a.sbatch_args.empty()))
        cli::usage_error("--on and SBATCH-ARGS go with --then=SCRIPT");
    if (opening && (!a.then.empty() || a.poll || !positional.empty()))
        cli::usage_error("--open=NAME takes no checkpoint and no --then or --poll");
    if (!opening) {
        // Without one, in a job: its own checkpoint (own_checkpoint).
        if (positional.size() > 1 || (positional.empty() && !a.then.empty()))
            cli::usage_error("expected one checkpoint JOBID:NAME: see hawf-await --help");
        if (!positional.empty()) a.ckpt = positional[0];
    }
    if (a.env && a.json) cli::usage_error("--env and --json exclude each other");
    if (a.poll && a.timeout >= 0) cli::usage_error("--poll and --timeout exclude each other");
    return a;
}

// --env: ENV as the plugin gives it to a job's tasks, with Apptainer's copies
// (lib/container.hpp), so that `eval` in a script reaches its containers too.
Environment with_container_environment(Environment env) {
    const auto current = [](const std::string& name) {
        const char* value = std::getenv(name.c_str());
        return value ? std::optional<std::string>(value) : std::nullopt;
    };
    const Environment more = apptainer_environment(env, container_binds(env), current);
    env.insert(env.end(), more.begin(), more.end());
    return env;
}

void print_exports(const Environment& env) {
    for (const auto& [name, value] : env) std::cout << "export " << name << "=" << cli::shell_quote(value) << "\n";
}

// hawf-await --open: this job's checkpoint, pending now, while the job runs on.
int open_inline(const Args& a) {
    const char* job = std::getenv("SLURM_JOB_ID");
    if (!job) cli::usage_error("--open works inside a Slurm job: SLURM_JOB_ID is not set");
    CheckpointSpec spec;
    spec.id = {cli::job_id_from_env(), a.open};
    check_name(spec.id.name);
    cli::Context ctx = cli::load_context();
    // The environment is the caller's to set: Slurm says whose job this is.
    const std::optional<JobInfo> info = ctx.slurm->job(job);
    if (!info || info->uid != getuid() || info->state != "RUNNING")
        throw Error(ErrorKind::Denied, "--open opens a checkpoint of your own running job, and job " + std::string(job) +
                                           (!info ? " is unknown to Slurm"
                                            : info->uid != getuid() ? " belongs to " + user_name(info->uid)
                                                                    : " is " + info->state));
    spec.owner_uid = getuid();
    spec.owner = user_name(getuid());
    spec.scope = Scope::Inline;
    spec.options = a.options.empty() ? ctx.config.default_options : parse_choices(a.options);
    if (!a.params.empty()) spec.params = parse_param_specs(a.params);
    if (a.timeout >= 0) spec.timeout_s = a.timeout;
    spec.default_choice = a.default_choice;
    spec.signal = a.signal;
    const Actor actor = current_actor(Via::Cli);
    if (!ctx.spool.exists(spec.owner_uid, spec.id)) check_room_for_checkpoint(ctx.spool, spec.owner_uid);
    if (ctx.config.hawfd_configured()) {
        // Delivery runs follow-ups only of a spec sealed by root: hawfd applies the site
        // policies to it (the job as Slurm knows it) and seals it. No hawfd, no checkpoint.
        spec.check(ctx.config.limits);
        nlohmann::json answer;
        try {
            answer = cli::ask_hawfd(ctx, {{"op", "seal"}, {"checkpoint", spec.id.str()}, {"spec", to_json(spec)}});
        } catch (const Error& e) {
            throw Error(e.kind(), "cannot open " + spec.id.str() + ": hawfd must seal its spec: " + e.what());
        }
        CheckpointSpec sealed = spec_from_json(answer.at("spec"));
        if (!(sealed.id == spec.id) || sealed.owner_uid != spec.owner_uid || sealed.seal.empty())
            throw Error(ErrorKind::Untrusted, "hawfd answered another spec than " + spec.id.str() + "'s");
        spec = std::move(sealed);
    }
    open_checkpoint(ctx.spool, spec, actor);
    Checkpoint ckpt = end_checkpoint(ctx.spool, spec.owner_uid, spec.id, 0, actor);
    const bool ok = cli::report(schedule_deadline(*ctx.slurm, ckpt), a.json);
    nudge_hawfd(ctx.config, spec.owner_uid, spec.id);  // hawfd tells who waits for it
    const std::string dir = ctx.spool.files_dir(spec.owner_uid, spec.id);
    if (a.json) cli::print_json({{"checkpoint", spec.id.str()}, {"state", to_string(ckpt.state)}, {"files_dir", dir}});
    else if (a.env) print_exports(with_container_environment({{"HAWF_CHECKPOINT", spec.id.str()}, {"HAWF_CHECKPOINT_DIR", dir}}));
    else std::cout << spec.id.str() << "\n";
    return ok ? cli::exit_ok : cli::exit_error;
}

// hawf-await --then: submit SCRIPT held behind CKPT's job and register it.
int chain(const Args& a) {
    parse_checkpoint_selection(a.ckpt);
    std::vector<std::string> on;
    if (!a.on.empty()) on = parse_choices(a.on, "--on");
    if (access(a.then.c_str(), R_OK) != 0)
        cli::usage_error("--then: cannot read script \"" + a.then + "\": " + std::strerror(errno));
    cli::Context ctx = cli::load_context();
    const uid_t owner = getuid();
    const auto [job_owner, id] = cli::select_one(ctx, a.ckpt, "");
    if (job_owner != owner)
        throw Error(ErrorKind::Denied, "job " + id.job_id + " belongs to " + user_name(job_owner) +
                                           ": follow-ups wait only for your own checkpoints");
    try {  // refuse at once what could never run
        Checkpoint c = ctx.spool.load(owner, id);
        for (const auto& choice : on)
            if (c.state != State::Expected && !c.spec.has_option(choice))
                cli::usage_error("--on choice \"" + choice + "\" is not an option of " + id.str());
        if (c.decision() || c.state == State::Failed)
            throw Error(ErrorKind::Conflict, id.str() + " is " + to_string(c.state) + ": too late for a follow-up");
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;  // its job has not started yet: fine
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) throw system_error("cannot get the current directory", errno);
    const std::string script = a.then[0] == '/' ? a.then : std::string(cwd) + "/" + a.then;
    check_path(script, "--then script");
    std::string job;
    const Checkpoint ckpt = submit_followup(ctx.spool, *ctx.slurm, id, owner,
                                            FollowUpSubmission{script, "", on, cwd, nullptr, a.sbatch_args, {}},
                                            current_actor(Via::Cli), &job);
    // Already pending with a deadline: it must become eligible then, like the others.
    const bool scheduled = cli::report(schedule_deadline(*ctx.slurm, ckpt, job), true);
    if (a.json) cli::print_json({{"checkpoint", id.str()}, {"job", job}, {"script", script}, {"on", on}});
    else std::cout << job << "\n";
    return scheduled ? cli::exit_ok : cli::exit_error;
}

// Whether CKPT's job may still open it: it is queued or running in Slurm.
bool job_may_still_open(const Slurm& slurm, const CheckpointId& id) {
    const std::optional<JobInfo> job = slurm.job(id.job_id);
    return job && job->active();
}

// OWNER's checkpoint ID as it is now; none while its job may still open it. Refuses
// what can never be decided: a failed checkpoint, or one its job will not open.
std::optional<Checkpoint> look(const cli::Context& ctx, uid_t owner, const CheckpointId& id) {
    std::optional<Checkpoint> ckpt;
    try {
        ckpt = cli::load_checkpoint(ctx, owner, id);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
        if (!job_may_still_open(*ctx.slurm, id))
            throw Error(ErrorKind::NotFound, "no checkpoint " + id.str() + ", and its job is not queued or running");
    }
    if (ckpt && ckpt->state == State::Expected && !job_may_still_open(*ctx.slurm, id))
        throw Error(ErrorKind::NotFound, id.str() + " was never opened, and its job is not queued or running");
    if (ckpt && ckpt->state == State::Failed) {
        int status = 0;
        for (const Event& ev : ckpt->history)
            if (ev.type == EventType::Failed) status = ev.exit_status;
        throw Error(ErrorKind::Conflict,
                    id.str() + " failed (its step ended with " + exit_text(status) + "): there is nothing to decide");
    }
    return ckpt;
}

// Past its deadline, the owner's own hawf-await takes the default (a delegated
// checkpoint's is hawfd's, sealed: it waits for that).
void take_default_if_due(const cli::Context& ctx, uid_t owner, std::int64_t now, Checkpoint& ckpt) {
    if (getuid() != owner) return;
    std::vector<FollowUpChange> changes;
    ckpt = take_default_and_sync(ctx.spool, *ctx.slurm, ckpt, now, "", &changes);
    if (ckpt.decision() && ckpt.decided->via == Via::Timeout) {
        cli::report(changes, true);
        nudge_hawfd(ctx.config, owner, ckpt.spec.id);
    }
}

void print_decision(const Args& a, const cli::Context& ctx, const Checkpoint& ckpt) {
    if (a.json) cli::print_json(decision_json(ckpt));
    else if (a.env)
        print_exports(with_container_environment(
            decision_environment(ckpt, ctx.spool.files_dir(ckpt.spec.owner_uid, ckpt.spec.id))));
    else std::cout << ckpt.decision()->choice << "\n";
}

int wait(const Args& a) {
    if (!a.ckpt.empty()) parse_checkpoint_selection(a.ckpt);  // a usage error before anything else
    cli::Context ctx = cli::load_context();
    const auto [owner, id] = a.ckpt.empty() ? cli::own_checkpoint(ctx) : cli::select_one(ctx, a.ckpt, a.user);
    const std::int64_t give_up = a.timeout >= 0 ? std::time(nullptr) + a.timeout : -1;
    for (;;) {
        std::optional<Checkpoint> ckpt = look(ctx, owner, id);
        const std::int64_t now = std::time(nullptr);
        if (ckpt) take_default_if_due(ctx, owner, now, *ckpt);
        if (ckpt && ckpt->decision()) {
            print_decision(a, ctx, *ckpt);
            return cli::exit_ok;
        }
        if (a.poll || (give_up >= 0 && now >= give_up)) {
            const std::string state = ckpt ? to_string(ckpt->state) : "not opened yet";
            if (a.json) cli::print_json({{"checkpoint", id.str()}, {"state", state}});
            else std::cerr << "hawf-await: " << id.str() << " is " << state << "\n";
            return cli::exit_pending;
        }
        std::int64_t nap = ctx.config.poll_interval_s;
        if (give_up >= 0) nap = std::min(nap, give_up - now);
        if (ckpt && ckpt->deadline() > now) nap = std::min(nap, ckpt->deadline() - now);
        sleep(static_cast<unsigned>(std::max<std::int64_t>(nap, 1)));
    }
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawf-await", [&] {
        cli::take_local_flag(argc, argv);
        const Args a = parse_args(argc, argv);
        if (!a.open.empty()) return open_inline(a);
        if (!a.then.empty()) return chain(a);
        return wait(a);
    });
}
