// One child process, owned: the one way hawf starts a process (run_command for
// Slurm's commands and hawfd's owner children, run_as_user in slurmstepd).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "fsutil.hpp"

namespace hawf {

// Why root must not run PATH ("" if it may): it must be a regular file owned by root,
// writable by root only and executable by all (what slurmstepd execs for hawf).
std::string unsafe_for_root(const std::string& path);

// INPUT as a readable descriptor at offset 0 for a child's stdin: an anonymous file,
// so a large input cannot block the parent the way a pipe nobody reads yet would.
Fd input_file(const std::string& input);

// Writes all of DATA to FD (a blocking descriptor), retrying after EINTR; false
// (errno set) if it could not. Only write(2): safe in a forked child too.
bool write_fully(int fd, std::string_view data);

// In a forked child, with async-signal-safe calls only: writes MESSAGE, ": " and
// what ERR (an errno) means to FD, then _exits with STATUS. Make MESSAGE before fork.
[[noreturn]] void exit_child(int fd, const char* message, int err, int status);

// What execvp would run for NAME: NAME itself if it has a slash, else the first
// executable file of that name in SEARCH_PATH (PATH's syntax; empty: /bin:/usr/bin,
// as execvp), else NAME. Found
// before fork, so that the child can execve without searching (execvp may allocate).
std::string program_path(const std::string& name, const std::string& search_path);

// A forked child with fds 0 (a given descriptor, or /dev/null), 1 and 2 (pipes read
// here) and no other descriptor of this process, in a process group of its own: a
// timeout kills whatever it started too. Destroyed while the child runs, it kills
// the group and reaps the child, so no path leaves a zombie or a stray process.
class Subprocess {
public:
    // Forks and runs CHILD in the child, which must use only async-signal-safe calls
    // when this process may have threads, and end in exec or _exit. STDIN_FD: what
    // the child reads (-1: /dev/null); it stays the caller's. Throws Error(System)
    // if the child cannot be started.
    Subprocess(int stdin_fd, const std::function<void()>& child);
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;
    ~Subprocess();

    struct Finished {
        int status = -1;  // wait status
        std::string out, err;
        bool timed_out = false;  // killed at the deadline
    };
    // Reads the child's output until it closes both pipes, or until DEADLINE, when
    // its group is killed; then reaps it. Once only.
    Finished finish(std::chrono::steady_clock::time_point deadline);

private:
    void kill_and_reap(int* status);

    pid_t pid_ = -1;
    Fd out_, err_;
};

}  // namespace hawf
