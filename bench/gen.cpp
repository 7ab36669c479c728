// hawf-bench-gen: fills a spool with many checkpoints quickly, for the benchmarks.
//
//   hawf-bench-gen SPOOL --history=N --pending=M [--first-job=J] [--timeout=S --ago=S]
//                  [--reviewers=USER,@GROUP,... [--quorum=N]] [--sealed-for=UID --munge-socket=S]
//                  [--notify=CHANNEL,...] [--array=A [--followups=F]]
//
// Run as the checkpoints' owner (the benchmark runs it as the test user). Writes
// exactly the records hawf writes — the events are built and serialized with the
// core library's own Event and to_json — in the spool layout of lib/spool.hpp, with
// hawf's ownership and modes (directories 0755, records 0644, owned by the caller).
// The only difference: no temporary name, fsync or link per record (that is what
// makes 100 000 checkpoints take seconds instead of many minutes). Every checkpoint
// is checked by loading it back through Spool::load, so the tools accept them.
//
// History checkpoints (jobs J, J+1, ...): opened, pending, decided, applied.
// Pending checkpoints (the next M jobs): opened, pending, plus their entry in the
// pending index. With --timeout=S the pending ones have a timeout of S seconds and
// default "reject", and became pending --ago seconds ago (past their deadline when
// ago > S: a racing hawf-await then records the default).
// With --reviewers the pending checkpoints are delegated, as --hawf-reviewers and
// --hawf-quorum make them (CheckpointSpec::reviewers, quorum; no timeout: a delegated
// checkpoint has none yet): reviewers decide them through hawfd. Run as a user
// without a passwd entry (setpriv --reuid=U), the owner's name is what the core
// library makes of the bare uid.
// With --sealed-for=UID (run as root) every pending spec carries root's seal, as the
// plugin writes it where hawfd is configured (hawfd refuses to approve at an unsealed
// spec): the seals are made first, as root, then it drops to UID for the writing.
// With --notify the pending specs name those notification channels, as --hawf-notify
// makes them (CheckpointSpec::notify): hawfd tells them about each pending one.
// With --array=A the pending checkpoints are those of tasks 1..M of array job A
// (A_1:eval, ...), and with --followups=F each has task T of follow-up array F
// (F_T, for "approve") registered, as --hawf-then on an array job registers them.
// Prints the pending checkpoint ids, one a line, on stdout.
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "actions.hpp"
#include "error.hpp"
#include "munge.hpp"
#include "review.hpp"
#include "record.hpp"
#include "spool.hpp"

using namespace hawf;

namespace {

[[noreturn]] void die(const std::string& what, int err = 0) {
    std::cerr << "hawf-bench-gen: " << what << (err ? std::string(": ") + std::strerror(err) : "") << "\n";
    std::exit(1);
}

// mkdirat + open, like the spool's make_dir (mode 0755, umask 022).
int dir_at(int parent, const std::string& name) {
    if (mkdirat(parent, name.c_str(), 0755) != 0 && errno != EEXIST) die("cannot create " + name, errno);
    int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) die("cannot open " + name, errno);
    return fd;
}

// The directories of the relative path REL under PARENT, each made by dir_at; the last one.
Fd dirs_at(int parent, const std::string& rel) {
    Fd dir;
    for (const auto& part : split(rel, '/')) dir = Fd(dir_at(dir ? dir.get() : parent, part));
    return dir;
}

void file_at(int dir, const std::string& name, const std::string& data) {
    int fd = openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot create " + name, errno);
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) die("cannot write " + name, errno);
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    static const option long_options[] = {
        {"history", required_argument, nullptr, 'H'}, {"pending", required_argument, nullptr, 'P'},
        {"first-job", required_argument, nullptr, 'J'}, {"timeout", required_argument, nullptr, 'T'},
        {"ago", required_argument, nullptr, 'A'},     {"reviewers", required_argument, nullptr, 'R'},
        {"quorum", required_argument, nullptr, 'Q'},  {"sealed-for", required_argument, nullptr, 'S'},
        {"munge-socket", required_argument, nullptr, 'M'}, {"notify", required_argument, nullptr, 'N'},
        {"array", required_argument, nullptr, 'a'}, {"followups", required_argument, nullptr, 'f'},
        {nullptr, 0, nullptr, 0}};
    std::string array_job, followup_array;
    long sealed_for = -1;
    std::string munge_socket;
    long history = 0, pending = 0, first_job = 1000000, timeout = 0, ago = 3600, quorum = 1;
    std::vector<std::string> reviewers, notify;
    for (int c; (c = getopt_long(argc, argv, "", long_options, nullptr)) != -1;) {
        switch (c) {
            case 'H': history = std::atol(optarg); break;
            case 'P': pending = std::atol(optarg); break;
            case 'J': first_job = std::atol(optarg); break;
            case 'T': timeout = std::atol(optarg); break;
            case 'A': ago = std::atol(optarg); break;
            case 'R':
                for (std::string rest = optarg; !rest.empty();) {
                    const std::size_t comma = rest.find(',');
                    reviewers.push_back(rest.substr(0, comma));
                    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
                }
                break;
            case 'Q': quorum = std::atol(optarg); break;
            case 'S': sealed_for = std::atol(optarg); break;
            case 'M': munge_socket = optarg; break;
            case 'a': array_job = optarg; break;
            case 'f': followup_array = optarg; break;
            case 'N':
                try {
                    notify = parse_notify_channels(optarg);
                } catch (const Error& e) {
                    die(std::string("--notify: ") + e.what());
                }
                break;
            default:
                die("usage: hawf-bench-gen SPOOL --history=N --pending=M [--first-job=J] [--timeout=S --ago=S] "
                    "[--reviewers=LIST [--quorum=N]] [--notify=CHANNELS] [--array=A [--followups=F]]");
        }
    }
    if (argc - optind != 1 || history < 0 || pending < 0) die("usage: hawf-bench-gen SPOOL --history=N --pending=M");
    if (!reviewers.empty() && timeout > 0) die("--reviewers and --timeout: a delegated checkpoint has no timeout yet");
    if (quorum != 1 && reviewers.empty()) die("--quorum needs --reviewers");
    if (!followup_array.empty() && array_job.empty()) die("--followups needs --array");
    umask(022);
    const Spool spool(argv[optind]);
    if (sealed_for >= 0 && geteuid() != 0) die("--sealed-for: run as root (only root's seal verifies)");
    const uid_t uid = sealed_for >= 0 ? static_cast<uid_t>(sealed_for) : geteuid();
    // The spec of job JOB's checkpoint, as the plugin opens it.
    const auto make_spec = [&](long job, bool decided) {
        CheckpointSpec spec;
        const long task = job - first_job - history + 1;  // of the pending ones
        spec.id = {!decided && !array_job.empty() ? array_job + "_" + std::to_string(task) : std::to_string(job), "eval"};
        spec.owner_uid = uid;
        spec.owner = user_name(uid);
        spec.scope = Scope::Job;
        spec.options = {"approve", "reject"};
        spec.params = parse_param_specs("lr:float");
        if (!decided && timeout > 0) {
            spec.timeout_s = timeout;
            spec.default_choice = "reject";
        }
        if (!decided) spec.notify = notify;
        if (!decided && !reviewers.empty()) {
            spec.reviewers = reviewers;
            spec.quorum = static_cast<std::uint32_t>(quorum);
            spec.check();
        }
        return spec;
    };
    std::vector<std::string> seals;  // of the pending checkpoints, in order
    if (sealed_for >= 0) {
        for (long i = 0; i < pending; ++i)
            seals.push_back(munge_encode(spec_seal_payload(make_spec(first_job + history + i, false)), munge_socket));
        if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0)
            die("cannot switch to uid " + std::to_string(uid) + ": " + std::strerror(errno));
    }
    const Actor plugin = current_actor(Via::Plugin), cli = current_actor(Via::Cli);
    const std::int64_t now = std::time(nullptr);
    try {
        Fd root = spool.open_root();
        Fd user(dir_at(root.get(), std::to_string(uid)));
        struct stat st;
        if (fstat(user.get(), &st) != 0) die("cannot stat the spool tree", errno);
        check_dir(st, Trust{uid}, "spool tree");
        Fd index(dir_at(user.get(), "pending"));

        auto write_checkpoint = [&](long job, bool decided) {
            CheckpointSpec spec = make_spec(job, decided);
            if (!decided && !seals.empty()) spec.seal = seals[static_cast<std::size_t>(job - first_job - history)];
            const std::int64_t opened_at = decided ? now - 86400 : now - ago - 60;
            Event events[4];
            events[0].type = EventType::Opened;
            events[0].spec = spec;
            events[1].type = EventType::Pending;
            events[2].type = EventType::Decided;
            events[2].decision = Decision{"approve", {{"lr", "1e-4"}}, "looks good"};
            events[3].type = EventType::Applied;
            events[3].job = std::to_string(job + 50000000);
            int count = decided ? 4 : 2;
            if (!decided && !followup_array.empty()) {  // registered before it became pending
                const std::string task = spec.id.job_id.substr(spec.id.job_id.find('_') + 1);
                events[2] = events[1];
                events[1] = Event{};
                events[1].type = EventType::FollowUpAdded;
                events[1].followup = FollowUp{spec.id, uid, followup_array + "_" + task, "/bench/next.sh", {}};
                count = 3;
            }
            Fd ckpt = dirs_at(user.get(), checkpoint_dir(spec.id));
            Fd log(dir_at(ckpt.get(), "log"));
            Fd files(dir_at(ckpt.get(), "files"));
            for (int i = 0; i < count; ++i) {
                Event& ev = events[i];
                const Actor& who = decided && i == 2 ? cli : plugin;
                ev.seq = static_cast<std::uint64_t>(i + 1);
                ev.at = i == 0 ? opened_at : decided ? opened_at + 600 * i : now - ago;
                ev.by = who.user;
                ev.by_uid = who.uid;
                ev.via = who.via;
                ev.host = who.host;
                file_at(log.get(), seq_name(ev.seq), to_json(ev).dump() + "\n");
            }
            if (!decided) file_at(index.get(), spec.id.str(), "");
            return spec.id;
        };

        for (long i = 0; i < history; ++i) {
            const CheckpointId id = write_checkpoint(first_job + i, true);
            if (i % 1000 == 0 || i == history - 1) spool.load(uid, id);  // the tools accept them
        }
        for (long i = 0; i < pending; ++i) {
            const CheckpointId id = write_checkpoint(first_job + history + i, false);
            Checkpoint c = spool.load(uid, id);  // cheap next to writing; proves every one loads
            if (c.state != State::Pending) die(id.str() + " is not pending");
            if (c.spec.delegated() != !reviewers.empty()) die(id.str() + ": reviewers not as asked");
            std::cout << id.str() << "\n";
        }
        if (history > 0 && spool.load(uid, {std::to_string(first_job), "eval"}).state != State::Applied)
            die("history checkpoint is not applied");
    } catch (const Error& e) {
        die(e.what());
    }
    return 0;
}
