#include "spool.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <optional>

#include "config.hpp"
#include "error.hpp"

namespace hawf {
namespace {

bool is_seq_name(const std::string& name) {
    return name.size() == 8 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Error not_found(const CheckpointId& id) {
    return Error(ErrorKind::NotFound, "no checkpoint " + id.str());
}

// The uid a spool root entry names: canonical decimal only, so that "01001" or
// "4294968297" (which strtoul would wrap to 1001) cannot alias someone's tree.
std::optional<uid_t> canonical_uid(const std::string& name) {
    if (name.empty() || name.size() > 10 || name.find_first_not_of("0123456789") != std::string::npos) return {};
    if (name[0] == '0' && name.size() > 1) return {};
    const unsigned long long value = std::stoull(name);
    if (value > std::numeric_limits<uid_t>::max() || value == static_cast<uid_t>(-1)) return {};
    return static_cast<uid_t>(value);
}

template <typename Check>
bool is_valid(Check check, const std::string& value) {
    try {
        check(value);
        return true;
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Usage) throw;
        return false;
    }
}

}  // namespace

std::string checkpoint_dir(const CheckpointId& id) { return "ckpt/" + id.job_id + "/" + id.name; }

std::string seq_name(std::uint64_t seq) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08llu", static_cast<unsigned long long>(seq));
    return buf;
}

std::string Spool::path(uid_t owner, const std::string& rest) const {
    return root_ + "/" + std::to_string(owner) + (rest.empty() ? "" : "/" + rest);
}

Fd Spool::open_root() const {
    Fd fd(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        struct stat st;
        if (err == ENOENT)
            throw Error(ErrorKind::NotFound, "spool " + root_ + " does not exist: an admin creates it with "
                                             "'install -d -m 1777 " + root_ + "' on a filesystem shared by all nodes");
        if ((err == ENOTDIR || err == ELOOP) && lstat(root_.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            throw Error(ErrorKind::Untrusted, "refusing spool " + root_ + ": is a symbolic link (configure the real path)");
        throw system_error("cannot open spool " + root_, err);
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw system_error("cannot stat spool " + root_, errno);
    // Owned by root (a shared install) or by the caller (a private one).
    check_dir(st, Trust{st.st_uid == geteuid() ? geteuid() : 0, true}, "spool " + root_);
    return fd;
}

Fd Spool::open_user(uid_t owner, bool create) const {
    Fd root = open_root();
    const std::string name = std::to_string(owner);
    if (!create) return open_dir(root.get(), name, Trust{owner}, path(owner));
    Fd user = make_dir(root.get(), name, Trust{owner}, path(owner));
    // A tree an older hawf made 0755 becomes private on its owner's next write. Best
    // effort: root squashed on NFS may not chmod, and reading stays possible anyway.
    struct stat st;
    if (fstat(user.get(), &st) == 0 && (st.st_mode & 077) != 0) fchmod(user.get(), st.st_mode & 07700);
    return user;
}

Fd Spool::open_sub(int dir, const std::string& rel, uid_t owner, bool create) const {
    const std::string name = rel.substr(rel.rfind('/') + 1);
    return create ? make_dir(dir, name, Trust{owner}, path(owner, rel))
                  : open_dir(dir, name, Trust{owner}, path(owner, rel));
}

Fd Spool::open_ckpt(uid_t owner, bool create) const {
    Fd user = open_user(owner, create);
    return user ? open_sub(user.get(), "ckpt", owner, create) : Fd();
}

Fd Spool::open_checkpoint_at(int ckpt, uid_t owner, const CheckpointId& id, bool create) const {
    Fd job = open_sub(ckpt, "ckpt/" + id.job_id, owner, create);
    return job ? open_sub(job.get(), checkpoint_dir(id), owner, create) : Fd();
}

Fd Spool::open_checkpoint(uid_t owner, const CheckpointId& id, bool create) const {
    Fd ckpt = open_ckpt(owner, create);
    return ckpt ? open_checkpoint_at(ckpt.get(), owner, id, create) : Fd();
}

Fd Spool::open_array(uid_t owner, const std::string& array_job, const std::string& name, bool create) const {
    check_array_job_id(array_job);
    check_name(name);
    Fd dir = open_user(owner, create);
    for (const std::string& rel : {std::string("arrays"), "arrays/" + array_job, "arrays/" + array_job + "/" + name}) {
        if (!dir) break;
        dir = open_sub(dir.get(), rel, owner, create);
    }
    return dir;
}

bool Spool::append(uid_t owner, const CheckpointId& id, const Event& event) const {
    Fd ckpt = open_checkpoint(owner, id, event.seq == 1);
    if (!ckpt) throw not_found(id);
    const std::string base = checkpoint_dir(id) + "/log";
    Fd log = open_sub(ckpt.get(), base, owner, event.seq == 1);
    if (!log) throw not_found(id);
    // Nothing is written that could not be read back.
    check_event_fields(event);
    check_event_count(event.seq, limits_);
    const std::string name = seq_name(event.seq);
    const std::string data = to_json(event).dump() + "\n";
    check_record_size(data.size(), limits_);
    return create_file(log.get(), name, data, path(owner, base + "/" + name));
}

Checkpoint Spool::load(uid_t owner, const CheckpointId& id) const { return reader(owner).load(id); }

Checkpoint Spool::Reader::load(const CheckpointId& id) {
    if (!ckpt_) ckpt_ = spool_.open_ckpt(owner_, false);  // until a load finds it; then kept
    Fd dir = ckpt_ ? spool_.open_checkpoint_at(ckpt_.get(), owner_, id, false) : Fd();
    const std::string base = checkpoint_dir(id) + "/log";
    Fd log = dir ? spool_.open_sub(dir.get(), base, owner_, false) : Fd();
    if (!log) throw not_found(id);
    std::vector<std::string> names = list_opened_dir(log.get());
    names.erase(std::remove_if(names.begin(), names.end(), [](const std::string& n) { return !is_seq_name(n); }),
                names.end());
    std::sort(names.begin(), names.end());
    check_event_count(names.size(), spool_.limits_, ErrorKind::Untrusted);  // before reading any of them
    std::vector<Event> events;
    for (const auto& name : names) {
        const std::string shown = spool_.path(owner_, base + "/" + name);
        auto text = read_file(log.get(), name, Trust{owner_}, shown, spool_.limits_.max_record_bytes);
        if (!text) continue;  // removed while listing: the fold reports the gap
        const nlohmann::json record = parse_json(*text);
        if (record.is_discarded())
            throw Error(ErrorKind::Untrusted, "invalid record " + shown + ": not JSON nested at most " +
                                                  std::to_string(max_json_depth) + " deep");
        try {
            events.push_back(event_from_json(record));
        } catch (const Error& e) {
            throw Error(ErrorKind::Untrusted, shown + ": " + e.what());
        }
        if (seq_name(events.back().seq) != name)
            throw Error(ErrorKind::Untrusted, "invalid record " + shown + ": its seq does not match its name");
    }
    if (events.empty()) throw not_found(id);  // being created right now
    Checkpoint c = fold(std::move(events));
    if (!(c.spec.id == id) || c.spec.owner_uid != owner_)
        throw Error(ErrorKind::Untrusted,
                    "invalid record " + spool_.path(owner_, base) + ": it describes another checkpoint");
    return c;
}

bool Spool::exists(uid_t owner, const CheckpointId& id) const {
    return static_cast<bool>(open_checkpoint(owner, id, false));
}

std::string Spool::files_dir(uid_t owner, const CheckpointId& id) const {
    return path(owner, checkpoint_dir(id) + "/files");
}

void Spool::make_files_dir(uid_t owner, const CheckpointId& id) const {
    Fd ckpt = open_checkpoint(owner, id, false);
    if (!ckpt) throw not_found(id);
    make_dir(ckpt.get(), "files", Trust{owner}, files_dir(owner, id));
}

Fd Spool::open_files_dir(uid_t owner, const CheckpointId& id) const {
    Fd ckpt = open_checkpoint(owner, id, false);
    return ckpt ? open_dir(ckpt.get(), "files", Trust{owner}, files_dir(owner, id)) : Fd();
}

void Spool::write_decision_view(uid_t owner, const CheckpointId& id, const std::optional<std::string>& json) const {
    const Fd ckpt = open_checkpoint(owner, id, false);
    const Fd files = ckpt ? open_dir(ckpt.get(), "files", Trust{owner}, files_dir(owner, id)) : Fd();
    if (!files) return;  // an expected checkpoint, opened by no job yet
    const std::string shown = files_dir(owner, id) + "/" + decision_view_name;
    if (!json) return remove_file(files.get(), decision_view_name, shown);
    // The temp file in log/, where clean() finds what a killed writer left: files/ is the job's.
    const Fd log = open_dir(ckpt.get(), "log", Trust{owner}, path(owner, checkpoint_dir(id) + "/log"));
    if (!log) throw Error(ErrorKind::NotFound, "no checkpoint " + id.str());
    replace_file(files.get(), decision_view_name, *json, shown, log.get());
}

std::string Spool::write_delivery(uid_t owner, const CheckpointId& id, const std::string& job,
                                 const std::string& json) const {
    Fd ckpt = open_checkpoint(owner, id, false);
    if (!ckpt) throw not_found(id);
    const std::string rel = checkpoint_dir(id) + "/delivered";
    Fd dir = make_dir(ckpt.get(), "delivered", Trust{owner}, path(owner, rel));
    const std::string name = job + ".json";
    create_file(dir.get(), name, json, path(owner, rel + "/" + name));  // a requeued follow-up keeps the first
    return path(owner, rel + "/" + name);
}

void Spool::remove(uid_t owner, const CheckpointId& id) const {
    set_pending(owner, id, false);
    Fd user = open_user(owner, false);
    if (!user) return;
    Fd ckpt = open_dir(user.get(), "ckpt", Trust{owner}, path(owner, "ckpt"));
    Fd job = ckpt ? open_dir(ckpt.get(), id.job_id, Trust{owner}, path(owner, "ckpt/" + id.job_id)) : Fd();
    if (!job) return;
    const std::string shown = path(owner, checkpoint_dir(id));
    struct stat st;
    if (fstatat(job.get(), id.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return;
        throw system_error("cannot stat " + shown, errno);
    }
    // One rename makes the whole checkpoint disappear; deleting it may take long (a
    // deep files/) or be interrupted, and what is left waits in .trash for clean,
    // never a half-removed checkpoint that listings skip or choke on.
    Fd trash = make_dir(user.get(), ".trash", Trust{owner}, path(owner, ".trash"));
    const std::string entry = unique_name(id.job_id + ":" + id.name + ".");
    const bool moved = move_entry(job.get(), id.name, trash.get(), entry, shown);
    if (unlinkat(ckpt.get(), id.job_id.c_str(), AT_REMOVEDIR) != 0 && errno != ENOTEMPTY && errno != EEXIST &&
        errno != ENOENT)
        throw system_error("cannot remove " + path(owner, "ckpt/" + id.job_id), errno);
    if (moved) remove_tree(trash.get(), entry, path(owner, ".trash/" + entry));
}

void Spool::clean(uid_t owner, std::int64_t stale_before, std::int64_t scripts_before) const {
    Fd user = open_user(owner, false);
    if (!user) return;
    if (Fd trash = open_dir(user.get(), ".trash", Trust{owner}, path(owner, ".trash")))
        empty_dir(trash.get(), path(owner, ".trash"));
    // A snapshot's token dir was made when its copy was taken, an array's dir when its
    // first task claimed its follow-ups: both serve jobs that may still start until then.
    for (const char* kind : {"scripts", "arrays"})
        if (Fd dir = open_dir(user.get(), kind, Trust{owner}, path(owner, kind)))
            for (const auto& entry : list_dir(dir.get())) {
                struct stat st;
                if (fstatat(dir.get(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime < scripts_before)
                    remove_tree(dir.get(), entry, path(owner, std::string(kind) + "/" + entry));
            }
    if (Fd index = open_dir(user.get(), "pending", Trust{owner}, path(owner, "pending")))
        remove_stale_temps(index.get(), stale_before, path(owner, "pending"));
    Fd ckpt = open_dir(user.get(), "ckpt", Trust{owner}, path(owner, "ckpt"));
    if (!ckpt) return;
    std::vector<CheckpointId> never_written;  // opened by a writer killed before its first record
    // The same walk as all_ids: stray names are skipped, untrusted entries refused.
    for (const auto& job : list_dir(ckpt.get())) {
        if (!is_valid(check_job_id, job)) continue;
        Fd jobdir = open_dir(ckpt.get(), job, Trust{owner}, path(owner, "ckpt/" + job));
        if (!jobdir) continue;
        for (const auto& name : list_dir(jobdir.get())) {
            if (!is_valid([](const std::string& n) { check_name(n); }, name)) continue;
            const std::string rel = checkpoint_dir({job, name});
            Fd dir = open_dir(jobdir.get(), name, Trust{owner}, path(owner, rel));
            if (!dir) continue;
            for (const char* sub : {"log", "delivered"})
                if (Fd d = open_dir(dir.get(), sub, Trust{owner}, path(owner, rel + "/" + sub)))
                    remove_stale_temps(d.get(), stale_before, path(owner, rel + "/" + sub));
            // No record, and no writer is still finishing it: it would count against
            // max_checkpoints for ever while no listing shows it.
            struct stat st;
            const Fd log = open_dir(dir.get(), "log", Trust{owner}, path(owner, rel + "/log"));
            if ((!log || list_dir(log.get()).empty()) && fstat(dir.get(), &st) == 0 && st.st_mtime < stale_before)
                never_written.push_back({job, name});
        }
    }
    for (const auto& id : never_written) remove(owner, id);
}

void Spool::set_pending(uid_t owner, const CheckpointId& id, bool pending) const {
    Fd user = open_user(owner, pending);
    if (!user) return;
    Fd index = open_sub(user.get(), "pending", owner, pending);
    if (!index) return;
    const std::string shown = path(owner, "pending/" + id.str());
    if (pending) create_file(index.get(), id.str(), "", shown);
    else remove_file(index.get(), id.str(), shown);
}

std::vector<CheckpointId> Spool::pending_ids(uid_t owner) const {
    std::vector<CheckpointId> ids;
    Fd user = open_user(owner, false);
    if (!user) return ids;
    Fd index = open_dir(user.get(), "pending", Trust{owner}, path(owner, "pending"));
    if (!index) return ids;
    for (const auto& name : list_dir(index.get())) {
        try {
            ids.push_back(parse_checkpoint_id(name));
        } catch (const Error&) {
            // not an index entry: ignore it, it cannot name a checkpoint
        }
    }
    return ids;
}

std::vector<CheckpointId> Spool::all_ids(uid_t owner) const {
    return ids_of_jobs(owner, [](const std::string&) { return true; });
}

std::vector<CheckpointId> Spool::ids_of_jobs(uid_t owner,
                                             const std::function<bool(const std::string&)>& job_wanted) const {
    std::vector<CheckpointId> ids;
    Fd ckpt = open_ckpt(owner, false);
    if (!ckpt) return ids;
    for (const auto& job : list_dir(ckpt.get())) {
        if (!job_wanted(job)) continue;
        try {
            check_job_id(job);
            Fd jobdir = open_dir(ckpt.get(), job, Trust{owner}, path(owner, "ckpt/" + job));
            if (!jobdir) continue;
            for (const auto& name : list_dir(jobdir.get())) {
                check_name(name);
                ids.push_back({job, name});
            }
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Usage) throw;  // a stray name is skipped, a bad entry is not
        }
    }
    return ids;
}

std::vector<uid_t> Spool::owners() const {
    std::vector<uid_t> uids;
    Fd root = open_root();
    for (const auto& name : list_dir(root.get())) {
        const std::optional<uid_t> uid = canonical_uid(name);
        if (!uid) continue;
        // Only the user's own entry is their tree: one squatted by another user (who
        // can create any name in the sticky root) is not listed as theirs. Whatever
        // else is wrong with it, opening it reports, for that user alone.
        struct stat st;
        if (fstatat(root.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != *uid) continue;
        uids.push_back(*uid);
    }
    std::sort(uids.begin(), uids.end());
    return uids;
}

// ---------------------------------------------------------------- script snapshots

namespace {

constexpr std::size_t script_token_chars = 32;  // 128 random bits: not guessable

bool is_script_token(const std::string& s) {
    return s.size() == script_token_chars &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string random_script_token() {
    unsigned char bytes[script_token_chars / 2];
    for (std::size_t got = 0; got < sizeof bytes;) {
        const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw system_error("cannot get random bytes for a script snapshot", errno);
        got += static_cast<std::size_t>(n);
    }
    static const char hex[] = "0123456789abcdef";
    std::string token;
    for (unsigned char b : bytes) token += std::string{hex[b >> 4], hex[b & 15]};
    return token;
}

// A script is private to its owner whatever the umask: fchmod on what we just opened.
void make_private(int fd, mode_t mode, const std::string& shown) {
    if (fchmod(fd, mode) != 0) throw system_error("cannot chmod " + shown, errno);
}

}  // namespace

std::string Spool::save_script(uid_t owner, const std::string& name, const std::string& content) const {
    check_name(name, "script name");
    Fd user = open_user(owner, true);
    Fd scripts = make_dir(user.get(), "scripts", Trust{owner}, path(owner, "scripts"));
    make_private(scripts.get(), 0700, path(owner, "scripts"));
    const std::string token = random_script_token();
    const std::string rel = "scripts/" + token;
    Fd dir = make_dir(scripts.get(), token, Trust{owner}, path(owner, rel));
    make_private(dir.get(), 0700, path(owner, rel));
    const std::string shown = path(owner, rel + "/" + name);
    if (!create_file(dir.get(), name, content, shown))
        throw Error(ErrorKind::Conflict, "cannot save the script as " + shown + ": it already exists");
    Fd file(openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!file) throw system_error("cannot open " + shown, errno);
    make_private(file.get(), 0600, shown);
    return token + "/" + name;
}

std::string Spool::snapshot_script(uid_t owner, const std::string& script, const std::string& what) const {
    const std::string data = read_script_file(script, max_script_bytes, what);
    // The snapshot keeps the script's file name (sbatch names a job after it) when
    // that is a valid name.
    std::string name = script.substr(script.rfind('/') + 1);
    try {
        check_name(name, "script name");
    } catch (const Error&) {
        name = "script";
    }
    return save_script(owner, name, data);
}

std::string Spool::script_path(uid_t owner, const std::string& ref) const {
    // The reference comes from the job's environment, which its user controls: only
    // "<token>/<name>" is accepted, so it can name nothing outside scripts/.
    const auto slash = ref.find('/');
    const std::string token = ref.substr(0, slash);
    const std::string name = slash == std::string::npos ? "" : ref.substr(slash + 1);
    bool valid = is_script_token(token);
    try {
        if (valid) check_name(name, "script name");
    } catch (const Error&) {
        valid = false;
    }
    if (!valid)
        throw Error(ErrorKind::Usage, "invalid script snapshot " + quoted_text(ref) +
                                          ": expected 32 lowercase hex digits, '/' and a file name");
    const std::string rel = "scripts/" + token;
    const std::string shown = path(owner, rel + "/" + name);
    Fd user = open_user(owner, false);
    Fd scripts = user ? open_dir(user.get(), "scripts", Trust{owner}, path(owner, "scripts")) : Fd();
    Fd dir = scripts ? open_dir(scripts.get(), token, Trust{owner}, path(owner, rel)) : Fd();
    if (!dir) throw Error(ErrorKind::NotFound, "no script snapshot " + shown);
    struct stat st;
    if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) throw Error(ErrorKind::NotFound, "no script snapshot " + shown);
        throw system_error("cannot stat " + shown, errno);
    }
    if (S_ISLNK(st.st_mode)) throw Error(ErrorKind::Untrusted, "refusing " + shown + ": is a symbolic link");
    if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::Untrusted, "refusing " + shown + ": is not a regular file");
    if (st.st_uid != owner)
        throw Error(ErrorKind::Untrusted, "refusing " + shown + ": owned by uid " + std::to_string(st.st_uid) +
                                              ", expected uid " + std::to_string(owner));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw Error(ErrorKind::Untrusted, "refusing " + shown + ": writable by group or others");
    // The path is safe to resolve again (sbatch opens it): every directory on it was
    // checked to be writable only by OWNER, and the root is sticky.
    return shown;
}

std::string Spool::claim_array_followups(uid_t owner, const std::string& array_job, const std::string& name,
                                         const std::string& task) const {
    Fd dir = open_array(owner, array_job, name, true);
    const std::string shown = path(owner, "arrays/" + array_job + "/" + name + "/claim");
    create_file(dir.get(), "claim", task, shown);  // false: claimed already
    const std::optional<std::string> holder = read_file(dir.get(), "claim", Trust{owner}, shown, 64);
    if (!holder) throw Error(ErrorKind::System, "cannot read " + shown + ": it disappeared");
    return *holder;
}

void Spool::publish_array_followups(uid_t owner, const std::string& array_job, const std::string& name,
                                    const std::string& json) const {
    Fd dir = open_array(owner, array_job, name, true);
    const std::string shown = path(owner, "arrays/" + array_job + "/" + name + "/followups");
    if (!create_file(dir.get(), "followups", json, shown))
        throw Error(ErrorKind::Conflict, "cannot write " + shown + ": it exists already");
}

std::optional<std::string> Spool::array_followups(uid_t owner, const std::string& array_job,
                                                  const std::string& name) const {
    Fd dir = open_array(owner, array_job, name, false);
    if (!dir) return std::nullopt;
    return read_file(dir.get(), "followups", Trust{owner}, path(owner, "arrays/" + array_job + "/" + name + "/followups"));
}

bool Spool::save_flow_file(uid_t owner, const std::string& name, const std::string& json) const {
    check_name(name, "flow file name");
    Fd user = open_user(owner, true);
    Fd flows = make_dir(user.get(), "flows", Trust{owner}, path(owner, "flows"));
    return create_file(flows.get(), name, json, path(owner, "flows/" + name));
}

std::optional<std::string> Spool::flow_file(uid_t owner, const std::string& name) const {
    check_name(name, "flow file name");
    Fd user = open_user(owner, false);
    Fd flows = user ? open_dir(user.get(), "flows", Trust{owner}, path(owner, "flows")) : Fd();
    if (!flows) return std::nullopt;
    return read_file(flows.get(), name, Trust{owner}, path(owner, "flows/" + name));
}

std::vector<std::string> Spool::flow_files(uid_t owner) const {
    Fd user = open_user(owner, false);
    Fd flows = user ? open_dir(user.get(), "flows", Trust{owner}, path(owner, "flows")) : Fd();
    return flows ? list_opened_dir(flows.get()) : std::vector<std::string>{};
}

Spool spool_of(const Config& config) { return Spool(config.spool, config.limits); }

}  // namespace hawf
