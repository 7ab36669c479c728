#include "journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "error.hpp"

namespace hawf::hawfd {
namespace {

std::string entry_name(uid_t owner, const CheckpointId& id) { return std::to_string(owner) + ":" + id.str(); }

}  // namespace

Journal::Journal(const std::string& state, const std::string& name) : path_(state + "/" + name) {
    const Fd state_dir = open_dir(AT_FDCWD, state, Trust{0}, state);
    if (!state_dir) throw Error(ErrorKind::NotFound, "hawfd.state " + state + " does not exist");
    dir_ = make_dir(state_dir.get(), name, Trust{0}, path_);
}

void Journal::add(uid_t owner, const CheckpointId& id) const {
    const std::string name = entry_name(owner, id);
    create_file(dir_.get(), name, "", path_ + "/" + name);  // false: already owed, which is as good
}

void Journal::remove(uid_t owner, const CheckpointId& id) const {
    const std::string name = entry_name(owner, id);
    remove_file(dir_.get(), name, path_ + "/" + name);
    if (fsync(dir_.get()) != 0) throw system_error("cannot sync " + path_, errno);
}

std::vector<std::pair<uid_t, CheckpointId>> Journal::entries() const {
    std::vector<std::pair<uid_t, CheckpointId>> list;
    for (const auto& name : list_dir(dir_.get())) {
        const std::size_t colon = name.find(':');
        try {
            const std::string uid = name.substr(0, colon);
            if (colon == std::string::npos || uid.empty() || uid.size() > 10 ||
                uid.find_first_not_of("0123456789") != std::string::npos)
                continue;  // not hawfd's: only root writes here, but never trust a name blindly
            list.emplace_back(static_cast<uid_t>(std::strtoul(uid.c_str(), nullptr, 10)),
                              parse_checkpoint_id(name.substr(colon + 1)));
        } catch (const Error&) {
        }
    }
    return list;
}

}  // namespace hawf::hawfd
