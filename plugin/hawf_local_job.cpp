// hawf-local-job: one job of a flow run without Slurm (local_jobs.hpp), as its user,
// detached from whatever started it. It does what slurmstepd with hawf's plugin does
// in a cluster, with the same code: the step side (step_side.hpp) with this machine
// as its Host and the helper's verbs called in this process (no identity to drop:
// it is the user's already). So the job's script sees the same HAWF_* variables,
// its checkpoint opens and ends in the same spool code, and a follow-up gets its
// decision the same way. Then it starts the jobs that waited for this one.
//
//   hawf-local-job --conf=HAWF.YAML JOB            run local job JOB
//   hawf-local-job --conf=HAWF.YAML --at=TIME JOB  at TIME (unix seconds), start JOB if free
//                                                  (sooner gone if JOB no longer waits for TIME)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <thread>

#include "config.hpp"
#include "error.hpp"
#include "local_jobs.hpp"
#include "step_helper.hpp"
#include "step_side.hpp"

extern char** environ;

namespace hawf::plugin {
namespace {

// This machine, for the step side: the job is its own batch step on one node.
class LocalHost : public Host {
public:
    LocalHost(const LocalJob& job, std::vector<std::string> env) : job_(job), env_(std::move(env)) {}
    Where where() const override { return Where::Stepd; }
    Client client() const override { return Client::None; }
    StepIds step() const override { return {static_cast<std::uint32_t>(std::stoul(job_.id)), batch_step_id, 0, 0}; }
    std::uint32_t node_id() const override { return 0; }
    std::uint32_t node_count() const override { return 1; }
    JobUser user() const override { return {getuid(), getgid(), {}}; }
    int task_exit_status() const override { return status_; }
    std::vector<std::string> job_env() const override { return env_; }
    std::optional<std::string> getenv(const std::string& name) const override {
        for (const auto& e : env_)
            if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
        return std::nullopt;
    }
    void setenv(const std::string& name, const std::string& value) override {
        for (auto& e : env_)
            if (e.rfind(name + "=", 0) == 0) {
                e = name + "=" + value;
                return;
            }
        env_.push_back(name + "=" + value);
    }
    void error(const std::string& line) override { std::cerr << line << std::endl; }
    std::optional<std::string> oci_config() const override { return std::nullopt; }
    std::uint32_t slurm_version() const override { return 0; }

    void set_status(int status) { status_ = status; }

private:
    const LocalJob& job_;
    std::vector<std::string> env_;
    int status_ = 0;
};

// The helper's verbs, in this process: the job's user runs it already.
Outcome in_process(const JobUser&, const HelperCall& call) {
    try {
        return {true, run_step_verb(call.verb, call.request)};
    } catch (const Error& e) {
        return {false, e.what(), e.kind()};
    } catch (const std::exception& e) {
        return {false, e.what(), ErrorKind::System};
    }
}

// PATTERN with %j (job id) and %x (job name), relative to CWD: sbatch's --output.
std::string output_path(const std::string& pattern, const LocalJob& job) {
    std::string path;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '%' && i + 1 < pattern.size() && (pattern[i + 1] == 'j' || pattern[i + 1] == 'x')) {
            path += pattern[++i] == 'j' ? job.id : job.name;
        } else {
            path += pattern[i];
        }
    }
    return path[0] == '/' ? path : job.cwd + "/" + path;
}

void redirect(int fd, const std::string& path) {
    const int out = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) throw system_error("cannot open the job's output " + path, errno);
    dup2(out, fd);
    close(out);
}

// Runs SCRIPT as sbatch's batch step would (its #! interpreter, else /bin/sh) in the
// job's directory with ENV, in a process group of its own, which LocalSlurm::cancel
// signals; at the time limit SIGTERM, 10 s later SIGKILL. Returns its wait status.
int run_script(const LocalSlurm& slurm, const LocalJob& job, const std::string& script, const std::vector<std::string>& env) {
    std::vector<std::string> argv;
    {
        std::string first(256, '\0');
        const int fd = open(script.c_str(), O_RDONLY | O_CLOEXEC);
        const ssize_t n = fd < 0 ? 0 : read(fd, first.data(), first.size());
        if (fd >= 0) close(fd);
        first.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        if (first.rfind("#!", 0) == 0) {
            std::string line = first.substr(2, first.find('\n') - 2);
            const auto word = line.find_first_not_of(" \t");
            line = word == std::string::npos ? "" : line.substr(word);
            const auto space = line.find_first_of(" \t");
            argv.push_back(line.substr(0, space));
            if (space != std::string::npos) {
                const auto arg = line.find_first_not_of(" \t", space);
                if (arg != std::string::npos) argv.push_back(line.substr(arg, line.find_last_not_of(" \t\r") - arg + 1));
            }
        }
        if (argv.empty() || argv[0].empty()) argv = {"/bin/sh"};
        argv.push_back(script);
    }
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env_copy = env;
    for (auto& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t child = fork();
    if (child < 0) throw system_error("cannot start the job's script", errno);
    if (child == 0) {
        setpgid(0, 0);
        signal(SIGTERM, SIG_DFL);
        if (chdir(job.cwd.c_str()) != 0) _exit(1);
        execve(args[0], args.data(), envp.data());
        _exit(127);
    }
    setpgid(child, child);
    slurm.mark_running(job.id, child);
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(job.time_limit_s);
    bool terminated = false;
    for (;;) {
        int status = 0;
        const pid_t done = waitpid(child, &status, job.time_limit_s ? WNOHANG : 0);
        if (done == child) return status;
        if (done < 0 && errno != EINTR) throw system_error("cannot wait for the job's script", errno);
        if (job.time_limit_s && std::chrono::steady_clock::now() > limit) {
            std::cerr << "hawf-local-job: job " << job.id << " reached its time limit" << std::endl;
            kill(-child, terminated ? SIGKILL : SIGTERM);
            terminated = true;
            std::this_thread::sleep_for(std::chrono::seconds(10));
            continue;
        }
        if (job.time_limit_s) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

void run_job(const LocalSlurm& slurm, const std::string& conf, const std::string& id) {
    const LocalJob job = slurm.load(id);
    setpgid(0, 0);
    signal(SIGTERM, SIG_IGN);  // a cancel is for the script (its own group): this process ends the job after it
    if (!slurm.mark_running(id, getpid())) return;  // cancelled before it started
    redirect(STDOUT_FILENO, output_path(job.output.empty() ? "slurm-%j.out" : job.output, job));
    if (!job.error.empty()) redirect(STDERR_FILENO, output_path(job.error, job));
    else dup2(STDOUT_FILENO, STDERR_FILENO);
    // As in a Slurm job: the job's id and name, and hawf's config (here the local one).
    std::vector<std::string> env = job.env;
    LocalHost host(job, env);
    host.setenv("SLURM_JOB_ID", job.id);
    host.setenv("SLURM_JOB_NAME", job.name);
    host.setenv("SLURM_SUBMIT_DIR", job.cwd);
    host.setenv("HAWF_CONF", conf);
    nlohmann::json given = nlohmann::json::object();
    for (const auto& option : job.hawf) {
        const auto eq = option.find('=');
        given[option.substr(2, eq == std::string::npos ? std::string::npos : eq - 2)] =
            eq == std::string::npos ? "" : option.substr(eq + 1);
    }
    StepSide side(conf, in_process);
    int status = 1 << 8;
    try {
        side.user_init(host, Request::from_given(given));
        if (side.task_init(host) == 0) status = run_script(slurm, job, slurm.script_path(id), host.job_env());
    } catch (const std::exception& e) {
        host.error(std::string("hawf: ") + e.what());
    }
    std::cout.flush();
    host.set_status(status);
    side.task_exit(host);
    side.exit(host);
    slurm.finished(id, status);
}

}  // namespace
}  // namespace hawf::plugin

int main(int argc, char** argv) {
    using namespace hawf;
    std::string conf, at, job;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--version") {
            std::cout << "hawf-local-job " HAWF_VERSION << std::endl;
            return 0;
        }
        if (a.rfind("--conf=", 0) == 0) conf = a.substr(7);
        else if (a.rfind("--at=", 0) == 0) at = a.substr(5);
        else job = a;
    }
    try {
        if (conf.empty() || job.empty())
            throw Error(ErrorKind::Usage, "usage: hawf-local-job --conf=HAWF.YAML [--at=TIME] JOB (started by hawf for "
                                          "a flow run without Slurm)");
        const Config config = load_config(conf);
        const std::unique_ptr<Slurm> slurm = slurm_of(config);
        const auto* local = dynamic_cast<const LocalSlurm*>(slurm.get());
        if (!local) throw Error(ErrorKind::Usage, conf + " has no local_jobs: these jobs are Slurm's");
        if (!at.empty()) {
            // Sleeps until then, unless the job stops needing it first: started (its
            // decision came), ended, cancelled, or given another start time.
            const std::int64_t when = std::stoll(at);
            for (std::int64_t now; (now = std::time(nullptr)) < when;) {
                const std::optional<JobInfo> info = local->job(job);
                if (!info || info->state != "PENDING" || info->eligible != when) return 0;
                std::this_thread::sleep_for(std::chrono::seconds(std::min<std::int64_t>(when - now, 10)));
            }
            local->start_if_free(job);
        } else {
            plugin::run_job(*local, conf, job);
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "hawf-local-job: " << e.what() << std::endl;
        return 1;
    }
}
