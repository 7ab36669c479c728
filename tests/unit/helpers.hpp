// Shared helpers of the unit tests: temporary directories, Error assertions and
// running a piece of code as another uid in a forked child.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "error.hpp"

namespace hawf::test {

// A fresh directory under /tmp, removed (with everything in it) at the end.
class TempDir {
public:
    explicit TempDir(mode_t mode = 0700) {
        char tmpl[] = "/tmp/hawf-unit-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
        chmod(path_.c_str(), mode);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

inline void write_text(const std::string& path, const std::string& text, mode_t mode = 0644) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    chmod(path.c_str(), mode);
}

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline bool is_root() { return geteuid() == 0; }

// Runs FN in a forked child switched to UID/GID; returns the child's exit status
// (FN's return value), or -1 if it could not switch or died.
inline int run_as(uid_t uid, gid_t gid, const std::function<int()>& fn) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(99);
        int rc = 99;
        try {
            rc = fn();
        } catch (...) {
            rc = 98;
        }
        _exit(rc);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace hawf::test

// STATEMENT must throw hawf::Error of KIND whose message is one line holding NEEDLE.
#define EXPECT_HAWF_ERROR(statement, expected_kind, needle)                                          \
    do {                                                                                             \
        bool hawf_thrown_ = false;                                                                   \
        try {                                                                                        \
            statement;                                                                               \
        } catch (const ::hawf::Error& hawf_e_) {                                                     \
            hawf_thrown_ = true;                                                                     \
            const std::string hawf_msg_ = hawf_e_.what();                                            \
            EXPECT_EQ(static_cast<int>(hawf_e_.kind()), static_cast<int>(expected_kind))             \
                << "kind of: " << hawf_msg_;                                                         \
            EXPECT_EQ(hawf_msg_.find('\n'), std::string::npos) << "not one line: " << hawf_msg_;     \
            EXPECT_NE(hawf_msg_.find(needle), std::string::npos)                                     \
                << "message \"" << hawf_msg_ << "\" does not contain \"" << (needle) << "\"";        \
        }                                                                                            \
        EXPECT_TRUE(hawf_thrown_) << #statement " did not throw hawf::Error";                        \
    } while (0)
