// Safe file primitives for a spool on a shared filesystem that other users can
// also write to. Directories are walked with openat(O_NOFOLLOW) from an already
// checked parent, so no path is ever resolved twice and no symlink is followed.
// Records are created with temp + fsync + link (exclusive, NFS-safe) + directory
// fsync: a crash leaves the whole record or none, two writers get one winner.
// What is created is private to its owner (directories 0700, files 0600).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
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
// Returns an empty Fd if it does not exist; throws Error(Untrusted) if it fails a check
// ("is a symbolic link", "is not a directory", ...).
Fd open_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown);

// Like open_dir, creating the directory (mode 0700) first if it is missing.
Fd make_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown);

// Reads a regular file under DIR with the same checks (its link count is not
// checked); one larger than MAX_BYTES is Error(Untrusted). Returns nullopt if it
// does not exist.
std::optional<std::string> read_file(int dir, const std::string& name, const Trust& trust,
                                     const std::string& shown, std::size_t max_bytes = 1 << 20);
// As read_file, but a file larger than MAX_BYTES is not refused: its first MAX_BYTES
// are read. SIZE receives the file's size.
std::optional<std::string> read_file_start(int dir, const std::string& name, const Trust& trust,
                                           const std::string& shown, std::size_t max_bytes, std::size_t* size);

// The batch script PATH as sbatch reads it at submission: relative to the current
// directory, symlinks followed, a regular file (a FIFO does not hang the reader), at
// most MAX_BYTES. Error(Usage) "WHAT: cannot read script PATH: why" otherwise.
std::string read_script_file(const std::string& path, std::size_t max_bytes, const std::string& what);
// Creates NAME under DIR holding DATA (mode 0600), atomically and exclusively.
// Returns false (and changes nothing) if NAME already exists. Its temporary file is
// named temp_prefix + host.pid.n; one a killed writer left is removed by remove_stale_temps.
bool create_file(int dir, const std::string& name, const std::string& data, const std::string& shown);
inline constexpr char temp_prefix[] = ".tmp.";

// Writes NAME under DIR holding DATA (mode 0600), replacing what was there at once
// (temp + fsync + rename): a reader sees the old file or the new one, never a part.
// For views derived from the records (the log stays the truth), not for records.
// The temp file is made in TEMP_DIR (same filesystem; default DIR).
void replace_file(int dir, const std::string& name, const std::string& data, const std::string& shown,
                  int temp_dir = -1);

// PREFIX + "HOST.PID.N": a name no other process of any host makes at the same time.
std::string unique_name(const std::string& prefix);

// Removes NAME under DIR; missing is fine.
void remove_file(int dir, const std::string& name, const std::string& shown);

// Removes NAME under DIR and, if it is a directory, everything in it, never
// following a symbolic link (a link is removed, not what it points to). Holds a
// constant number of descriptors whatever the depth; if a directory of the tree is
// moved meanwhile, it stops with Error(Untrusted) rather than remove outside the tree.
void remove_tree(int dir, const std::string& name, const std::string& shown);

// Removes everything in DIR (each entry as remove_tree does), keeping DIR.
void empty_dir(int dir, const std::string& shown);

// Renames FROM under FROM_DIR to TO under TO_DIR (same filesystem) and makes it
// durable. Returns false if FROM does not exist.
bool move_entry(int from_dir, const std::string& from, int to_dir, const std::string& to,
                const std::string& shown);

// Removes the temporary files create_file left under DIR (a writer killed between
// create and unlink) last modified before STALE_BEFORE (unix seconds): younger ones
// may belong to a writer still running. Returns how many it removed.
std::size_t remove_stale_temps(int dir, std::int64_t stale_before, const std::string& shown);

// Entry names under DIR, excluding "." and ".." and names starting with '.'.
std::vector<std::string> list_dir(int dir);
// As list_dir, reading DIR's own description from where it stands: for a directory
// just opened that nothing else reads (one openat fewer than list_dir).
std::vector<std::string> list_opened_dir(int dir);

// Checks that ST (fstat of a directory fd) passes TRUST (owner and mode, as open_dir does).
void check_dir(const struct stat& st, const Trust& trust, const std::string& shown);

}  // namespace hawf
