// fsutil.hpp: removing trees a user controls (deep, with links, changing under us),
// and the leftovers of interrupted writers.
//
// This test program interposes openat(2) (below) to act at an exact moment of
// remove_tree, so _FORTIFY_SOURCE's inline openat must not be defined here.
#undef _FORTIFY_SOURCE
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <ctime>
#include <functional>

#include <gtest/gtest.h>

#include "error.hpp"
#include "fsutil.hpp"
#include "helpers.hpp"

namespace {
// Called before every openat of this program (hawfcore's included) while set.
std::function<void(int dir, const char* path)> before_openat;
}  // namespace

extern "C" int openat(int dir, const char* path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (before_openat) before_openat(dir, path);
    return static_cast<int>(syscall(SYS_openat, dir, path, flags, mode));
}

namespace hawf {
namespace {

using K = ErrorKind;
using test::TempDir;
using test::write_text;

bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

// Lowers the soft limit on open descriptors for the scope.
class FdLimit {
public:
    explicit FdLimit(rlim_t soft) {
        getrlimit(RLIMIT_NOFILE, &saved_);
        struct rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        ok_ = setrlimit(RLIMIT_NOFILE, &lowered) == 0;
    }
    ~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }
    bool ok() const { return ok_; }

private:
    struct rlimit saved_ {};
    bool ok_ = false;
};

class RemoveTest : public ::testing::Test {
protected:
    void SetUp() override {
        fd_ = Fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
        ASSERT_TRUE(fd_);
    }
    void TearDown() override { before_openat = nullptr; }
    std::string at(const std::string& name) const { return dir_ / name; }

    TempDir dir_{0755};
    Fd fd_;
};

TEST_F(RemoveTest, RemovesATreeDeeperThanTheDescriptorLimit) {
    // Built through descriptors: the path is far longer than PATH_MAX.
    ASSERT_EQ(mkdir(at("outside").c_str(), 0755), 0);
    write_text(at("outside/precious"), "keep");
    ASSERT_EQ(mkdir(at("tree").c_str(), 0755), 0);
    Fd cur(open(at("tree").c_str(), O_RDONLY | O_DIRECTORY));
    for (int depth = 0; depth < 5000; ++depth) {
        ASSERT_EQ(mkdirat(cur.get(), "d", 0755), 0) << depth;
        if (depth % 100 == 0) {
            Fd file(openat(cur.get(), "file", O_WRONLY | O_CREAT | O_EXCL, 0644));
            ASSERT_TRUE(file);
        }
        if (depth == 2500) {
            ASSERT_EQ(symlinkat(at("outside").c_str(), cur.get(), "to-dir"), 0);
            ASSERT_EQ(symlinkat(at("outside/precious").c_str(), cur.get(), "to-file"), 0);
        }
        cur = Fd(openat(cur.get(), "d", O_RDONLY | O_DIRECTORY));
        ASSERT_TRUE(cur) << depth;
    }
    cur = Fd();
    {
        FdLimit limit(64);
        ASSERT_TRUE(limit.ok());
        EXPECT_NO_THROW(remove_tree(fd_.get(), "tree", at("tree")));
    }
    EXPECT_FALSE(exists(at("tree")));
    EXPECT_EQ(test::read_text(at("outside/precious")), "keep");
}

TEST_F(RemoveTest, RemovesLinksNotWhatTheyPointTo) {
    ASSERT_EQ(mkdir(at("outside").c_str(), 0755), 0);
    write_text(at("outside/precious"), "keep");
    ASSERT_EQ(mkdir(at("tree").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(at("tree/sub").c_str(), 0755), 0);
    ASSERT_EQ(symlink(at("outside").c_str(), at("tree/sub/to-dir").c_str()), 0);
    ASSERT_EQ(symlink(at("outside/precious").c_str(), at("tree/to-file").c_str()), 0);
    ASSERT_EQ(mkfifo(at("tree/sub/fifo").c_str(), 0644), 0);
    remove_tree(fd_.get(), "tree", at("tree"));
    EXPECT_FALSE(exists(at("tree")));
    EXPECT_EQ(test::read_text(at("outside/precious")), "keep");
    // A link as the top is removed itself.
    ASSERT_EQ(symlink(at("outside").c_str(), at("top-link").c_str()), 0);
    remove_tree(fd_.get(), "top-link", at("top-link"));
    EXPECT_FALSE(exists(at("top-link")));
    EXPECT_TRUE(exists(at("outside/precious")));
    // Missing is fine, a plain file is removed.
    EXPECT_NO_THROW(remove_tree(fd_.get(), "missing", at("missing")));
    write_text(at("plain"), "x");
    remove_tree(fd_.get(), "plain", at("plain"));
    EXPECT_FALSE(exists(at("plain")));
}

TEST_F(RemoveTest, StopsWhenADirectoryIsMovedOutOfTheTree) {
    // The tree's owner moves tree/a/b elsewhere while it is being removed: going up
    // from it must not land in the new parent and remove what is there.
    ASSERT_EQ(mkdir(at("outside").c_str(), 0755), 0);
    write_text(at("outside/precious"), "keep");
    std::string deep = at("tree");
    for (const char* part : {"", "/a", "/b", "/c", "/d"}) {
        deep += part;
        ASSERT_EQ(mkdir(deep.c_str(), 0755), 0);
    }
    write_text(deep + "/file", "x");
    bool moved = false;
    before_openat = [&](int, const char* path) {
        if (moved || std::string(path) != "..") return;
        moved = true;
        ASSERT_EQ(rename(at("tree/a/b").c_str(), at("outside/moved").c_str()), 0);
    };
    EXPECT_HAWF_ERROR(remove_tree(fd_.get(), "tree", at("tree")), K::Untrusted, "moved while being removed");
    before_openat = nullptr;
    EXPECT_TRUE(moved);
    EXPECT_EQ(test::read_text(at("outside/precious")), "keep");
    EXPECT_TRUE(exists(at("outside/moved")));
    EXPECT_TRUE(exists(at("tree/a")));
}

TEST_F(RemoveTest, EmptyDirKeepsTheDirectory) {
    ASSERT_EQ(mkdir(at("trash").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(at("trash/x").c_str(), 0755), 0);
    write_text(at("trash/x/f"), "");
    write_text(at("trash/.hidden"), "");
    ASSERT_EQ(symlink("/", at("trash/root-link").c_str()), 0);
    Fd trash(open(at("trash").c_str(), O_RDONLY | O_DIRECTORY));
    empty_dir(trash.get(), at("trash"));
    EXPECT_TRUE(exists(at("trash")));
    EXPECT_FALSE(exists(at("trash/x")));
    EXPECT_FALSE(exists(at("trash/.hidden")));
    EXPECT_FALSE(exists(at("trash/root-link")));
}

TEST_F(RemoveTest, MoveEntry) {
    ASSERT_EQ(mkdir(at("from").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(at("to").c_str(), 0755), 0);
    write_text(at("from/x"), "data");
    Fd from(open(at("from").c_str(), O_RDONLY | O_DIRECTORY));
    Fd to(open(at("to").c_str(), O_RDONLY | O_DIRECTORY));
    EXPECT_TRUE(move_entry(from.get(), "x", to.get(), "y", at("from/x")));
    EXPECT_EQ(test::read_text(at("to/y")), "data");
    EXPECT_FALSE(move_entry(from.get(), "x", to.get(), "z", at("from/x")));
    EXPECT_NE(unique_name("p."), unique_name("p."));
    EXPECT_EQ(unique_name("p.").rfind("p.", 0), 0u);
}

TEST_F(RemoveTest, RemoveStaleTempsKeepsYoungOnesAndRecords) {
    const std::time_t now = std::time(nullptr);
    auto age = [&](const std::string& name, std::time_t mtime) {
        struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
        ASSERT_EQ(utimensat(AT_FDCWD, at(name).c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << name;
    };
    write_text(at(".tmp.node1.10.0"), "{\"half\":");
    age(".tmp.node1.10.0", now - 7200);
    write_text(at(".tmp.node1.11.0"), "in progress");  // a writer still running
    write_text(at("00000001"), "record");
    age("00000001", now - 7200);
    ASSERT_EQ(mkdir(at(".tmp.dir").c_str(), 0755), 0);  // not create_file's
    age(".tmp.dir", now - 7200);
    EXPECT_EQ(remove_stale_temps(fd_.get(), now - 3600, dir_.path()), 1u);
    EXPECT_FALSE(exists(at(".tmp.node1.10.0")));
    EXPECT_TRUE(exists(at(".tmp.node1.11.0")));
    EXPECT_TRUE(exists(at("00000001")));
    EXPECT_TRUE(exists(at(".tmp.dir")));
}

TEST_F(RemoveTest, SymlinksAreNamedAsSuch) {
    ASSERT_EQ(mkdir(at("real").c_str(), 0755), 0);
    ASSERT_EQ(symlink("real", at("dir-link").c_str()), 0);
    write_text(at("file"), "x");
    ASSERT_EQ(symlink("file", at("file-link").c_str()), 0);
    ASSERT_EQ(symlink("missing", at("dangling").c_str()), 0);
    const Trust mine{geteuid()};
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "dir-link", mine, at("dir-link")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(make_dir(fd_.get(), "dir-link", mine, at("dir-link")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "file-link", mine, at("file-link")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "dangling", mine, at("dangling")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "file-link", mine, at("file-link")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "dir-link", mine, at("dir-link")), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "file", mine, at("file")), K::Untrusted, "is not a directory");
}

// A file larger than the bound: read_file refuses it, read_file_start gives its start.
TEST_F(RemoveTest, ReadFileStartReadsTheStartOfALargeFile) {
    write_text(at("report.md"), std::string(10, 'a') + std::string(5, 'b'), 0644);
    const Trust mine{geteuid()};
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "report.md", mine, at("report.md"), 10), K::Untrusted, "is too large");
    std::size_t size = 0;
    EXPECT_EQ(read_file_start(fd_.get(), "report.md", mine, at("report.md"), 10, &size), std::string(10, 'a'));
    EXPECT_EQ(size, 15u);
    EXPECT_EQ(read_file_start(fd_.get(), "report.md", mine, at("report.md"), 100, &size),
              std::string(10, 'a') + std::string(5, 'b'));
    EXPECT_EQ(read_file_start(fd_.get(), "none", mine, at("none"), 10, &size), std::nullopt);
    ASSERT_EQ(symlink("report.md", at("link").c_str()), 0);
    EXPECT_HAWF_ERROR(read_file_start(fd_.get(), "link", mine, at("link"), 10, &size), K::Untrusted,
                      "is a symbolic link");
}

TEST_F(RemoveTest, CreatedEntriesArePrivate) {
    const Trust mine{geteuid()};
    const mode_t saved = umask(0);  // the modes must not depend on a lax umask
    Fd d = make_dir(fd_.get(), "d", mine, at("d"));
    const bool created = create_file(d.get(), "rec", "x", at("d/rec"));
    umask(saved);
    ASSERT_TRUE(created);
    struct stat st;
    ASSERT_EQ(stat(at("d").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_EQ(stat(at("d/rec").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

}  // namespace
}  // namespace hawf
