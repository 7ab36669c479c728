// process.hpp: the one child-process type: what the child gets (fds 0-2 only, its
// own process group), its output, and that a timeout or an early destruction
// leaves no process behind.
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "helpers.hpp"

namespace hawf {
namespace {

using Clock = std::chrono::steady_clock;

// Runs /bin/sh -c SCRIPT in a Subprocess, with STDIN_FD.
Subprocess shell(const std::string& script, int stdin_fd = -1) {
    return Subprocess(stdin_fd, [&] {
        execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    });
}

// Whether PID is gone (or a zombie nobody here can reap: killed, it only waits for init).
bool gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_text, name, state;
    return !(stat >> pid_text >> name >> state) || state == "Z";
}

bool becomes_gone(pid_t pid) {
    for (int i = 0; i < 200 && !gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return gone(pid);
}

TEST(Subprocess, OutputErrorStatusAndInput) {
    test::TempDir dir;
    test::write_text(dir / "in", "from stdin\n");
    const Fd in(open((dir / "in").c_str(), O_RDONLY | O_CLOEXEC));
    Subprocess child = shell("cat; echo oops >&2; exit 3", in.get());
    const Subprocess::Finished done = child.finish(Clock::now() + std::chrono::seconds(30));
    EXPECT_FALSE(done.timed_out);
    EXPECT_EQ(done.out, "from stdin\n");
    EXPECT_EQ(done.err, "oops\n");
    ASSERT_TRUE(WIFEXITED(done.status));
    EXPECT_EQ(WEXITSTATUS(done.status), 3);
    // Without a descriptor: /dev/null.
    EXPECT_EQ(shell("cat; echo done").finish(Clock::now() + std::chrono::seconds(30)).out, "done\n");
}

TEST(Subprocess, TheChildGetsNoOtherDescriptorAndAGroupOfItsOwn) {
    const int leaked = open("/dev/null", O_RDONLY);  // not close-on-exec: fork alone would pass it on
    ASSERT_GE(leaked, 3);
    Subprocess child(-1, [&] {
        const bool inherited = fcntl(leaked, F_GETFD) != -1;
        const bool own_group = getpgid(0) == getpid();
        _exit(inherited ? 1 : own_group ? 0 : 2);
    });
    const Subprocess::Finished done = child.finish(Clock::now() + std::chrono::seconds(30));
    close(leaked);
    ASSERT_TRUE(WIFEXITED(done.status));
    EXPECT_EQ(WEXITSTATUS(done.status), 0) << "1: a descriptor leaked, 2: no group of its own";
}

// A command that hangs, and what it started: both killed at the deadline.
TEST(Subprocess, ATimeoutKillsTheWholeGroup) {
    Subprocess child = shell("sleep 60 & echo $!; exec sleep 60");
    const auto started = Clock::now();
    const Subprocess::Finished done = child.finish(started + std::chrono::milliseconds(500));
    EXPECT_TRUE(done.timed_out);
    ASSERT_TRUE(WIFSIGNALED(done.status));
    EXPECT_EQ(WTERMSIG(done.status), SIGKILL);
    const pid_t grandchild = std::stoi(done.out);
    EXPECT_TRUE(becomes_gone(grandchild)) << "the background sleep survived";
}

// Destroyed before it finished (an exception in the caller, say): killed and reaped.
TEST(Subprocess, DestroyedEarlyItLeavesNoProcess) {
    test::TempDir dir;
    const std::string pid_file = dir / "pid";
    {
        Subprocess child = shell("echo $$ > " + pid_file + "; exec sleep 60");
        for (int i = 0; i < 500 && test::read_text(pid_file).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::string text = test::read_text(pid_file);
    ASSERT_FALSE(text.empty());
    const pid_t pid = std::stoi(text);
    EXPECT_TRUE(gone(pid));  // reaped at once: not even a zombie
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
}

// What a child that failed before exec says, with async-signal-safe calls only.
TEST(ExitChild, WritesTheMessageAndWhatTheErrnoMeans) {
    Subprocess missing(-1, [] { exit_child(STDERR_FILENO, "cannot run sbatch", ENOENT, 127); });
    const Subprocess::Finished done = missing.finish(Clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(WEXITSTATUS(done.status), 127);
    EXPECT_EQ(done.err, "cannot run sbatch: No such file or directory");
    Subprocess unknown(-1, [] { exit_child(STDOUT_FILENO, "6odd", 4242, 1); });
    const Subprocess::Finished odd = unknown.finish(Clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(WEXITSTATUS(odd.status), 1);
    EXPECT_EQ(odd.out, "6odd: errno 4242");
}

TEST(ProgramPath, SearchesLikeExecvpBeforeFork) {
    EXPECT_EQ(program_path("sh", "/nonexistent:/bin"), "/bin/sh");
    EXPECT_EQ(program_path("sh", ""), "/bin/sh");  // execvp's default path
    EXPECT_EQ(program_path("./tools/hawf", "/bin"), "./tools/hawf");  // a slash: as given
    EXPECT_EQ(program_path("hawf-no-such-command", "/bin:/usr/bin"), "hawf-no-such-command");
}

}  // namespace
}  // namespace hawf
