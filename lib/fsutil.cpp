#include "fsutil.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "error.hpp"
#include "validate.hpp"

namespace hawf {
namespace {

Error untrusted(const std::string& shown, const std::string& why) {
    return Error(ErrorKind::Untrusted, "refusing " + shown + ": " + why);
}

void check_stat(const struct stat& st, const Trust& trust, const std::string& shown) {
    if (st.st_uid != trust.owner)
        throw untrusted(shown, "owned by uid " + std::to_string(st.st_uid) + ", expected uid " +
                                   std::to_string(trust.owner));
    bool world_writable = st.st_mode & S_IWOTH;
    if (trust.sticky_world_writable_ok && world_writable && (st.st_mode & S_ISVTX)) return;
    if (st.st_mode & (S_IWGRP | S_IWOTH)) throw untrusted(shown, "writable by group or others");
}

bool is_symlink(int dir, const std::string& name) {
    struct stat st;
    return fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// open(2) that reports "symlink" clearly: O_NOFOLLOW gives ELOOP on a final symlink,
// but with O_DIRECTORY Linux says ENOTDIR first, so the entry itself tells.
Fd open_checked(int dir, const std::string& name, int flags, const std::string& shown) {
    int fd = openat(dir, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return Fd();
        if (err == ELOOP || (err == ENOTDIR && is_symlink(dir, name))) throw untrusted(shown, "is a symbolic link");
        if (err == ENOTDIR) throw untrusted(shown, "is not a directory");
        throw system_error("cannot open " + shown, err);
    }
    return Fd(fd);
}

void fsync_dir(int dir, const std::string& shown) {
    // EINVAL: some filesystems cannot fsync a directory; their metadata is synchronous.
    if (fsync(dir) != 0 && errno != EINVAL) throw system_error("cannot fsync " + shown, errno);
}

// Where a directory is: what remove_tree remembers of the way down instead of an fd.
struct DirId {
    dev_t dev;
    ino_t ino;
    bool operator==(const DirId& o) const { return dev == o.dev && ino == o.ino; }
};

DirId dir_id(int fd, const std::string& shown) {
    struct stat st;
    if (fstat(fd, &st) != 0) throw system_error("cannot stat " + shown, errno);
    return {st.st_dev, st.st_ino};
}

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

// Takes FD over as a directory stream.
Dir dir_stream(Fd fd, const std::string& shown) {
    DIR* d = fdopendir(fd.get());
    if (!d) throw system_error("cannot read " + shown, errno);
    fd.release();
    return Dir(d);
}

bool is_dot_or_dotdot(const char* name) { return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0; }

// Opens NAME under DIR, which unlink(2) refused with UNLINK_ERR, as the directory to
// descend into. Empty if it vanished meanwhile; if it is not a directory after all,
// the unlink's error stands.
Fd open_for_removal(int dir, const char* name, int unlink_err, const std::string& shown) {
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) return Fd(fd);
    if (errno == ENOENT) return Fd();
    if (errno == ENOTDIR || errno == ELOOP) throw system_error("cannot remove " + shown, unlink_err);
    throw system_error("cannot open " + shown, errno);
}

}  // namespace

std::string unique_name(const std::string& prefix) {
    static std::atomic<unsigned> counter{0};
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    return prefix + std::string(host) + "." + std::to_string(getpid()) + "." + std::to_string(counter++);
}

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) close(fd_);
        fd_ = o.release();
    }
    return *this;
}

Fd::~Fd() {
    if (fd_ >= 0) close(fd_);
}

void check_dir(const struct stat& st, const Trust& trust, const std::string& shown) {
    if (!S_ISDIR(st.st_mode)) throw untrusted(shown, "is not a directory");
    check_stat(st, trust, shown);
}

Fd open_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown) {
    Fd fd = open_checked(dir, name, O_RDONLY | O_DIRECTORY, shown);
    if (!fd) return fd;
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw system_error("cannot stat " + shown, errno);
    check_dir(st, trust, shown);
    return fd;
}

Fd make_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown) {
    if (mkdirat(dir, name.c_str(), 0700) != 0 && errno != EEXIST)
        throw system_error("cannot create " + shown, errno);
    Fd fd = open_dir(dir, name, trust, shown);
    if (!fd) throw system_error("cannot open " + shown, ENOENT);  // removed under us
    return fd;
}

namespace {

std::optional<std::string> read_checked(int dir, const std::string& name, const Trust& trust, const std::string& shown,
                                        std::size_t max_bytes, std::size_t* size) {
    // O_NONBLOCK: a planted FIFO must not hang the reader; it fails the regular-file check.
    Fd fd = open_checked(dir, name, O_RDONLY | O_NONBLOCK, shown);
    if (!fd) return std::nullopt;
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw system_error("cannot stat " + shown, errno);
    if (!S_ISREG(st.st_mode)) throw untrusted(shown, "is not a regular file");
    check_stat(st, trust, shown);
    // The link count is not checked: another link to a file the owner owns, in a
    // directory only the owner can write, can only be the owner's (or create_file's
    // temp name, linked for a moment, or for good if the writer died right then).
    if (static_cast<std::size_t>(st.st_size) > max_bytes && !size) throw untrusted(shown, "is too large");
    if (size) *size = static_cast<std::size_t>(st.st_size);
    std::string data(std::min(static_cast<std::size_t>(st.st_size), max_bytes), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        ssize_t n = read(fd.get(), &data[got], data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw system_error("cannot read " + shown, errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    data.resize(got);
    return data;
}

}  // namespace

std::optional<std::string> read_file(int dir, const std::string& name, const Trust& trust, const std::string& shown,
                                     std::size_t max_bytes) {
    return read_checked(dir, name, trust, shown, max_bytes, nullptr);
}

std::optional<std::string> read_file_start(int dir, const std::string& name, const Trust& trust,
                                           const std::string& shown, std::size_t max_bytes, std::size_t* size) {
    return read_checked(dir, name, trust, shown, max_bytes, size);
}

namespace {

// A temp file under DIR holding DATA, fsynced (name in TEMP): what create_file and
// replace_file then link or rename into place.
Fd write_temp(int dir, const std::string& data, const std::string& shown, std::string& temp) {
    // A writer killed earlier may have left a temp file of the same name (its pid
    // reused since): take the next name, never fail on another's leftover.
    Fd fd;
    for (int attempt = 0; !fd; ++attempt) {
        temp = unique_name(temp_prefix);
        fd = Fd(openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd && (errno != EEXIST || attempt == 100))
            throw system_error("cannot create a temporary file beside " + shown, errno);
    }
    auto discard = [&](const std::string& what, int err) {
        unlinkat(dir, temp.c_str(), 0);
        return system_error(what + " " + shown, err);
    };
    for (std::size_t done = 0; done < data.size();) {
        ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw discard("cannot write", errno);
        done += static_cast<std::size_t>(n);
    }
    if (fsync(fd.get()) != 0) throw discard("cannot fsync", errno);
    return fd;
}

}  // namespace

void replace_file(int dir, const std::string& name, const std::string& data, const std::string& shown,
                  int temp_dir) {
    if (temp_dir < 0) temp_dir = dir;
    std::string temp;
    write_temp(temp_dir, data, shown, temp);
    if (renameat(temp_dir, temp.c_str(), dir, name.c_str()) != 0) {
        const int err = errno;
        unlinkat(temp_dir, temp.c_str(), 0);
        throw system_error("cannot rename into " + shown, err);
    }
    fsync_dir(dir, shown);
}

bool create_file(int dir, const std::string& name, const std::string& data, const std::string& shown) {
    std::string temp;
    Fd fd = write_temp(dir, data, shown, temp);
    auto discard = [&](const std::string& what, int err) {
        unlinkat(dir, temp.c_str(), 0);
        return system_error(what + " " + shown, err);
    };
    // link(2) never replaces: it is the exclusive create that works on NFS. After a
    // lost NFS reply the retried link says EEXIST although it succeeded; the link
    // count of the temp file tells which.
    bool created = true;
    if (linkat(dir, temp.c_str(), dir, name.c_str(), 0) != 0) {
        int err = errno;
        struct stat st;
        if (err == EEXIST && fstat(fd.get(), &st) == 0 && st.st_nlink == 2) created = true;
        else if (err == EEXIST) created = false;
        else throw discard("cannot link", err);
    }
    fd = Fd();  // closed before the unlink, so NFS removes it instead of renaming it to .nfsXXXX
    unlinkat(dir, temp.c_str(), 0);
    if (created) fsync_dir(dir, shown);
    return created;
}

void remove_file(int dir, const std::string& name, const std::string& shown) {
    if (unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT)
        throw system_error("cannot remove " + shown, errno);
    fsync_dir(dir, shown);
}

void remove_tree(int dir, const std::string& name, const std::string& shown) {
    if (unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) return;
    const int top_err = errno;
    if (top_err != EISDIR && top_err != EPERM) throw system_error("cannot remove " + shown, top_err);
    Fd top = open_for_removal(dir, name.c_str(), top_err, shown);
    if (!top) return;
    // Depth-first without recursion and without an fd per level (a user's deep tree
    // must not exhaust root's descriptors): the way down is kept as names and the
    // (device, inode) of each parent; the way up is "..", which must be the parent
    // recorded, else a directory was moved out from under us and going on could
    // remove outside the tree.
    std::vector<std::string> names{name};          // DIR/names[0]/names[1]/... is the current directory
    std::vector<DirId> parents{dir_id(dir, shown)};  // parents[i] holds names[i]
    std::string current = shown;                     // the current directory in messages
    auto where = [&](const char* entry) { return current + "/" + entry; };
    Dir cur = dir_stream(std::move(top), shown);
    int not_empty_retries = 0;  // bounds what a writer adding entries meanwhile can make us do
    while (true) {
        // Unlink what is not a directory; descend into the first directory.
        Fd child;
        while (struct dirent* e = readdir(cur.get())) {
            if (is_dot_or_dotdot(e->d_name)) continue;
            if (unlinkat(dirfd(cur.get()), e->d_name, 0) == 0 || errno == ENOENT) continue;
            const int err = errno;
            if (err != EISDIR && err != EPERM) throw system_error("cannot remove " + where(e->d_name), err);
            child = open_for_removal(dirfd(cur.get()), e->d_name, err, where(e->d_name));
            if (!child) continue;
            parents.push_back(dir_id(dirfd(cur.get()), current));
            names.emplace_back(e->d_name);
            current += "/" + names.back();
            break;
        }
        if (child) {
            cur = dir_stream(std::move(child), current);
            continue;
        }
        // Empty (as far as this pass saw): go up and remove it.
        Fd up;
        int parent = dir;
        if (names.size() > 1) {
            up = Fd(openat(dirfd(cur.get()), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!up) throw system_error("cannot open the parent of " + current, errno);
            if (!(dir_id(up.get(), current) == parents.back()))
                throw untrusted(current, "it was moved while being removed");
            parent = up.get();
        }
        if (unlinkat(parent, names.back().c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
            // Entries added meanwhile, or skipped by a readdir racing our unlinks (NFS).
            const int err = errno;
            if ((err != ENOTEMPTY && err != EEXIST) || ++not_empty_retries > 1000)
                throw system_error("cannot remove " + current, err);
            rewinddir(cur.get());
            continue;
        }
        if (names.size() == 1) return;
        current.resize(current.size() - names.back().size() - 1);
        names.pop_back();
        parents.pop_back();
        cur = dir_stream(std::move(up), current);
    }
}

void empty_dir(int dir, const std::string& shown) {
    Fd copy(openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!copy) throw system_error("cannot open " + shown, errno);
    Dir d = dir_stream(std::move(copy), shown);
    // One pass: an entry a concurrent writer adds meanwhile is left for the next call.
    while (struct dirent* e = readdir(d.get()))
        if (!is_dot_or_dotdot(e->d_name)) remove_tree(dirfd(d.get()), e->d_name, shown + "/" + e->d_name);
}

bool move_entry(int from_dir, const std::string& from, int to_dir, const std::string& to,
                const std::string& shown) {
    if (renameat(from_dir, from.c_str(), to_dir, to.c_str()) != 0) {
        if (errno == ENOENT) return false;
        throw system_error("cannot move " + shown, errno);
    }
    fsync_dir(from_dir, shown);
    fsync_dir(to_dir, shown);
    return true;
}

std::size_t remove_stale_temps(int dir, std::int64_t stale_before, const std::string& shown) {
    Fd copy(openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!copy) throw system_error("cannot open " + shown, errno);
    Dir d = dir_stream(std::move(copy), shown);
    std::size_t removed = 0;
    const std::size_t prefix_len = sizeof temp_prefix - 1;
    while (struct dirent* e = readdir(d.get())) {
        if (std::strncmp(e->d_name, temp_prefix, prefix_len) != 0) continue;
        struct stat st;
        if (fstatat(dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;
            throw system_error("cannot stat " + shown + "/" + e->d_name, errno);
        }
        // A directory was not made by create_file: not ours to remove.
        if (S_ISDIR(st.st_mode) || st.st_mtime >= stale_before) continue;
        if (unlinkat(dirfd(d.get()), e->d_name, 0) == 0) ++removed;
        else if (errno != ENOENT) throw system_error("cannot remove " + shown + "/" + e->d_name, errno);
    }
    return removed;
}

std::vector<std::string> list_dir(int dir) {
    // A description of its own: another thread may be listing DIR at the same time.
    const Fd copy(openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!copy) throw system_error("cannot open directory", errno);
    return list_opened_dir(copy.get());
}

std::vector<std::string> list_opened_dir(int dir) {
    // getdents64 itself: readdir's fdopendir would fstat the directory once more,
    // a round trip on NFS for each checkpoint a listing reads.
    std::vector<std::string> names;
    alignas(struct dirent64) char buf[32768];
    while (true) {
        const long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
        if (n < 0) throw system_error("cannot read directory", errno);
        if (n == 0) return names;
        for (long at = 0; at < n;) {
            const auto* e = reinterpret_cast<const struct dirent64*>(buf + at);
            if (e->d_name[0] != '.') names.emplace_back(e->d_name);
            at += e->d_reclen;
        }
    }
}

std::string read_script_file(const std::string& script, std::size_t max_bytes, const std::string& what) {
    const auto refuse = [&](const std::string& why) {
        return Error(ErrorKind::Usage, what + ": cannot read script " + quoted_text(script) + ": " + why);
    };
    Fd fd(open(script.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) throw refuse(std::strerror(errno));
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw refuse(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw refuse("not a regular file");
    std::string data;
    char buf[65536];
    for (;;) {
        const ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw refuse(std::strerror(errno));
        if (n == 0) return data;
        data.append(buf, static_cast<std::size_t>(n));
        if (data.size() > max_bytes)  // read, not stat: the file may grow
            throw Error(ErrorKind::Usage, what + ": script " + quoted_text(script) + " is larger than " +
                                              std::to_string(max_bytes >> 20) + " MiB (Slurm's default max_script_size)");
    }
}

}  // namespace hawf
