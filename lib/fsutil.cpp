#include "fsutil.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "error.hpp"

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

// open(2) that reports "symlink" clearly: O_NOFOLLOW gives ELOOP on a final symlink.
Fd open_checked(int dir, const std::string& name, int flags, const std::string& shown) {
    int fd = openat(dir, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return Fd();
        if (errno == ELOOP) throw untrusted(shown, "is a symbolic link");
        if (errno == ENOTDIR) throw untrusted(shown, "is not a directory");
        throw system_error("cannot open " + shown, errno);
    }
    return Fd(fd);
}

void fsync_dir(int dir, const std::string& shown) {
    // EINVAL: some filesystems cannot fsync a directory; their metadata is synchronous.
    if (fsync(dir) != 0 && errno != EINVAL) throw system_error("cannot fsync " + shown, errno);
}

std::string temp_name() {
    static std::atomic<unsigned> counter{0};
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    return ".tmp." + std::string(host) + "." + std::to_string(getpid()) + "." + std::to_string(counter++);
}

}  // namespace

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

void check_dir(int fd, const Trust& trust, const std::string& shown) {
    struct stat st;
    if (fstat(fd, &st) != 0) throw system_error("cannot stat " + shown, errno);
    if (!S_ISDIR(st.st_mode)) throw untrusted(shown, "is not a directory");
    check_stat(st, trust, shown);
}

Fd open_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown) {
    Fd fd = open_checked(dir, name, O_RDONLY | O_DIRECTORY, shown);
    if (fd) check_dir(fd.get(), trust, shown);
    return fd;
}

Fd make_dir(int dir, const std::string& name, const Trust& trust, const std::string& shown) {
    if (mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST)
        throw system_error("cannot create " + shown, errno);
    Fd fd = open_dir(dir, name, trust, shown);
    if (!fd) throw system_error("cannot open " + shown, ENOENT);  // removed under us
    return fd;
}

std::optional<std::string> read_file(int dir, const std::string& name, const Trust& trust,
                                     const std::string& shown, std::size_t max_bytes) {
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
    if (static_cast<std::size_t>(st.st_size) > max_bytes) throw untrusted(shown, "is too large");
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
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

bool create_file(int dir, const std::string& name, const std::string& data, const std::string& shown) {
    const std::string temp = temp_name();
    Fd fd(openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) throw system_error("cannot create a temporary file beside " + shown, errno);
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
    if (errno != EISDIR && errno != EPERM) throw system_error("cannot remove " + shown, errno);
    int fd = openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw system_error("cannot open " + shown, errno);
    Fd sub(fd);
    DIR* d = fdopendir(dup(sub.get()));
    if (!d) throw system_error("cannot read " + shown, errno);
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    closedir(d);
    for (const auto& n : names) remove_tree(sub.get(), n, shown + "/" + n);
    if (unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        throw system_error("cannot remove " + shown, errno);
}

std::vector<std::string> list_dir(int dir) {
    std::vector<std::string> names;
    int copy = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) throw system_error("cannot open directory", errno);
    DIR* d = fdopendir(copy);
    if (!d) {
        int err = errno;
        close(copy);
        throw system_error("cannot read directory", err);
    }
    while (struct dirent* e = readdir(d))
        if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    closedir(d);
    return names;
}

}  // namespace hawf
