// hawfd: the service the hawf tools send requests to, authenticated by munge
// (docs/architecture.md). It runs as root on one node: reviewers decide through it.
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "cli.hpp"
#include "config.hpp"
#include "display.hpp"
#include "error.hpp"
#include "munge.hpp"
#include "notifier.hpp"
#include "ops.hpp"
#include "outbox.hpp"
#include "owner.hpp"
#include "sender.hpp"
#include "server.hpp"
#include "validate.hpp"

using namespace hawf;

namespace {

const std::string usage_text = std::string(R"(Usage: hawfd --foreground [--conf=FILE]
The hawf service: answers requests of the hawf tools, each authenticated by a
munge credential. Runs as root in the foreground (systemd: hawfd.service) and
logs one line per request to stderr. SIGTERM or SIGINT stops it after the
requests in flight.

  --foreground   run (hawfd never puts itself in the background)
  --conf=FILE    configuration (default: $HAWF_CONF, else )") +
                               default_config_path + R"();
                 its hawfd: section says where to listen
  --help         this text
  --version      hawfd's version

Exit status: 0 stopped by a signal, 1 error, 2 usage error.
(hawfd --as-owner is how hawfd runs its own work in a user's tree: not for people.)
)";

// How often the journal of unfinished decisions is retried (also at start).
constexpr std::chrono::seconds finish_period{30};

// hawfd's durable state: root's alone, created on first start.
void prepare_state(const std::string& dir) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw system_error("cannot create hawfd.state " + dir, errno);
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0) throw system_error("cannot stat hawfd.state " + dir, errno);
    if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
        throw Error(ErrorKind::Untrusted,
                    "hawfd.state " + dir + " must be a directory owned by root and writable by root alone");
}

// An absolute path for PATH: the children hawfd starts run in "/".
std::string absolute(const std::string& path, const char* what) {
    char resolved[PATH_MAX];
    if (!realpath(path.c_str(), resolved)) throw system_error(std::string("cannot find ") + what + " " + path, errno);
    return resolved;
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "localhost";
    return name;
}

// Retries what the journal says is owed, at start and every finish_period, until
// stopped: decisions whose follow-ups Slurm could not release (slurmctld down) or
// that a killed hawfd left half done.
class Finisher {
public:
    explicit Finisher(const hawfd::Service& service) : thread_([this, &service] { loop(service); }) {}
    ~Finisher() {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }

private:
    void loop(const hawfd::Service& service) {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            hawfd::finish_owed(service);
            lock.lock();
            wake_.wait_for(lock, finish_period, [&] { return stopping_; });
        }
    }
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

int hawfd_main(int argc, char** argv) {
    static const option long_options[] = {{"foreground", no_argument, nullptr, 'f'},
                                          {"as-owner", no_argument, nullptr, 'o'},
                                          {"conf", required_argument, nullptr, 'c'},
                                          {"help", no_argument, nullptr, 'h'},
                                          {"version", no_argument, nullptr, 'V'},
                                          {nullptr, 0, nullptr, 0}};
    bool foreground = false, as_owner = false;
    std::string conf = config_path_from_env();
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", long_options, nullptr)) != -1;) {
        switch (c) {
            case 'f': foreground = true; break;
            case 'o': as_owner = true; break;
            case 'c': conf = optarg; break;
            case 'h': std::cout << usage_text; return cli::exit_ok;
            case 'V': std::cout << "hawfd " HAWF_VERSION "\n"; return cli::exit_ok;
            default: cli::usage_error("bad option " + std::string(argv[optind - 1]) + " (see hawfd --help)");
        }
    }
    if (optind < argc) cli::usage_error("hawfd takes no arguments (see hawfd --help)");
    if (as_owner) return hawfd::as_owner_main(conf);
    if (!foreground) cli::usage_error("hawfd runs only in the foreground: give --foreground (see hawfd --help)");
    if (geteuid() != 0) throw Error(ErrorKind::Denied, "hawfd must run as root");

    Config config = load_config(conf);
    if (config.hawfd.listen.empty())
        throw Error(ErrorKind::Config, "hawfd.listen is not set in " + config.path + ": hawfd needs a HOST:PORT");
    prepare_state(config.hawfd.state);
    const hawfd::ChildOwnerAccess owners(absolute("/proc/self/exe", "hawfd's own binary"),
                                         absolute(config.path, "the configuration"));
    const hawfd::Journal journal(config.hawfd.state);
    // A wrong munge_socket or a munged with another key fails here, not per request.
    const std::string& socket = config.hawfd.munge_socket;
    munge_decode(munge_encode("", socket), socket);

    // Signals arrive through a descriptor the accept loop watches; every thread
    // inherits the blocked mask, so none is interrupted by them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) throw system_error("cannot block signals", errno);
    const Fd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
    if (!signals) throw system_error("cannot create a signalfd", errno);
    signal(SIGPIPE, SIG_IGN);  // a client gone mid-answer is an error return, not death

    hawfd::init_curl();  // before any thread
    hawfd::Service service{config, spool_of(config), Slurm(), &owners, &journal, nullptr, nullptr, host_name()};
    // Notifications (notify: configured) go through the outbox; the notifier also
    // keeps deadlines, so it runs whenever hawfd does.
    std::unique_ptr<hawfd::Outbox> outbox;
    if (config.notify.configured()) outbox = std::make_unique<hawfd::Outbox>(config.hawfd.state, service.config.notify);
    service.outbox = outbox.get();
    hawfd::Notifier notifier(service, outbox.get());
    service.notifier = &notifier;
    hawfd::Server server(service);
    hawfd::log_line("hawfd " HAWF_VERSION " listening on " + joined(server.addresses()) + " (config " +
                    shown(config.path) + ", munge socket " + (socket.empty() ? "default" : shown(socket)) + ")");
    {
        const Finisher finisher(service);
        server.run(signals.get());
    }
    signalfd_siginfo info{};
    const bool read_signal = read(signals.get(), &info, sizeof info) == sizeof info;
    hawfd::log_line(!read_signal ? "stopped" : info.ssi_signo == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM");
    return cli::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("hawfd", [&] { return hawfd_main(argc, argv); });
}
