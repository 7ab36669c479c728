// fsutil.hpp and spool.hpp: the trusted file primitives and the spool layout.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>

#include <gtest/gtest.h>

#include "error.hpp"
#include "fsutil.hpp"
#include "helpers.hpp"
#include "spool.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::TempDir;
using test::write_text;

constexpr uid_t other_uid = 65534;

// Every name in PATH, including the dot-files list_dir hides.
std::vector<std::string> raw_entries(const std::string& path) {
    std::vector<std::string> names;
    DIR* d = opendir(path.c_str());
    if (!d) return names;
    while (struct dirent* e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

class FsTest : public ::testing::Test {
protected:
    void SetUp() override {
        fd_ = Fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
        ASSERT_TRUE(fd_);
    }
    Trust mine() const { return Trust{geteuid()}; }
    std::string at(const std::string& name) const { return dir_ / name; }

    TempDir dir_{0755};
    Fd fd_;
};

// ---------------------------------------------------------------- create_file

TEST_F(FsTest, CreateFileIsExclusive) {
    EXPECT_TRUE(create_file(fd_.get(), "rec", "first\n", at("rec")));
    EXPECT_FALSE(create_file(fd_.get(), "rec", "second\n", at("rec")));
    EXPECT_EQ(test::read_text(at("rec")), "first\n");
    auto text = read_file(fd_.get(), "rec", mine(), at("rec"));
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "first\n");
    struct stat st;
    ASSERT_EQ(stat(at("rec").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_EQ(st.st_mode & 022, 0u);
}

TEST_F(FsTest, CreateFileLeavesNoTempFiles) {
    ASSERT_TRUE(create_file(fd_.get(), "a", "x", at("a")));
    ASSERT_FALSE(create_file(fd_.get(), "a", "y", at("a")));
    ASSERT_TRUE(create_file(fd_.get(), "b", "", at("b")));
    EXPECT_EQ(raw_entries(dir_.path()), (std::vector<std::string>{"a", "b"}));
}

TEST_F(FsTest, CreateFileDoesNotFollowASymlinkedName) {
    write_text(at("target"), "precious", 0644);
    ASSERT_EQ(symlink(at("target").c_str(), at("link").c_str()), 0);
    EXPECT_FALSE(create_file(fd_.get(), "link", "planted", at("link")));
    EXPECT_EQ(test::read_text(at("target")), "precious");
}

TEST_F(FsTest, CreateFileKeepsBinaryAndLargeData) {
    std::string data(300000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
    ASSERT_TRUE(create_file(fd_.get(), "big", data, at("big")));
    EXPECT_EQ(*read_file(fd_.get(), "big", mine(), at("big")), data);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "big", mine(), at("big"), 1000), K::Untrusted, "too large");
}

// ---------------------------------------------------------------- read_file

TEST_F(FsTest, ReadFileMissingIsNullopt) { EXPECT_FALSE(read_file(fd_.get(), "nope", mine(), at("nope"))); }

TEST_F(FsTest, ReadFileRefusesSymlink) {
    ASSERT_TRUE(create_file(fd_.get(), "real", "data", at("real")));
    ASSERT_EQ(symlink("real", at("link").c_str()), 0);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "link", mine(), at("link")), K::Untrusted, "symbolic link");
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "link", mine(), at("link")), K::Untrusted, at("link"));
}

TEST_F(FsTest, ReadFileRefusesFifoWithoutHanging) {
    ASSERT_EQ(mkfifo(at("fifo").c_str(), 0644), 0);
    auto reader = std::async(std::launch::async, [&] {
        try {
            read_file(fd_.get(), "fifo", mine(), at("fifo"));
            return std::string("accepted");
        } catch (const Error& e) {
            return std::string(e.kind() == K::Untrusted ? "untrusted: " : "other: ") + e.what();
        }
    });
    if (reader.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        // Unblock the hung reader so the test can end, then fail.
        int w = open(at("fifo").c_str(), O_WRONLY | O_NONBLOCK);
        reader.wait();
        if (w >= 0) close(w);
        FAIL() << "read_file hung on a FIFO";
    }
    const std::string result = reader.get();
    EXPECT_EQ(result.rfind("untrusted: ", 0), 0u) << result;
    EXPECT_NE(result.find("not a regular file"), std::string::npos) << result;
}

TEST_F(FsTest, ReadFileRefusesDirectory) {
    ASSERT_EQ(mkdir(at("d").c_str(), 0755), 0);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "d", mine(), at("d")), K::Untrusted, "not a regular file");
}

TEST_F(FsTest, ReadFileAcceptsTheWritersTempLink) {
    // create_file links its temp file to the record, then unlinks the temp: a reader
    // in between (or after a crash in between) sees two links.
    ASSERT_TRUE(create_file(fd_.get(), "rec", "data", at("rec")));
    ASSERT_EQ(link(at("rec").c_str(), at(".tmp.node1.123.0").c_str()), 0);
    EXPECT_EQ(read_file(fd_.get(), "rec", mine(), at("rec")).value_or(""), "data");
}

TEST_F(FsTest, ReadFileRefusesGroupOrWorldWritable) {
    ASSERT_TRUE(create_file(fd_.get(), "g", "data", at("g")));
    ASSERT_TRUE(create_file(fd_.get(), "o", "data", at("o")));
    ASSERT_TRUE(create_file(fd_.get(), "ok", "data", at("ok")));
    chmod(at("g").c_str(), 0664);
    chmod(at("o").c_str(), 0646);
    chmod(at("ok").c_str(), 0444);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "g", mine(), at("g")), K::Untrusted, "writable by group or others");
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "o", mine(), at("o")), K::Untrusted, "writable by group or others");
    EXPECT_EQ(*read_file(fd_.get(), "ok", mine(), at("ok")), "data");
    // Sticky world-writable is allowed for the spool root only, never for a file.
    chmod(at("o").c_str(), 01646);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "o", mine(), at("o")), K::Untrusted, "writable by group or others");
}

TEST_F(FsTest, ReadFileRefusesAnotherOwner) {
    if (!test::is_root()) GTEST_SKIP() << "needs root to chown";
    ASSERT_TRUE(create_file(fd_.get(), "rec", "data", at("rec")));
    ASSERT_EQ(chown(at("rec").c_str(), other_uid, other_uid), 0);
    EXPECT_HAWF_ERROR(read_file(fd_.get(), "rec", mine(), at("rec")), K::Untrusted, "owned by uid 65534");
    EXPECT_EQ(*read_file(fd_.get(), "rec", Trust{other_uid}, at("rec")), "data");
}

// ---------------------------------------------------------------- directories

TEST_F(FsTest, OpenDirRefusesSymlinkedDirectory) {
    ASSERT_EQ(mkdir(at("real").c_str(), 0755), 0);
    ASSERT_EQ(symlink("real", at("link").c_str()), 0);
    EXPECT_TRUE(open_dir(fd_.get(), "real", mine(), at("real")));
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "link", mine(), at("link")), K::Untrusted, at("link"));
    EXPECT_HAWF_ERROR(make_dir(fd_.get(), "link", mine(), at("link")), K::Untrusted, at("link"));
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "link", mine(), at("link")), K::Untrusted, "is a symbolic link");
}

TEST_F(FsTest, OpenDirChecksModeAndOwner) {
    EXPECT_FALSE(open_dir(fd_.get(), "missing", mine(), at("missing")));
    ASSERT_EQ(mkdir(at("gw").c_str(), 0755), 0);
    chmod(at("gw").c_str(), 0775);
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "gw", mine(), at("gw")), K::Untrusted, "writable by group or others");
    ASSERT_EQ(mkdir(at("sticky").c_str(), 0755), 0);
    chmod(at("sticky").c_str(), 01777);
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "sticky", mine(), at("sticky")), K::Untrusted, "writable");
    EXPECT_TRUE(open_dir(fd_.get(), "sticky", Trust{geteuid(), true}, at("sticky")));
    write_text(at("file"), "x");
    EXPECT_HAWF_ERROR(open_dir(fd_.get(), "file", mine(), at("file")), K::Untrusted, "not a directory");
    if (test::is_root()) {
        ASSERT_EQ(mkdir(at("theirs").c_str(), 0755), 0);
        ASSERT_EQ(chown(at("theirs").c_str(), other_uid, other_uid), 0);
        EXPECT_HAWF_ERROR(open_dir(fd_.get(), "theirs", mine(), at("theirs")), K::Untrusted, "owned by uid 65534");
        EXPECT_HAWF_ERROR(make_dir(fd_.get(), "theirs", mine(), at("theirs")), K::Untrusted, "owned by uid 65534");
    }
}

TEST_F(FsTest, MakeDirCreatesSafeDirectory) {
    Fd d = make_dir(fd_.get(), "new", mine(), at("new"));
    ASSERT_TRUE(d);
    struct stat st;
    ASSERT_EQ(stat(at("new").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 022, 0u);
    EXPECT_TRUE(make_dir(fd_.get(), "new", mine(), at("new")));  // existing is fine
}

TEST_F(FsTest, ListDirHidesDotFilesAndRemoveFileToleratesMissing) {
    write_text(at(".tmp.x"), "");
    write_text(at("a"), "");
    write_text(at("b"), "");
    auto names = list_dir(fd_.get());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
    remove_file(fd_.get(), "a", at("a"));
    EXPECT_NO_THROW(remove_file(fd_.get(), "a", at("a")));
    EXPECT_EQ(list_dir(fd_.get()), (std::vector<std::string>{"b"}));
}

TEST_F(FsTest, ListOpenedDirReadsFromTheStart) {
    write_text(at(".tmp.x"), "");
    write_text(at("a"), "");
    const Fd dir(openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY));
    EXPECT_EQ(list_opened_dir(dir.get()), (std::vector<std::string>{"a"}));
}

// ---------------------------------------------------------------- spool

CheckpointSpec spec_for(const std::string& id, uid_t owner) {
    CheckpointSpec spec;
    spec.id = parse_checkpoint_id(id);
    spec.owner_uid = owner;
    spec.owner = "tester";
    spec.scope = Scope::Step;
    spec.options = {"approve", "reject"};
    return spec;
}

Event opened(const CheckpointSpec& spec) {
    Event ev;
    ev.seq = 1;
    ev.type = EventType::Opened;
    ev.at = 1790000000;
    ev.by = "tester";
    ev.by_uid = spec.owner_uid;
    ev.via = Via::Plugin;
    ev.host = "node1";
    ev.spec = spec;
    return ev;
}

Event next_event(std::uint64_t seq, EventType type) {
    Event ev;
    ev.seq = seq;
    ev.type = type;
    ev.at = 1790000000 + static_cast<std::int64_t>(seq);
    ev.by = "tester";
    ev.via = Via::Cli;
    ev.host = "node1";
    if (type == EventType::Decided) ev.decision = Decision{"approve", {}, ""};
    return ev;
}

class SpoolTest : public ::testing::Test {
protected:
    SpoolTest() : spool_(root_.path()) {}
    std::string log_path(const CheckpointId& id) const {
        return root_ / (std::to_string(me_) + "/ckpt/" + id.job_id + "/" + id.name + "/log");
    }
    TempDir root_{0755};
    uid_t me_ = geteuid();
    Spool spool_;
};

TEST_F(SpoolTest, OpenRootAcceptsOwnAndStickyRoot) {
    EXPECT_TRUE(spool_.open_root());
    chmod(root_.path().c_str(), 01777);
    EXPECT_TRUE(spool_.open_root());
}

TEST_F(SpoolTest, OpenRootRefusesWorldWritableWithoutSticky) {
    chmod(root_.path().c_str(), 0777);
    EXPECT_HAWF_ERROR(spool_.open_root(), K::Untrusted, root_.path());
    chmod(root_.path().c_str(), 0775);
    EXPECT_HAWF_ERROR(spool_.open_root(), K::Untrusted, "writable by group or others");
}

TEST_F(SpoolTest, OpenRootRefusesMissing) {
    Spool missing(root_ / "nope");
    EXPECT_HAWF_ERROR(missing.open_root(), K::NotFound, root_ / "nope");
}

TEST_F(SpoolTest, OpenRootRefusesAnotherUsersRoot) {
    if (!test::is_root()) GTEST_SKIP() << "needs root to chown";
    ASSERT_EQ(chown(root_.path().c_str(), other_uid, other_uid), 0);
    EXPECT_HAWF_ERROR(spool_.open_root(), K::Untrusted, "owned by uid 65534");
}

TEST_F(SpoolTest, AppendAndLoad) {
    const CheckpointSpec spec = spec_for("4242_7:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    EXPECT_FALSE(spool_.append(me_, spec.id, opened(spec)));  // seq 1 taken
    ASSERT_TRUE(spool_.append(me_, spec.id, next_event(2, EventType::Pending)));
    Checkpoint c = spool_.load(me_, spec.id);
    EXPECT_EQ(c.state, State::Pending);
    EXPECT_EQ(c.spec.id, spec.id);
    EXPECT_EQ(c.history.size(), 2u);
    EXPECT_TRUE(spool_.exists(me_, spec.id));
    EXPECT_EQ(raw_entries(log_path(spec.id)), (std::vector<std::string>{"00000001", "00000002"}));
}

TEST_F(SpoolTest, LoadMissingIsNotFound) {
    const CheckpointId id = parse_checkpoint_id("1:nope");
    EXPECT_HAWF_ERROR(spool_.load(me_, id), K::NotFound, "1:nope");
    EXPECT_FALSE(spool_.exists(me_, id));
    EXPECT_HAWF_ERROR(spool_.append(me_, id, next_event(2, EventType::Pending)), K::NotFound, "1:nope");
}

TEST_F(SpoolTest, LoadRefusesRecordDescribingAnotherCheckpoint) {
    const CheckpointSpec real = spec_for("100:eval", me_);
    const CheckpointSpec other = spec_for("100:other", me_);
    // A record of 100:eval planted as the history of 100:other.
    ASSERT_TRUE(spool_.append(me_, other.id, opened(real)));
    EXPECT_HAWF_ERROR(spool_.load(me_, other.id), K::Untrusted, "another checkpoint");
    // The same for a record naming another owner.
    const CheckpointSpec foreign = spec_for("100:mine", me_ + 1);
    ASSERT_TRUE(spool_.append(me_, foreign.id, opened(foreign)));
    EXPECT_HAWF_ERROR(spool_.load(me_, foreign.id), K::Untrusted, "another checkpoint");
}

TEST_F(SpoolTest, LoadRefusesTamperedLog) {
    const CheckpointSpec spec = spec_for("200:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    const std::string log = log_path(spec.id);
    // A record whose seq does not match its file name.
    write_text(log + "/00000002", to_json(next_event(3, EventType::Pending)).dump(), 0644);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "seq does not match");
    // Not JSON.
    write_text(log + "/00000002", "{garbage", 0644);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "not JSON");
    // Nested deeper than any record: refused before anything copies or prints it
    // recursively (100,000 levels would overflow the reader's stack).
    nlohmann::json deep = to_json(next_event(2, EventType::Decided));
    deep["decision"] = "@";
    std::string text = deep.dump();
    const std::size_t levels = 100000;
    text.replace(text.find("\"@\""), 3, std::string(levels, '[') + std::string(levels, ']'));
    write_text(log + "/00000002", text, 0644);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "not JSON nested at most 32 deep");
    EXPECT_TRUE(parse_json(std::string(max_json_depth, '[') + std::string(max_json_depth, ']')).is_array());
    EXPECT_TRUE(parse_json("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]").is_array());  // brackets in strings
    // Group-writable record.
    write_text(log + "/00000002", to_json(next_event(2, EventType::Pending)).dump(), 0664);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "writable by group or others");
    // A symlink planted as a record.
    unlink((log + "/00000002").c_str());
    write_text(root_ / "elsewhere", to_json(next_event(2, EventType::Pending)).dump(), 0644);
    ASSERT_EQ(symlink((root_ / "elsewhere").c_str(), (log + "/00000002").c_str()), 0);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "symbolic link");
    // A gap.
    unlink((log + "/00000002").c_str());
    write_text(log + "/00000003", to_json(next_event(3, EventType::Pending)).dump(), 0644);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "out of sequence");
    // Stray names that are not records are ignored.
    unlink((log + "/00000003").c_str());
    write_text(log + "/README", "hello", 0644);
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Running);
}

TEST_F(SpoolTest, LoadRefusesSymlinkedCheckpointDirectory) {
    const CheckpointSpec spec = spec_for("300:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    const std::string jobdir = root_ / (std::to_string(me_) + "/ckpt/300");
    ASSERT_EQ(symlink(jobdir.c_str(), (root_ / (std::to_string(me_) + "/ckpt/301")).c_str()), 0);
    EXPECT_HAWF_ERROR(spool_.load(me_, parse_checkpoint_id("301:eval")), K::Untrusted, "301");
}

// A listing's reader gives what load gives, with the same checks, and finds a tree
// made after its first load.
TEST_F(SpoolTest, ReaderLoadsAsLoadDoes) {
    Spool::Reader reader = spool_.reader(me_);
    const CheckpointSpec a = spec_for("310:eval", me_), b = spec_for("311:eval", me_);
    EXPECT_HAWF_ERROR(reader.load(a.id), K::NotFound, "310:eval");
    ASSERT_TRUE(spool_.append(me_, a.id, opened(a)));
    ASSERT_TRUE(spool_.append(me_, b.id, opened(b)));
    ASSERT_TRUE(spool_.append(me_, b.id, next_event(2, EventType::Pending)));
    for (const CheckpointSpec* spec : {&a, &b, &a}) {
        const Checkpoint c = reader.load(spec->id);
        EXPECT_EQ(c.spec.id, spec->id);
        EXPECT_EQ(c.history.size(), spool_.load(me_, spec->id).history.size());
    }
    EXPECT_HAWF_ERROR(reader.load(parse_checkpoint_id("312:eval")), K::NotFound, "312:eval");
    const std::string ckpt = root_ / (std::to_string(me_) + "/ckpt/");
    ASSERT_EQ(symlink((ckpt + "310").c_str(), (ckpt + "313").c_str()), 0);
    EXPECT_HAWF_ERROR(reader.load(parse_checkpoint_id("313:eval")), K::Untrusted, "is a symbolic link");
    ASSERT_EQ(chmod(log_path(b.id).c_str(), 0777), 0);
    EXPECT_HAWF_ERROR(reader.load(b.id), K::Untrusted, "writable by group or others");
}

TEST_F(SpoolTest, PendingIndexAddRemove) {
    const CheckpointId a = parse_checkpoint_id("10:eval");
    const CheckpointId b = parse_checkpoint_id("11_2:review");
    EXPECT_TRUE(spool_.pending_ids(me_).empty());
    spool_.set_pending(me_, a, false);  // nothing there yet: fine
    spool_.set_pending(me_, a, true);
    spool_.set_pending(me_, b, true);
    spool_.set_pending(me_, b, true);  // twice is fine
    auto ids = spool_.pending_ids(me_);
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_NE(std::find(ids.begin(), ids.end(), a), ids.end());
    EXPECT_NE(std::find(ids.begin(), ids.end(), b), ids.end());
    spool_.set_pending(me_, a, false);
    ids = spool_.pending_ids(me_);
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0], b);
    // Stray entries in the index are ignored.
    write_text(root_ / (std::to_string(me_) + "/pending/junk"), "", 0644);
    EXPECT_EQ(spool_.pending_ids(me_).size(), 1u);
    EXPECT_TRUE(raw_entries(root_ / (std::to_string(me_) + "/pending")) ==
                (std::vector<std::string>{"11_2:review", "junk"}));
}

TEST_F(SpoolTest, AllIdsWalksTheTree) {
    EXPECT_TRUE(spool_.all_ids(me_).empty());
    for (const char* id : {"10:eval", "10:train", "12_3:eval"}) {
        const CheckpointSpec spec = spec_for(id, me_);
        ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    }
    // A stray directory name is skipped.
    ASSERT_EQ(mkdir((root_ / (std::to_string(me_) + "/ckpt/notajob")).c_str(), 0755), 0);
    auto ids = spool_.all_ids(me_);
    std::vector<std::string> texts;
    for (const auto& id : ids) texts.push_back(id.str());
    std::sort(texts.begin(), texts.end());
    EXPECT_EQ(texts, (std::vector<std::string>{"10:eval", "10:train", "12_3:eval"}));
    EXPECT_EQ(spool_.owners(), (std::vector<uid_t>{me_}));
}

TEST_F(SpoolTest, AllIdsRefusesUntrustedEntries) {
    const CheckpointSpec spec = spec_for("10:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    chmod((root_ / (std::to_string(me_) + "/ckpt/10")).c_str(), 0777);
    EXPECT_HAWF_ERROR(spool_.all_ids(me_), K::Untrusted, "writable by group or others");
}

TEST_F(SpoolTest, FilesDir) {
    const CheckpointSpec spec = spec_for("20:eval", me_);
    EXPECT_FALSE(spool_.open_files_dir(me_, spec.id));
    EXPECT_HAWF_ERROR(spool_.make_files_dir(me_, spec.id), K::NotFound, "20:eval");
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    spool_.make_files_dir(me_, spec.id);
    EXPECT_EQ(spool_.files_dir(me_, spec.id), root_ / (std::to_string(me_) + "/ckpt/20/eval/files"));
    EXPECT_TRUE(spool_.open_files_dir(me_, spec.id));
    struct stat st;
    ASSERT_EQ(stat(spool_.files_dir(me_, spec.id).c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(SpoolTest, NoTempFilesLeftInTheTree) {
    const CheckpointSpec spec = spec_for("30:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_FALSE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_TRUE(spool_.append(me_, spec.id, next_event(2, EventType::Pending)));
    spool_.set_pending(me_, spec.id, true);
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root_.path()))
        EXPECT_EQ(entry.path().filename().string().rfind(".tmp.", 0), std::string::npos) << entry.path();
}

TEST_F(SpoolTest, UserTreeOwnedBySomeoneElseIsRefused) {
    if (!test::is_root()) GTEST_SKIP() << "needs root to chown";
    const CheckpointSpec spec = spec_for("40:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_EQ(chown((root_ / (std::to_string(me_) + "/ckpt/40/eval/log/00000001")).c_str(), other_uid, other_uid),
              0);
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "owned by uid 65534");
}

// ---------------------------------------------------------------- removal and leftovers

std::string user_dir(const TempDir& root, uid_t uid, const std::string& rest = "") {
    return root / (std::to_string(uid) + (rest.empty() ? "" : "/" + rest));
}

void set_mtime(const std::string& path, std::time_t mtime) {
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

TEST_F(SpoolTest, RemoveHidesTheWholeCheckpointEvenIfDeletingFails) {
    if (!test::is_root()) GTEST_SKIP() << "needs root to act as another user";
    // The owner's files/ holds a directory its owner cannot empty: deleting stops
    // half-way, yet the checkpoint is gone at once and what is left waits in .trash.
    chmod(root_.path().c_str(), 01777);
    const CheckpointSpec spec = spec_for("50:eval", other_uid);
    const int rc = test::run_as(other_uid, other_uid, [&] {
        Spool spool(root_.path());
        if (!spool.append(other_uid, spec.id, opened(spec))) return 10;
        spool.make_files_dir(other_uid, spec.id);
        const std::string files = spool.files_dir(other_uid, spec.id);
        if (mkdir((files + "/x").c_str(), 0700) != 0 || mkdir((files + "/x/y").c_str(), 0700) != 0 ||
            chmod((files + "/x").c_str(), 0500) != 0)
            return 11;
        try {
            spool.remove(other_uid, spec.id);
            return 12;  // the locked directory was removed?
        } catch (const Error&) {
        }
        if (spool.exists(other_uid, spec.id)) return 13;
        if (!spool.all_ids(other_uid).empty()) return 14;
        return 0;
    });
    ASSERT_EQ(rc, 0);
    EXPECT_FALSE(exists(user_dir(root_, other_uid, "ckpt/50")));
    const auto left = raw_entries(user_dir(root_, other_uid, ".trash"));
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].rfind("50:eval.", 0), 0u) << left[0];
    // Once the owner unlocks it, clean finishes the job.
    ASSERT_EQ(chmod(user_dir(root_, other_uid, ".trash/" + left[0] + "/files/x").c_str(), 0700), 0);
    ASSERT_EQ(test::run_as(other_uid, other_uid, [&] {
                  Spool(root_.path()).clean(other_uid, 0, 0);
                  return 0;
              }),
              0);
    EXPECT_TRUE(raw_entries(user_dir(root_, other_uid, ".trash")).empty());
}

TEST_F(SpoolTest, RemoveDeletesEverythingAndKeepsOtherCheckpoints) {
    const CheckpointSpec spec = spec_for("51:eval", me_);
    const CheckpointSpec other = spec_for("51:other", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_TRUE(spool_.append(me_, other.id, opened(other)));
    spool_.make_files_dir(me_, spec.id);
    write_text(spool_.files_dir(me_, spec.id) + "/report.md", "hello");
    spool_.set_pending(me_, spec.id, true);
    spool_.remove(me_, spec.id);
    EXPECT_FALSE(spool_.exists(me_, spec.id));
    EXPECT_TRUE(spool_.pending_ids(me_).empty());
    EXPECT_TRUE(raw_entries(user_dir(root_, me_, ".trash")).empty());
    EXPECT_TRUE(spool_.exists(me_, other.id));
    spool_.remove(me_, other.id);
    EXPECT_FALSE(exists(user_dir(root_, me_, "ckpt/51")));  // the job's directory once empty
    EXPECT_NO_THROW(spool_.remove(me_, other.id));           // twice is fine
}

TEST_F(SpoolTest, CleanRemovesTrashAndStaleTempFilesOnly) {
    const std::time_t now = std::time(nullptr);
    const CheckpointSpec spec = spec_for("60:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_TRUE(spool_.append(me_, spec.id, next_event(2, EventType::Pending)));
    spool_.set_pending(me_, spec.id, true);
    spool_.make_files_dir(me_, spec.id);
    spool_.write_delivery(me_, spec.id, "61", "{}\n");
    const std::string ckpt = "ckpt/60/eval/";
    // What writers killed between create and unlink left, an hour or more ago...
    const std::vector<std::string> stale = {ckpt + "log/.tmp.node1.10.0", ckpt + "delivered/.tmp.node1.10.1",
                                            "pending/.tmp.node1.10.2"};
    for (const auto& rel : stale) {
        write_text(user_dir(root_, me_, rel), "half", 0600);
        set_mtime(user_dir(root_, me_, rel), now - 7200);
    }
    // ... and what is not clean's: a writer still running, the job's own files, records.
    const std::vector<std::string> kept = {ckpt + "log/.tmp.node1.11.0", ckpt + "files/.tmp.mine",
                                           ckpt + "log/00000001", ckpt + "delivered/61.json", "pending/60:eval"};
    write_text(user_dir(root_, me_, kept[0]), "in progress", 0600);
    write_text(user_dir(root_, me_, kept[1]), "the job's", 0600);
    for (const auto& rel : kept) set_mtime(user_dir(root_, me_, rel), rel == kept[0] ? now : now - 7200);
    // An interrupted removal, deep.
    std::string deep = user_dir(root_, me_, ".trash");
    for (const char* part : {"", "/60:old.node1.1.0", "/files", "/a", "/b"}) {
        deep += part;
        ASSERT_EQ(mkdir(deep.c_str(), 0700), 0) << deep;
    }
    write_text(deep + "/f", "x", 0600);
    // Script snapshots: one taken before the cutoff, one after.
    const std::string old_ref = spool_.save_script(me_, "old.sh", "#!/bin/sh\n");
    const std::string new_ref = spool_.save_script(me_, "new.sh", "#!/bin/sh\n");
    set_mtime(user_dir(root_, me_, "scripts/" + old_ref.substr(0, old_ref.find('/'))), now - 7200);
    // The follow-up arrays of two array jobs: claimed before the cutoff, and after.
    spool_.claim_array_followups(me_, "70", "eval", "1");
    spool_.publish_array_followups(me_, "70", "eval", "{}");
    spool_.claim_array_followups(me_, "71", "eval", "1");
    set_mtime(user_dir(root_, me_, "arrays/70"), now - 7200);
    spool_.clean(me_, now - 3600, now - 3600);
    EXPECT_HAWF_ERROR(spool_.script_path(me_, old_ref), ErrorKind::NotFound, "old.sh");
    EXPECT_NO_THROW(spool_.script_path(me_, new_ref));
    EXPECT_FALSE(spool_.array_followups(me_, "70", "eval"));
    EXPECT_EQ(spool_.claim_array_followups(me_, "71", "eval", "2"), "1");
    for (const auto& rel : stale) EXPECT_FALSE(exists(user_dir(root_, me_, rel))) << rel;
    for (const auto& rel : kept) EXPECT_TRUE(exists(user_dir(root_, me_, rel))) << rel;
    EXPECT_TRUE(raw_entries(user_dir(root_, me_, ".trash")).empty());
    EXPECT_EQ(spool_.load(me_, spec.id).state, State::Pending);
    // A user without a tree, or without leftovers, is fine.
    EXPECT_NO_THROW(spool_.clean(me_ + 1, now, now));
    EXPECT_NO_THROW(spool_.clean(me_, now - 3600, now - 3600));
}

// An opener killed between making the checkpoint's directory and its first record
// left a checkpoint no listing shows but max_checkpoints counts: clean removes it
// once no writer can still be finishing it.
TEST_F(SpoolTest, CleanRemovesCheckpointsWithoutARecord) {
    const std::time_t now = std::time(nullptr);
    const CheckpointSpec written = spec_for("65:eval", me_);
    ASSERT_TRUE(spool_.append(me_, written.id, opened(written)));
    for (const char* rel : {"ckpt/62", "ckpt/62/eval", "ckpt/62/eval/log", "ckpt/63", "ckpt/63/eval",
                            "ckpt/63/eval/log", "ckpt/64", "ckpt/64/eval"})
        ASSERT_EQ(mkdir(user_dir(root_, me_, rel).c_str(), 0700), 0) << rel;
    set_mtime(user_dir(root_, me_, "ckpt/62/eval"), now - 7200);
    set_mtime(user_dir(root_, me_, "ckpt/64/eval"), now - 7200);  // killed before even its log/
    set_mtime(user_dir(root_, me_, "ckpt/65/eval"), now - 7200);
    EXPECT_EQ(spool_.all_ids(me_).size(), 4u);
    spool_.clean(me_, now - 3600, now - 3600);
    EXPECT_FALSE(exists(user_dir(root_, me_, "ckpt/62")));
    EXPECT_FALSE(exists(user_dir(root_, me_, "ckpt/64")));
    EXPECT_TRUE(exists(user_dir(root_, me_, "ckpt/63/eval/log")));  // its opener may still be writing
    EXPECT_EQ(spool_.load(me_, written.id).state, State::Running);
    EXPECT_EQ(spool_.all_ids(me_).size(), 2u);
}

// ---------------------------------------------------------------- uids and links

TEST_F(SpoolTest, OwnersAreCanonicalUidsOwningTheirTree) {
    const CheckpointSpec spec = spec_for("70:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    // Aliases of uid 1001 (or of no one), made by whoever can write the sticky root.
    for (const char* alias : {"01001", "4294968297", "4294967295", "-1", "+5", "00", " 7", "0x10", "99999999999"})
        ASSERT_EQ(mkdir((root_ / alias).c_str(), 0700), 0) << alias;
    // A canonical name squatted by another user is not that user's tree.
    ASSERT_EQ(mkdir((root_ / "1001").c_str(), 0700), 0);
    std::vector<uid_t> expected{me_};
    if (test::is_root()) {
        ASSERT_EQ(mkdir((root_ / "65534").c_str(), 0700), 0);
        ASSERT_EQ(chown((root_ / "65534").c_str(), other_uid, other_uid), 0);
        expected.push_back(other_uid);
    }
    EXPECT_EQ(spool_.owners(), expected);
}

TEST_F(SpoolTest, SymlinkedTreeIsReportedAsALink) {
    ASSERT_EQ(mkdir((root_ / "real").c_str(), 0700), 0);
    ASSERT_EQ(symlink("real", user_dir(root_, me_).c_str()), 0);
    const CheckpointSpec spec = spec_for("80:eval", me_);
    EXPECT_HAWF_ERROR(spool_.pending_ids(me_), K::Untrusted, user_dir(root_, me_) + ": is a symbolic link");
    EXPECT_HAWF_ERROR(spool_.load(me_, spec.id), K::Untrusted, "is a symbolic link");
    EXPECT_HAWF_ERROR(spool_.append(me_, spec.id, opened(spec)), K::Untrusted, "is a symbolic link");
    EXPECT_EQ(spool_.owners(), (std::vector<uid_t>{me_}));  // listed: opening it reports the link
    EXPECT_TRUE(raw_entries(root_ / "real").empty());
    ASSERT_EQ(symlink(root_.path().c_str(), (root_ / "spool-link").c_str()), 0);
    EXPECT_HAWF_ERROR(Spool(root_ / "spool-link").open_root(), K::Untrusted, "is a symbolic link");
}

// ---------------------------------------------------------------- privacy

mode_t mode_of(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

TEST_F(SpoolTest, TreeIsPrivate) {
    const mode_t saved = umask(022);
    const CheckpointSpec spec = spec_for("90:eval", me_);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    ASSERT_TRUE(spool_.append(me_, spec.id, next_event(2, EventType::Pending)));
    spool_.set_pending(me_, spec.id, true);
    spool_.make_files_dir(me_, spec.id);
    spool_.write_delivery(me_, spec.id, "91", "{}\n");
    umask(saved);
    for (const char* dir : {"", "ckpt", "ckpt/90", "ckpt/90/eval", "ckpt/90/eval/log", "ckpt/90/eval/files",
                            "ckpt/90/eval/delivered", "pending"})
        EXPECT_EQ(mode_of(user_dir(root_, me_, dir)), 0700u) << dir;
    for (const char* file : {"ckpt/90/eval/log/00000001", "ckpt/90/eval/log/00000002",
                             "ckpt/90/eval/delivered/91.json", "pending/90:eval"})
        EXPECT_EQ(mode_of(user_dir(root_, me_, file)), 0600u) << file;
}

TEST_F(SpoolTest, OlderOpenTreeIsTightenedOnTheOwnersNextWrite) {
    const CheckpointSpec spec = spec_for("95:eval", me_);
    ASSERT_EQ(mkdir(user_dir(root_, me_).c_str(), 0755), 0);
    ASSERT_EQ(chmod(user_dir(root_, me_).c_str(), 0755), 0);
    EXPECT_TRUE(spool_.pending_ids(me_).empty());  // reading changes nothing
    EXPECT_FALSE(spool_.exists(me_, spec.id));
    EXPECT_EQ(mode_of(user_dir(root_, me_)), 0755u);
    ASSERT_TRUE(spool_.append(me_, spec.id, opened(spec)));
    EXPECT_EQ(mode_of(user_dir(root_, me_)), 0700u);
    ASSERT_EQ(chmod(user_dir(root_, me_).c_str(), 0750), 0);
    spool_.set_pending(me_, spec.id, true);
    EXPECT_EQ(mode_of(user_dir(root_, me_)), 0700u);
}

}  // namespace
}  // namespace hawf

namespace hawf {
namespace {

// --hawf-then on an array job: the first task's claim wins; what it publishes is
// written once, in the owner's tree, with the tree's checks.
TEST_F(SpoolTest, ArrayFollowUpsAreClaimedOnceAndPublishedOnce) {
    EXPECT_FALSE(spool_.array_followups(me_, "80", "eval"));
    EXPECT_EQ(spool_.claim_array_followups(me_, "80", "eval", "3"), "3");
    EXPECT_EQ(spool_.claim_array_followups(me_, "80", "eval", "1"), "3");
    EXPECT_FALSE(spool_.array_followups(me_, "80", "eval"));
    spool_.publish_array_followups(me_, "80", "eval", R"({"followups": []})");
    EXPECT_EQ(*spool_.array_followups(me_, "80", "eval"), R"({"followups": []})");
    EXPECT_HAWF_ERROR(spool_.publish_array_followups(me_, "80", "eval", "{}"), ErrorKind::Conflict, "exists already");
    EXPECT_EQ(mode_of(user_dir(root_, me_, "arrays/80/eval/followups")), 0600u);
    EXPECT_HAWF_ERROR(spool_.claim_array_followups(me_, "80_1", "eval", "1"), ErrorKind::Usage, "bad job id");
    EXPECT_HAWF_ERROR(spool_.array_followups(me_, "80", "../x"), ErrorKind::Usage, "bad checkpoint name");
    // A symbolic link in their place is refused, not followed.
    ASSERT_EQ(symlink("/tmp", user_dir(root_, me_, "arrays/81").c_str()), 0);
    EXPECT_HAWF_ERROR(spool_.array_followups(me_, "81", "eval"), ErrorKind::Untrusted, "symbolic link");
}

}  // namespace
}  // namespace hawf
