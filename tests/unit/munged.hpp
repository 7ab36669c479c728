// A private munged for the unit tests that need real credentials, as the test
// cluster runs one: its own key and socket in a temporary directory. munged
// wants root (it owns its key and socket); tests without root or without munged
// installed skip themselves.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "helpers.hpp"

namespace hawf::test {

inline std::string find_munged() {
    for (const char* dir : {"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"}) {
        const std::string path = std::string(dir) + "/munged";
        if (access(path.c_str(), X_OK) == 0) return path;
    }
    return "";
}

class Munged {
public:
    // Starts munged and waits until its socket accepts connections; throws on failure.
    explicit Munged(const std::string& program) : dir_(0755) {
        {
            std::ifstream random("/dev/urandom", std::ios::binary);
            std::string key(128, '\0');
            random.read(key.data(), static_cast<std::streamsize>(key.size()));
            write_text(dir_ / "munge.key", key, 0600);
        }
        const std::string args[] = {"--foreground", "--socket=" + socket(), "--key-file=" + dir_ / "munge.key",
                                    "--pid-file=" + dir_ / "munged.pid", "--log-file=" + dir_ / "munged.log",
                                    "--seed-file=" + dir_ / "munged.seed"};
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            const char* argv[] = {"munged",         args[0].c_str(), args[1].c_str(), args[2].c_str(),
                                  args[3].c_str(), args[4].c_str(), args[5].c_str(), nullptr};
            const int quiet = open("/dev/null", O_WRONLY);  // it logs to its --log-file too
            dup2(quiet, STDOUT_FILENO);
            dup2(quiet, STDERR_FILENO);
            execv(program.c_str(), const_cast<char* const*>(argv));
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!accepting()) {
            if (std::chrono::steady_clock::now() > deadline || waitpid(pid_, nullptr, WNOHANG) == pid_) {
                stop();
                throw std::runtime_error("munged did not start: " + read_text(dir_ / "munged.log"));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    ~Munged() { stop(); }
    Munged(const Munged&) = delete;
    Munged& operator=(const Munged&) = delete;

    std::string socket() const { return dir_ / "munge.sock"; }

private:
    bool accepting() const {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, socket().c_str(), sizeof address.sun_path - 1);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        close(fd);
        return ok;
    }
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    TempDir dir_;
    pid_t pid_ = -1;
};

// Fixture: a fresh munged per test (each test case is its own process under ctest).
class MungeTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "a private munged needs root";
        const std::string program = find_munged();
        if (program.empty()) GTEST_SKIP() << "munged is not installed";
        munged_ = std::make_unique<Munged>(program);
    }
    std::string socket() const { return munged_->socket(); }

    std::unique_ptr<Munged> munged_;
};

}  // namespace hawf::test
