// Safe file primitives for a spool on a shared filesystem that other users can
// also write to. Directories are walked with openat(O_NOFOLLOW) from an already
// checked parent, so no path is ever resolved twice and no symlink is followed.
// Records are created with temp + fsync + link (exclusive, NFS-safe) + directory
// fsync: a crash leaves the whole record or none, two writers get one winner.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace hawf {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();
    int get() const { return fd_; }
    int release() { int fd = fd_; fd_ = -1; return fd; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// SHOWN is the path used in messages.

// Who must own an entry for it to be trusted.
struct Trust {
    uid_t owner;
    bool sticky_world_writable_ok = false;  // only the spool root
};

// Opens NAME under DIR (a trusted directory fd, or AT_FDCWD with an absolute path)
// as a directory: no symlink, owned by trust.owner, not group/world-writable.
// Returns an empty Fd if it does not exist; throws Error(Untrusted) if it fails a check.
Fd open_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown);

// Like open_dir, creating the directory (mode 0755) first if it is missing.
Fd make_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown);

// Reads a regular file under DIR with the same checks (and a single link).
// Returns nullopt if it does not exist.
std::optional<std::string> read_file(int dir, const std::string& name, const Trust& trust,
                                     const std::string& shown, std::size_t max_bytes = 1 << 20);

// Creates NAME under DIR holding DATA, atomically and exclusively.
// Returns false (and changes nothing) if NAME already exists.
bool create_file(int dir, const std::string& name, const std::string& data, const std::string& shown);

// Removes NAME under DIR; missing is fine.
void remove_file(int dir, const std::string& name, const std::string& shown);

// Removes NAME under DIR and, if it is a directory, everything in it, never
// following a symbolic link (a link is removed, not what it points to).
void remove_tree(int dir, const std::string& name, const std::string& shown);

// Entry names under DIR, excluding "." and ".." and names starting with '.'.
std::vector<std::string> list_dir(int dir);

// Checks an already open directory fd against TRUST; WHAT names it in errors.
void check_dir(int fd, const Trust& trust, const std::string& shown);

}  // namespace hawf
