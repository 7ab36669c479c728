#include "spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "error.hpp"

namespace hawf {
namespace {

std::string seq_name(std::uint64_t seq) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08llu", static_cast<unsigned long long>(seq));
    return buf;
}

bool is_seq_name(const std::string& name) {
    return name.size() == 8 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Error not_found(const CheckpointId& id) {
    return Error(ErrorKind::NotFound, "no checkpoint " + id.str());
}

}  // namespace

std::string Spool::path(uid_t owner, const std::string& rest) const {
    return root_ + "/" + std::to_string(owner) + (rest.empty() ? "" : "/" + rest);
}

Fd Spool::open_root() const {
    Fd fd(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT)
            throw Error(ErrorKind::NotFound, "spool " + root_ + " does not exist: an admin creates it with "
                                             "'install -d -m 1777 " + root_ + "' on a filesystem shared by all nodes");
        throw system_error("cannot open spool " + root_, errno);
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw system_error("cannot stat spool " + root_, errno);
    // Owned by root (a shared install) or by the caller (a private one).
    check_dir(fd.get(), Trust{st.st_uid == geteuid() ? geteuid() : 0, true}, "spool " + root_);
    return fd;
}

Fd Spool::open_user(uid_t owner, bool create) const {
    Fd root = open_root();
    const std::string name = std::to_string(owner);
    return create ? make_dir(root.get(), name, Trust{owner}, path(owner))
                  : open_dir(root.get(), name, Trust{owner}, path(owner));
}

Fd Spool::open_checkpoint(uid_t owner, const CheckpointId& id, bool create) const {
    Fd dir = open_user(owner, create);
    std::string rel;
    for (const std::string& part : {std::string("ckpt"), id.job_id, id.name}) {
        if (!dir) return dir;
        rel += (rel.empty() ? "" : "/") + part;
        dir = create ? make_dir(dir.get(), part, Trust{owner}, path(owner, rel))
                     : open_dir(dir.get(), part, Trust{owner}, path(owner, rel));
    }
    return dir;
}

bool Spool::append(uid_t owner, const CheckpointId& id, const Event& event) const {
    Fd ckpt = open_checkpoint(owner, id, event.seq == 1);
    if (!ckpt) throw not_found(id);
    const std::string base = "ckpt/" + id.job_id + "/" + id.name + "/log";
    Fd log = event.seq == 1 ? make_dir(ckpt.get(), "log", Trust{owner}, path(owner, base))
                            : open_dir(ckpt.get(), "log", Trust{owner}, path(owner, base));
    if (!log) throw not_found(id);
    const std::string name = seq_name(event.seq);
    return create_file(log.get(), name, to_json(event).dump() + "\n", path(owner, base + "/" + name));
}

Checkpoint Spool::load(uid_t owner, const CheckpointId& id) const {
    Fd ckpt = open_checkpoint(owner, id, false);
    if (!ckpt) throw not_found(id);
    const std::string base = "ckpt/" + id.job_id + "/" + id.name + "/log";
    Fd log = open_dir(ckpt.get(), "log", Trust{owner}, path(owner, base));
    if (!log) throw not_found(id);
    std::vector<std::string> names = list_dir(log.get());
    names.erase(std::remove_if(names.begin(), names.end(), [](const std::string& n) { return !is_seq_name(n); }),
                names.end());
    std::sort(names.begin(), names.end());
    std::vector<Event> events;
    for (const auto& name : names) {
        const std::string shown = path(owner, base + "/" + name);
        auto text = read_file(log.get(), name, Trust{owner}, shown);
        if (!text) continue;  // removed while listing: the fold reports the gap
        try {
            events.push_back(event_from_json(nlohmann::json::parse(*text)));
        } catch (const nlohmann::json::exception&) {
            throw Error(ErrorKind::Untrusted, "invalid record " + shown + ": not JSON");
        } catch (const Error& e) {
            throw Error(ErrorKind::Untrusted, shown + ": " + e.what());
        }
        if (seq_name(events.back().seq) != name)
            throw Error(ErrorKind::Untrusted, "invalid record " + shown + ": its seq does not match its name");
    }
    if (events.empty()) throw not_found(id);  // being created right now
    Checkpoint c = fold(std::move(events));
    if (!(c.spec.id == id) || c.spec.owner_uid != owner)
        throw Error(ErrorKind::Untrusted, "invalid record " + path(owner, base) + ": it describes another checkpoint");
    return c;
}

bool Spool::exists(uid_t owner, const CheckpointId& id) const {
    return static_cast<bool>(open_checkpoint(owner, id, false));
}

std::string Spool::files_dir(uid_t owner, const CheckpointId& id) const {
    return path(owner, "ckpt/" + id.job_id + "/" + id.name + "/files");
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

std::string Spool::write_delivery(uid_t owner, const CheckpointId& id, const std::string& job,
                                 const std::string& json) const {
    Fd ckpt = open_checkpoint(owner, id, false);
    if (!ckpt) throw not_found(id);
    const std::string rel = "ckpt/" + id.job_id + "/" + id.name + "/delivered";
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
    remove_tree(job.get(), id.name, path(owner, "ckpt/" + id.job_id + "/" + id.name));
    if (unlinkat(ckpt.get(), id.job_id.c_str(), AT_REMOVEDIR) != 0 && errno != ENOTEMPTY && errno != EEXIST)
        throw system_error("cannot remove " + path(owner, "ckpt/" + id.job_id), errno);
}

void Spool::set_pending(uid_t owner, const CheckpointId& id, bool pending) const {
    Fd user = open_user(owner, pending);
    if (!user) return;
    Fd index = pending ? make_dir(user.get(), "pending", Trust{owner}, path(owner, "pending"))
                       : open_dir(user.get(), "pending", Trust{owner}, path(owner, "pending"));
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
    std::vector<CheckpointId> ids;
    Fd user = open_user(owner, false);
    if (!user) return ids;
    Fd ckpt = open_dir(user.get(), "ckpt", Trust{owner}, path(owner, "ckpt"));
    if (!ckpt) return ids;
    for (const auto& job : list_dir(ckpt.get())) {
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
        if (name.empty() || name.size() > 10 || name.find_first_not_of("0123456789") != std::string::npos) continue;
        uids.push_back(static_cast<uid_t>(std::stoul(name)));
    }
    std::sort(uids.begin(), uids.end());
    return uids;
}

std::vector<uid_t> Spool::owners_of(const CheckpointId& id) const {
    std::vector<uid_t> found;
    for (uid_t uid : owners()) {
        try {
            if (exists(uid, id)) found.push_back(uid);
        } catch (const Error&) {
            // another user's broken or planted tree cannot claim the checkpoint
        }
    }
    return found;
}

}  // namespace hawf
