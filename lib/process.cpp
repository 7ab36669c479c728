#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "error.hpp"
#include "validate.hpp"

namespace hawf {
namespace {

// Closes every descriptor from 3 on, in a forked child. close_range (Linux 5.9, glibc
// 2.34) does it in one call; without it (or where a sandbox refuses it) each number up
// to the limit is closed: listing /proc/self/fd would not be async-signal-safe.
void close_from_3(long max_fd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0U, 0) == 0) return;
#endif
    if (max_fd < 0 || max_fd > (1L << 20)) max_fd = 1L << 20;
    for (long fd = 3; fd < max_fd; ++fd) close(static_cast<int>(fd));
}

struct Pipe {
    Fd read, write;
};
Pipe make_pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw system_error("cannot create a pipe", errno);
    return {Fd(fds[0]), Fd(fds[1])};
}

}  // namespace

bool write_fully(int fd, std::string_view data) {
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

void exit_child(int fd, const char* message, int err, int status) {
    // strerror may take locale locks; strerrordesc_np (glibc 2.32) only reads a table.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char* description = strerrordesc_np(err);
#else
    const char* description = nullptr;
#endif
    char number[24] = "errno ";
    if (!description) {  // "errno N", its digits written backwards, then turned around
        std::size_t at = 6;
        unsigned value = err < 0 ? 0u : static_cast<unsigned>(err);
        do {
            number[at++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value > 0 && at < sizeof number - 1);
        for (std::size_t i = 6, j = at - 1; i < j; ++i, --j) std::swap(number[i], number[j]);
        number[at] = '\0';
        description = number;
    }
    for (const char* part : {message, ": ", description})
        if (!write_fully(fd, part)) break;
    _exit(status);
}

std::string program_path(const std::string& name, const std::string& search_path) {
    if (name.find('/') != std::string::npos) return name;
    for (const std::string& dir : split(search_path.empty() ? "/bin:/usr/bin" : search_path, ':')) {
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return name;
}

std::string unsafe_for_root(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return "cannot run " + path + ": " + std::strerror(errno);
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) || !(st.st_mode & S_IXOTH))
        return "refusing to run " + path + ": it must be a regular file owned by root, executable by all and "
                                           "writable by root only";
    return "";
}

Fd input_file(const std::string& input) {
    Fd fd(memfd_create("hawf-input", MFD_CLOEXEC));
    if (!fd) throw system_error("cannot create an input file", errno);
    if (!write_fully(fd.get(), input)) throw system_error("cannot write a command's input", errno);
    if (lseek(fd.get(), 0, SEEK_SET) != 0) throw system_error("cannot rewind a command's input", errno);
    return fd;
}

Subprocess::Subprocess(int stdin_fd, const std::function<void()>& child) {
    const Fd dev_null(stdin_fd < 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1);
    const int source = stdin_fd < 0 ? dev_null.get() : stdin_fd;
    Pipe out = make_pipe(), err = make_pipe();
    const long max_fd = sysconf(_SC_OPEN_MAX);  // sysconf is not async-signal-safe: ask before fork
    pid_ = fork();
    if (pid_ < 0) throw system_error("cannot fork", errno);
    if (pid_ == 0) {
        // Only async-signal-safe calls from here (the parent may have threads). A group
        // of its own; then fds 0, 1, 2 and nothing else: first lift the three sources
        // above 2 (one may itself be 0, 1 or 2 in a parent that had those closed), then
        // put them in place; dup2 clears close-on-exec on the copy.
        setpgid(0, 0);
        const int from[3] = {source < 0 ? -1 : fcntl(source, F_DUPFD_CLOEXEC, 3),
                             fcntl(out.write.get(), F_DUPFD_CLOEXEC, 3), fcntl(err.write.get(), F_DUPFD_CLOEXEC, 3)};
        for (int fd = 0; fd < 3; ++fd)
            if (from[fd] < 0 || dup2(from[fd], fd) != fd) _exit(126);
        close_from_3(max_fd);
        child();
        _exit(127);
    }
    setpgid(pid_, pid_);  // also here, so that a kill at once reaches the group
    out_ = std::move(out.read);
    err_ = std::move(err.read);
}

Subprocess::~Subprocess() {
    if (pid_ > 0) {
        int status = 0;
        kill_and_reap(&status);
    }
}

void Subprocess::kill_and_reap(int* status) {
    killpg(pid_, SIGKILL);
    kill(pid_, SIGKILL);  // should it have no group yet
    while (waitpid(pid_, status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

Subprocess::Finished Subprocess::finish(std::chrono::steady_clock::time_point deadline) {
    Finished done;
    pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            done.timed_out = true;
            break;
        }
        const int ready = poll(fds, 2, static_cast<int>(left));
        if (ready <= 0) continue;  // EINTR, or the deadline: looked at above
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fds[i].fd = -1;
                --open_fds;
                continue;
            }
            (i == 0 ? done.out : done.err).append(buf, static_cast<std::size_t>(n));
        }
    }
    out_ = Fd();
    err_ = Fd();
    if (done.timed_out) {
        kill_and_reap(&done.status);
    } else {
        while (waitpid(pid_, &done.status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    return done;
}

}  // namespace hawf
