#include "run_as_user.hpp"

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "process.hpp"

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
    Subprocess::Finished done;
    try {
        Subprocess writer(-1, [&] { child(user, body, as_root, STDOUT_FILENO); });
        done = writer.finish(std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s));
    } catch (const Error& e) {
        return {false, e.what()};
    }
    if (done.timed_out) return {false, "the spool did not answer within " + std::to_string(timeout_s) + " s"};
    const std::string& message = done.out;
    const bool exited_0 = WIFEXITED(done.status) && WEXITSTATUS(done.status) == 0;
    if (exited_0 && !message.empty() && message[0] == '+') return {true, message.substr(1)};
    const int kind = message.empty() ? -1 : message[0] - '0';
    if (!exited_0 && kind >= 0 && kind <= static_cast<int>(ErrorKind::System))
        return {false, message.substr(1), static_cast<ErrorKind>(kind)};
    if (WIFSIGNALED(done.status))
        return {false, "spool writer killed by signal " + std::to_string(WTERMSIG(done.status))};
    return {false, "spool writer failed without a whole answer"};
}

}  // namespace hawf::plugin
