#include "slurm.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "error.hpp"

extern char** environ;

namespace hawf {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& items) {
    std::vector<char*> out;
    for (const auto& s : items) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

}  // namespace

bool CommandResult::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string CommandResult::message() const {
    std::string text = err.empty() ? out : err;
    auto end = text.find('\n');
    std::string line = text.substr(0, end);
    if (line.empty()) line = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                 : "exit status " + std::to_string(WEXITSTATUS(status));
    return line;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd,
                          const std::vector<std::string>* env, int timeout_s) {
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) throw system_error("cannot create a pipe", errno);
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        throw system_error("cannot create a pipe", errno);
    }
    std::vector<char*> args = c_strings(argv);
    std::vector<char*> envp = env ? c_strings(*env) : std::vector<char*>();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
            dprintf(2, "cannot change to %s: %s\n", cwd.c_str(), std::strerror(errno));
            _exit(126);
        }
        if (env) environ = envp.data();
        execvp(args[0], args.data());
        dprintf(2, "cannot run %s: %s\n", args[0], std::strerror(errno));
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (pid < 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        throw system_error("cannot fork", errno);
    }
    CommandResult result;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    bool timed_out = false;
    while (open_fds > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int ready = poll(fds, 2, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
                continue;
            }
            (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
        }
    }
    for (auto& p : fds)
        if (p.fd >= 0) close(p.fd);
    if (timed_out) kill(pid, SIGKILL);
    while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) result.err = join(argv) + ": no answer within " + std::to_string(timeout_s) + " s\n" + result.err;
    return result;
}

std::string Slurm::tool(const char* name) const { return bindir_.empty() ? name : bindir_ + "/" + name; }

void Slurm::run_or_throw(const std::vector<std::string>& argv) const {
    CommandResult r = run_command(argv);
    if (!r.ok()) throw Error(ErrorKind::System, join(argv) + ": " + r.message());
}

std::string Slurm::submit(const std::vector<std::string>& args, const std::string& script, const std::string& cwd,
                          const std::vector<std::string>* env) const {
    std::vector<std::string> argv = {tool("sbatch"), "--parsable"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(script);
    CommandResult r = run_command(argv, cwd, env);
    std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
    if (!r.ok() || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw Error(ErrorKind::System, "sbatch " + script + ": " + r.message());
    return id;
}

void Slurm::release(const std::string& job) const { run_or_throw({tool("scontrol"), "release", job}); }
void Slurm::hold(const std::string& job) const { run_or_throw({tool("scontrol"), "hold", job}); }
void Slurm::cancel(const std::string& job) const { run_or_throw({tool("scancel"), job}); }

void Slurm::update(const std::string& job, const std::vector<std::string>& assignments) const {
    std::vector<std::string> argv = {tool("scontrol"), "update", "JobId=" + job};
    argv.insert(argv.end(), assignments.begin(), assignments.end());
    run_or_throw(argv);
}

void Slurm::signal(const std::string& job, const std::string& sig) const {
    run_or_throw({tool("scancel"), "--signal=" + sig, "--full", job});
}

std::optional<std::map<std::string, std::string>> Slurm::show(const std::string& job) const {
    CommandResult r = run_command({tool("scontrol"), "show", "job", "-o", job});
    if (!r.ok()) {
        if (r.message().find("Invalid job id") != std::string::npos) return std::nullopt;
        throw Error(ErrorKind::System, "scontrol show job " + job + ": " + r.message());
    }
    // "Key=Value Key=Value ..." on one line; values hold no spaces except in a few
    // free-text fields hawf does not read.
    std::map<std::string, std::string> fields;
    std::string line = r.out.substr(0, r.out.find('\n'));
    std::size_t pos = 0;
    while (pos < line.size()) {
        std::size_t end = line.find(' ', pos);
        if (end == std::string::npos) end = line.size();
        std::string item = line.substr(pos, end - pos);
        auto eq = item.find('=');
        if (eq != std::string::npos) fields[item.substr(0, eq)] = item.substr(eq + 1);
        pos = end + 1;
    }
    return fields;
}

}  // namespace hawf
