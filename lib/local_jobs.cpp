#include "local_jobs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "error.hpp"
#include "fsutil.hpp"
#include "record.hpp"
#include "spool.hpp"
#include "validate.hpp"

extern char** environ;

namespace hawf {
namespace {

bool starts(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// The value of "--name=value" or of "-x value" (the next word, consumed).
std::optional<std::string> value_of(const std::vector<std::string>& args, std::size_t& i, const char* long_name,
                                    const char* short_name) {
    const std::string& a = args[i];
    const std::string with = std::string(long_name) + "=";
    if (starts(a, with.c_str())) return a.substr(with.size());
    if ((a == long_name || (short_name && a == short_name)) && i + 1 < args.size()) return args[++i];
    if (short_name && starts(a, short_name) && a.size() > 2) return a.substr(2);
    return std::nullopt;
}

// Slurm's --time: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS[:MINUTES[:SECONDS]].
std::int64_t slurm_time_s(const std::string& text) {
    const auto bad = [&] {
        return Error(ErrorKind::Usage, "--time: bad time " + quoted_text(text) +
                                           ": use MINUTES, MM:SS, HH:MM:SS or DAYS-HH[:MM[:SS]]");
    };
    std::int64_t days = 0;
    std::string rest = text;
    if (const auto dash = text.find('-'); dash != std::string::npos) {
        if (!all_digits(text.substr(0, dash))) throw bad();
        days = std::stoll(text.substr(0, dash));
        rest = text.substr(dash + 1);
    }
    const std::vector<std::string> parts = split(rest, ':');
    if (parts.empty() || parts.size() > 3) throw bad();
    std::vector<std::int64_t> n;
    for (const auto& p : parts) {
        if (!all_digits(p) || p.size() > 9) throw bad();
        n.push_back(std::stoll(p));
    }
    if (days || text.find('-') != std::string::npos) {  // hours[:minutes[:seconds]]
        n.resize(3, 0);
        return days * 86400 + n[0] * 3600 + n[1] * 60 + n[2];
    }
    if (n.size() == 1) return n[0] * 60;
    if (n.size() == 2) return n[0] * 60 + n[1];
    return n[0] * 3600 + n[1] * 60 + n[2];
}

// The options in the script's #SBATCH lines (before its first command), as sbatch reads them.
std::vector<std::string> script_options(const std::string& script) {
    std::vector<std::string> options;
    std::istringstream in(script);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (first && starts(line, "#!")) {
            first = false;
            continue;
        }
        first = false;
        const auto text = line.find_first_not_of(" \t");
        if (text == std::string::npos) continue;
        if (line[text] != '#') break;
        if (line.compare(text, 7, "#SBATCH") != 0) continue;
        std::istringstream words(line.substr(text + 7));
        for (std::string w; words >> w;) {
            if (w[0] == '#') break;
            options.push_back(w);
        }
    }
    return options;
}

int signal_number(const std::string& text) {
    static const std::pair<const char*, int> names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
        {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"KILL", SIGKILL}, {"ALRM", SIGALRM}};
    const std::string name = starts(text, "SIG") ? text.substr(3) : text;
    for (const auto& [n, number] : names)
        if (name == n) return number;
    if (all_digits(name) && name.size() < 3) return std::atoi(name.c_str());
    throw Error(ErrorKind::Usage, "unknown signal " + quoted_text(text));
}

// Starts ARGV detached from the caller: its own session, stdin /dev/null, output to
// LOG, nothing else inherited; the caller does not wait for it. Everything the child
// needs is made before fork (only async-signal-safe calls after it).
void start_detached(const std::vector<std::string>& argv, const std::string& log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t child = fork();
    if (child < 0) throw system_error("cannot start " + argv[0], errno);
    if (child == 0) {
        setsid();
        if (fork() != 0) _exit(0);  // the grandchild is nobody's child here: init reaps it
        const int in = open("/dev/null", O_RDONLY);
        const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
        if (in < 0 || out < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        closefrom(3);
        execve(args[0], args.data(), environ);
        _exit(127);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace

LocalSlurm::LocalSlurm(std::string dir, std::string runner, std::string conf)
    : dir_(std::move(dir)), runner_(std::move(runner)), conf_(std::move(conf)) {}

namespace {

// One job's directory, opened with the spool's checks (the user's own, no symlink).
struct JobDir {
    std::string shown;
    Fd fd;
    std::string path(const std::string& name) const { return shown + "/" + name; }
    bool has(const std::string& name) const { return faccessat(fd.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0; }
    std::optional<std::string> read(const std::string& name) const {
        return read_file(fd.get(), name, Trust{geteuid()}, path(name), 8 << 20);
    }
};

std::optional<JobDir> open_job(const std::string& dir, const std::string& job) {
    if (!all_digits(job) || job.size() > 12) return std::nullopt;
    Fd jobs = open_dir(AT_FDCWD, dir, Trust{geteuid()}, dir);
    if (!jobs) return std::nullopt;
    Fd fd = open_dir(jobs.get(), job, Trust{geteuid()}, dir + "/" + job);
    if (!fd) return std::nullopt;
    return JobDir{dir + "/" + job, std::move(fd)};
}

JobDir job_dir(const std::string& dir, const std::string& job) {
    std::optional<JobDir> d = open_job(dir, job);
    if (!d) throw Error(ErrorKind::NotFound, "Invalid job id specified: " + job + " (no local job " + job + ")");
    return std::move(*d);
}

std::int64_t number_in(const std::optional<std::string>& text) {
    return text && !text->empty() ? std::strtoll(text->c_str(), nullptr, 10) : 0;
}

}  // namespace

std::string LocalSlurm::submit(const std::vector<std::string>& given, const std::string& script, const std::string& cwd,
                               const std::vector<std::string>* env) const {
    const std::string text = read_script_file(script, Spool::max_script_bytes, "sbatch");
    std::vector<std::string> args = script_options(text);  // the command line comes after: it wins
    args.insert(args.end(), given.begin(), given.end());
    LocalJob job;
    job.cwd = cwd.empty() ? "/" : cwd;
    job.name = script.substr(script.rfind('/') + 1);
    bool held = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--hold" || a == "-H") held = true;
        else if (starts(a, "--hawf-")) job.hawf.push_back(a);
        else if (a == "--kill-on-invalid-dep=yes") job.kill_on_invalid_dep = true;
        else if (const auto d = value_of(args, i, "--dependency", "-d")) {
            if (!starts(*d, "afterok:"))
                throw Error(ErrorKind::Usage, "--dependency=" + *d + ": only afterok:JOB[:JOB...] runs without Slurm");
            for (const auto& j : split(d->substr(8), ':')) job.after.push_back(j);
        } else if (const auto n = value_of(args, i, "--job-name", "-J")) job.name = *n;
        else if (const auto t = value_of(args, i, "--time", "-t")) job.time_limit_s = slurm_time_s(*t);
        else if (const auto o = value_of(args, i, "--output", "-o")) job.output = *o;
        else if (const auto e = value_of(args, i, "--error", "-e")) job.error = *e;
        else if (const auto c = value_of(args, i, "--chdir", "-D")) job.cwd = c->empty() || (*c)[0] == '/' ? *c : job.cwd + "/" + *c;
        else if (i + 1 < args.size() && a.size() == 2 && a[0] == '-' && args[i + 1][0] != '-') ++i;  // "-N 2": ignored
    }
    if (env) job.env = *env;
    else
        for (char** e = environ; *e; ++e) job.env.emplace_back(*e);
    Fd jobs = make_dir(AT_FDCWD, dir_, Trust{geteuid()}, dir_);
    // The next id: one more than the highest; mkdir makes it ours, or another took it.
    std::uint64_t next = 1;
    for (const auto& name : list_dir(jobs.get()))
        if (all_digits(name) && name.size() < 12) next = std::max<std::uint64_t>(next, std::stoull(name) + 1);
    for (;; ++next) {
        job.id = std::to_string(next);
        if (mkdirat(jobs.get(), job.id.c_str(), 0700) == 0) break;
        if (errno != EEXIST) throw system_error("sbatch: cannot create " + dir_ + "/" + job.id, errno);
    }
    JobDir d = job_dir(dir_, job.id);
    if (held) create_file(d.fd.get(), "hold", "", d.path("hold"));
    create_file(d.fd.get(), "script", text, d.path("script"));
    const nlohmann::json j = {{"id", job.id},           {"name", job.name},     {"cwd", job.cwd},
                              {"env", job.env},         {"hawf", job.hawf},     {"after", job.after},
                              {"kill_on_invalid_dep", job.kill_on_invalid_dep}, {"time_limit_s", job.time_limit_s},
                              {"output", job.output},   {"error", job.error}};
    create_file(d.fd.get(), "job.json", j.dump() + "\n", d.path("job.json"));  // last: the job is whole
    start_if_free(job.id);
    return job.id;
}

LocalJob LocalSlurm::load(const std::string& id) const {
    const JobDir d = job_dir(dir_, id);
    const auto text = d.read("job.json");
    if (!text) throw Error(ErrorKind::NotFound, "Invalid job id specified: " + id + " (being submitted)");
    try {
        const nlohmann::json j = parse_json(*text);
        LocalJob job;
        job.id = j.at("id").get<std::string>();
        job.name = j.at("name").get<std::string>();
        job.cwd = j.at("cwd").get<std::string>();
        job.env = j.at("env").get<std::vector<std::string>>();
        job.hawf = j.at("hawf").get<std::vector<std::string>>();
        job.after = j.at("after").get<std::vector<std::string>>();
        job.kill_on_invalid_dep = j.at("kill_on_invalid_dep").get<bool>();
        job.time_limit_s = j.at("time_limit_s").get<std::int64_t>();
        job.output = j.at("output").get<std::string>();
        job.error = j.at("error").get<std::string>();
        if (job.id != id) throw Error(ErrorKind::Untrusted, d.path("job.json") + " names job " + job.id);
        return job;
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Untrusted, d.path("job.json") + " is not as hawf writes it: " + e.what());
    }
}

std::string LocalSlurm::script_path(const std::string& job) const { return job_dir(dir_, job).path("script"); }

std::optional<JobInfo> LocalSlurm::job(const std::string& id) const {
    const std::optional<JobDir> d = open_job(dir_, id);
    if (!d || !d->has("job.json")) return std::nullopt;
    JobInfo info;
    info.uid = geteuid();
    info.partition = "local";
    info.eligible = number_in(d->read("begin"));
    const auto ended = d->read("ended");
    if (d->has("cancelled")) {
        info.state = "CANCELLED";
    } else if (ended) {
        const int status = static_cast<int>(number_in(ended));
        info.state = status == 0 ? "COMPLETED" : "FAILED";
    } else if (d->has("started")) {
        info.state = "RUNNING";
    } else {
        info.state = "PENDING";
        info.held = d->has("hold");
        info.reason = info.held ? "JobHeldUser" : info.eligible > std::time(nullptr) ? "BeginTime" : "Dependency";
    }
    if (info.reason.empty()) info.reason = "None";
    return info;
}

void LocalSlurm::release(const std::string& id) const {
    const JobDir d = job_dir(dir_, id);
    if (d.has("ended") || d.has("cancelled")) throw Error(ErrorKind::Conflict, "Job has already finished: " + id);
    remove_file(d.fd.get(), "hold", d.path("hold"));
    start_if_free(id);
}

void LocalSlurm::hold(const std::string& id) const {
    const JobDir d = job_dir(dir_, id);
    if (d.has("ended") || d.has("cancelled")) throw Error(ErrorKind::Conflict, "Job has already finished: " + id);
    if (d.has("started")) throw Error(ErrorKind::Conflict, "Job is no longer pending execution: " + id);
    create_file(d.fd.get(), "hold", "", d.path("hold"));
}

void LocalSlurm::cancel(const std::string& id) const {
    const JobDir d = job_dir(dir_, id);
    if (d.has("ended") || !create_file(d.fd.get(), "cancelled", "", d.path("cancelled")))
        throw Error(ErrorKind::Conflict, "Job has already finished: " + id);
    if (const pid_t pgid = static_cast<pid_t>(number_in(d.read("pid"))); pgid > 1 && !d.has("ended")) kill(-pgid, SIGTERM);
    finished(id, -1);  // what waited for it never runs
}

void LocalSlurm::release(const std::vector<std::string>& jobs) const {
    for (const auto& j : jobs) release(j);
}
void LocalSlurm::hold(const std::vector<std::string>& jobs) const {
    for (const auto& j : jobs) hold(j);
}
void LocalSlurm::cancel(const std::vector<std::string>& jobs) const {
    std::string refused;
    for (const auto& j : jobs) {
        try {
            cancel(j);
        } catch (const Error& e) {
            refused += (refused.empty() ? "" : "; ") + std::string(e.what());
        }
    }
    if (!refused.empty()) throw Error(ErrorKind::Conflict, refused);
}

void LocalSlurm::requeue_hold(const std::string& id) const {
    throw Error(ErrorKind::Usage, "job " + id + ": a local job cannot be requeued");
}
void LocalSlurm::requeue(const std::string& id) const { requeue_hold(id); }

void LocalSlurm::update(const std::string& id, const std::vector<std::string>& assignments) const {
    const JobDir d = job_dir(dir_, id);
    for (const auto& a : assignments) {
        if (!starts(a, "StartTime="))
            throw Error(ErrorKind::Usage, quoted_text(a) + ": a local run changes only the start time (no Slurm here)");
        const std::string at = a.substr(10);
        if (at == "now") {
            remove_file(d.fd.get(), "begin", d.path("begin"));
            continue;
        }
        std::tm tm{};
        const char* end = strptime(at.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end || *end) throw Error(ErrorKind::Usage, "StartTime: bad time " + quoted_text(at));
        tm.tm_isdst = -1;
        const std::int64_t begin = std::mktime(&tm);
        replace_file(d.fd.get(), "begin", std::to_string(begin), d.path("begin"));
        // The one process that waits: it starts the job at its time, if nothing else holds it.
        start_detached({runner_, "--conf=" + conf_, "--at=" + std::to_string(begin), id}, d.path("waker.log"));
    }
}

void LocalSlurm::signal(const std::string& id, const std::string& sig) const {
    const JobDir d = job_dir(dir_, id);
    const pid_t pgid = static_cast<pid_t>(number_in(d.read("pid")));
    if (pgid <= 1 || d.has("ended")) throw Error(ErrorKind::Conflict, "Job is not running: " + id);
    const std::string name = sig.substr(0, sig.find('@'));
    if (kill(-pgid, signal_number(name)) != 0) throw system_error("cannot signal job " + id, errno);
}

std::string LocalSlurm::mail_user(const std::string&) const { return ""; }
std::vector<std::uint32_t> LocalSlurm::array_task_ids(const std::string&) const { return {}; }
std::optional<JobShape> LocalSlurm::shape(const std::string&) const { return std::nullopt; }

bool LocalSlurm::mark_running(const std::string& id, pid_t pgid) const {
    const JobDir d = job_dir(dir_, id);
    replace_file(d.fd.get(), "pid", std::to_string(pgid), d.path("pid"));
    return !d.has("cancelled");
}

void LocalSlurm::finished(const std::string& id, int status) const {
    {
        const JobDir d = job_dir(dir_, id);
        create_file(d.fd.get(), "ended", std::to_string(status), d.path("ended"));
    }
    Fd jobs = open_dir(AT_FDCWD, dir_, Trust{geteuid()}, dir_);
    for (const auto& name : list_dir(jobs.get())) {
        if (!all_digits(name) || name == id) continue;
        LocalJob waiting;
        try {
            waiting = load(name);
        } catch (const Error&) {  // being submitted, or not hawf's
            continue;
        }
        if (std::find(waiting.after.begin(), waiting.after.end(), id) != waiting.after.end()) start_if_free(name);
    }
}

void LocalSlurm::start_if_free(const std::string& id) const {
    const JobDir d = job_dir(dir_, id);
    if (d.has("started") || d.has("ended") || d.has("cancelled") || d.has("hold") || !d.has("job.json")) return;
    if (number_in(d.read("begin")) > std::time(nullptr)) return;  // its waker starts it
    const LocalJob waiting = load(id);
    for (const auto& dep : waiting.after) {
        const std::optional<JobInfo> j = job(dep);
        if (j && (j->state == "PENDING" || j->state == "RUNNING")) return;
        if (!j || j->state != "COMPLETED") {  // afterok can never be met
            if (waiting.kill_on_invalid_dep) {
                try {
                    cancel(id);
                } catch (const Error&) {  // cancelled meanwhile
                }
            }
            return;
        }
    }
    if (!create_file(d.fd.get(), "started", "", d.path("started"))) return;  // another start won
    start_detached({runner_, "--conf=" + conf_, id}, d.path("runner.log"));
}

std::unique_ptr<Slurm> slurm_of(const Config& config) {
    if (config.local_jobs.empty()) return std::make_unique<Slurm>();
    const char* runner = std::getenv("HAWF_LOCAL_JOB");  // a build tree's (tests); else the installed one
    return std::make_unique<LocalSlurm>(config.local_jobs, runner && *runner ? runner : HAWF_LOCAL_JOB_PATH,
                                        config.path);
}

std::string local_sbatch_note(const std::string& option) {
    for (const char* honoured : {"--time", "-t", "--job-name", "-J", "--output", "-o", "--error", "-e", "--chdir", "-D"})
        if (option == honoured || starts(option, (std::string(honoured) + (honoured[1] == '-' ? "=" : "")).c_str()))
            return "";
    return "sbatch " + option + " ignored: a local run has no Slurm (honoured: --time, --job-name, --output, "
                                "--error, --chdir)";
}

std::string local_config() {
    const char* state = std::getenv("XDG_STATE_HOME");
    const char* home = std::getenv("HOME");
    std::string base;
    if (state && *state == '/') base = std::string(state) + "/hawf";
    else if (home && *home == '/') base = std::string(home) + "/.local/state/hawf";
    else throw Error(ErrorKind::Usage, "--local: neither XDG_STATE_HOME nor HOME is set to an absolute path");
    const std::string dir = base + "/local";
    // Each level the user's own, 0700 (make_dir checks what exists).
    std::string path;
    for (const auto& part : split(dir.substr(1), '/')) {
        path += "/" + part;
        if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw system_error("--local: cannot create " + path, errno);
    }
    Fd fd = open_dir(AT_FDCWD, dir, Trust{geteuid()}, dir);
    if (!fd) throw Error(ErrorKind::NotFound, "--local: " + dir + " disappeared");
    make_dir(fd.get(), "spool", Trust{geteuid()}, dir + "/spool");
    make_dir(fd.get(), "jobs", Trust{geteuid()}, dir + "/jobs");
    create_file(fd.get(), "hawf.yaml",
                "# hawf's runs on this machine, without Slurm (hawf submit --local): hawf.yaml(5)\n"
                "spool: " + dir + "/spool\nlocal_jobs: " + dir + "/jobs\n",
                dir + "/hawf.yaml");  // false: there already
    return dir + "/hawf.yaml";
}

}  // namespace hawf
