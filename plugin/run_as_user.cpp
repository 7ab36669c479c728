#include "run_as_user.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace hawf::plugin {
namespace {

// The child's answer: one byte saying what follows ('+' BODY's result, or the
// ErrorKind of the failure as a digit), then the text. A child that cannot write
// all of it exits non-zero: the parent never takes half an answer for a whole one.
bool write_all(int fd, const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
        ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

[[noreturn]] void fail(int fd, ErrorKind kind, const std::string& text) {
    write_all(fd, std::string(1, static_cast<char>('0' + static_cast<int>(kind))) + text);
    _exit(1);
}

bool drop_privileges(const JobUser& user) {
    // In user_init slurmstepd has only switched its effective uid: regain root first,
    // so that the drop below is complete.
    if (geteuid() != 0 && seteuid(0) != 0) return false;
    if (setgroups(user.groups.size(), user.groups.data()) != 0) return false;
    if (setresgid(user.gid, user.gid, user.gid) != 0) return false;
    if (setresuid(user.uid, user.uid, user.uid) != 0) return false;
    return user.uid == 0 || setuid(0) != 0;  // must not be able to regain root
}

// The child: (AS_ROOT as root,) drop, run, report the result or error text through FD, exit.
[[noreturn]] void child(const JobUser& user, const std::function<std::string()>& body,
                        const std::function<void()>& as_root, int fd) {
    const auto attempt = [fd](const std::function<void()>& step) {
        try {
            step();
        } catch (const Error& e) {
            fail(fd, e.kind(), e.what());
        } catch (const std::exception& e) {
            fail(fd, ErrorKind::System, e.what());
        } catch (...) {
            fail(fd, ErrorKind::System, "unexpected failure");
        }
    };
    if (as_root) {
        if (geteuid() != 0 && seteuid(0) != 0)
            fail(fd, ErrorKind::System, std::string("cannot become root again: ") + std::strerror(errno));
        attempt(as_root);
    }
    if (!drop_privileges(user))
        fail(fd, ErrorKind::System, "cannot switch to uid " + std::to_string(user.uid) + ": " + std::strerror(errno));
    std::string answer;
    attempt([&] { answer = body(); });
    _exit(write_all(fd, "+" + answer) ? 0 : 1);
}

}  // namespace

Outcome run_as_user(const JobUser& user, const std::function<std::string()>& body, int timeout_s,
                    const std::function<void()>& as_root) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {false, std::string("cannot create a pipe: ") + std::strerror(errno)};
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return {false, std::string("cannot fork: ") + std::strerror(errno)};
    }
    if (pid == 0) {
        close(fds[0]);
        child(user, body, as_root, fds[1]);
    }
    close(fds[1]);
    std::string message;
    const std::time_t give_up = std::time(nullptr) + timeout_s;
    bool timed_out = false;
    for (;;) {
        const long left = give_up - std::time(nullptr);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        int ready = poll(&p, 1, static_cast<int>(left * 1000));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        char buf[512];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the child closed its end: done
        message.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) return {false, "the spool did not answer within " + std::to_string(timeout_s) + " s"};
    const bool exited_0 = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (exited_0 && !message.empty() && message[0] == '+') return {true, message.substr(1)};
    const int kind = message.empty() ? -1 : message[0] - '0';
    if (!exited_0 && kind >= 0 && kind <= static_cast<int>(ErrorKind::System))
        return {false, message.substr(1), static_cast<ErrorKind>(kind)};
    if (WIFSIGNALED(status)) return {false, "spool writer killed by signal " + std::to_string(WTERMSIG(status))};
    return {false, "spool writer failed without a whole answer"};
}

}  // namespace hawf::plugin
