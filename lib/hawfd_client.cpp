#include "hawfd_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "actions.hpp"
#include "fsutil.hpp"
#include "munge.hpp"
#include "validate.hpp"

namespace hawf {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until DEADLINE, for poll(2): 0 once it has passed.
int ms_left(Deadline deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 60 * 60 * 1000));
}

// Waits for EVENTS on FD; false at the deadline or on a poll error.
bool wait_for(int fd, short events, Deadline deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = poll(&p, 1, ms_left(deadline));
        if (n > 0) return true;
        if (n == 0 || errno != EINTR) return false;
    }
}

// A connected non-blocking socket to ENDPOINT, trying each of its addresses.
Fd connect_to(const HostPort& endpoint, const std::string& address, Deadline deadline) {
    const AddressList found = resolve(endpoint, false, "hawfd at " + address + " is not reachable");
    std::string failure = "no address";
    for (const addrinfo* ai = found.get(); ai; ai = ai->ai_next) {
        Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) {
            failure = std::strerror(errno);
            continue;
        }
        if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return fd;
        if (errno != EINPROGRESS) {
            failure = std::strerror(errno);
            continue;
        }
        if (!wait_for(fd.get(), POLLOUT, deadline)) {
            failure = "no connection within the timeout";
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) return fd;
        failure = std::strerror(err);
    }
    throw Error(ErrorKind::System, "hawfd at " + address + " is not reachable: " + failure);
}

const std::pair<ErrorKind, const char*> kind_names[] = {
    {ErrorKind::Usage, "usage"},         {ErrorKind::NotFound, "not-found"}, {ErrorKind::Conflict, "conflict"},
    {ErrorKind::Denied, "denied"},       {ErrorKind::Untrusted, "untrusted"}, {ErrorKind::Config, "config"},
    {ErrorKind::System, "system"},
};

}  // namespace

const char* error_kind_name(ErrorKind kind) {
    for (const auto& [k, name] : kind_names)
        if (k == kind) return name;
    return "denied";
}

ErrorKind error_kind_from_name(const std::string& name) {
    for (const auto& [kind, n] : kind_names)
        if (name == n) return kind;
    return ErrorKind::Denied;
}

LineRead read_line(int fd, std::size_t max_bytes, Deadline deadline, std::string& line) {
    line.clear();
    char buffer[4096];
    while (line.size() < max_bytes) {
        const ssize_t n = read(fd, buffer, std::min(sizeof buffer, max_bytes - line.size()));
        if (n > 0) {
            const char* newline = static_cast<const char*>(std::memchr(buffer, '\n', static_cast<std::size_t>(n)));
            line.append(buffer, newline ? static_cast<std::size_t>(newline - buffer) : static_cast<std::size_t>(n));
            if (newline) return LineRead::Ok;
        } else if (n == 0) {
            return LineRead::Closed;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(fd, POLLIN, deadline)) return LineRead::TimedOut;
        } else if (errno != EINTR) {
            return LineRead::Failed;
        }
    }
    return LineRead::TooLong;
}

bool write_all(int fd, const std::string& data, Deadline deadline) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(fd, POLLOUT, deadline)) return false;
        } else if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

AddressList resolve(const HostPort& endpoint, bool passive, const std::string& failing) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(endpoint.host.c_str(), std::to_string(endpoint.port).c_str(), &hints, &found);
    if (rc != 0)
        throw Error(ErrorKind::System, failing + ": " + (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
    return AddressList(found, freeaddrinfo);
}

nlohmann::json hawfd_request(const Config& config, const nlohmann::json& op, std::chrono::milliseconds timeout) {
    const std::string& address = config.hawfd.address;
    if (address.empty())
        throw Error(ErrorKind::Config, "hawfd is not configured (no hawfd.address in " + config.path + ")");
    const HostPort endpoint = parse_host_port(address, "hawfd.address");
    const Deadline deadline = Clock::now() + timeout;
    const std::string within = timeout.count() % 1000 ? std::to_string(timeout.count()) + " ms"
                                                      : std::to_string(timeout.count() / 1000) + " s";
    // A busy hawfd (all its connections taken) answers at once without reading the
    // request, so asking again, with a new credential, changes nothing: wait a little
    // longer each time, until TIMEOUT.
    std::string line;
    for (auto pause = std::chrono::milliseconds(50);; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
        const nlohmann::json request = {{"v", hawfd_protocol_version},
                                        {"credential", munge_encode(op.dump(), config.hawfd.munge_socket, 0,
                                                                    MungeDecoder::RootOnly)}};
        Fd fd = connect_to(endpoint, address, deadline);
        // Its answer counts even when sending the request failed.
        const bool sent = write_all(fd.get(), request.dump() + "\n", deadline);
        const LineRead read = read_line(fd.get(), hawfd_max_answer_bytes, deadline, line);
        if (!sent && read != LineRead::Ok)
            throw Error(ErrorKind::System, "hawfd at " + address + " did not take the request within " + within);
        switch (read) {
            case LineRead::Ok: break;
            case LineRead::TimedOut:
                throw Error(ErrorKind::System, "hawfd at " + address + " did not answer within " + within);
            case LineRead::TooLong:
                throw Error(ErrorKind::System, "hawfd at " + address + " answered more than " +
                                                   std::to_string(hawfd_max_answer_bytes) + " bytes");
            case LineRead::Closed:
            case LineRead::Failed:
                throw Error(ErrorKind::System, "hawfd at " + address + " closed the connection without an answer");
        }
        const nlohmann::json busy = nlohmann::json::parse(line, nullptr, false);
        if (!busy.is_object() || busy.value("busy", false) != true || Clock::now() + pause >= deadline) break;
        std::this_thread::sleep_for(pause);
    }
    nlohmann::json answer = nlohmann::json::parse(line, nullptr, false);
    if (!answer.is_object() || !answer.contains("ok") || !answer["ok"].is_boolean())
        throw Error(ErrorKind::System, "hawfd at " + address + " answered what is not a hawfd answer: " +
                                           quoted_text(line));
    if (answer["ok"].get<bool>()) return answer;
    const auto text = [&](const char* key) {
        return answer.contains(key) && answer[key].is_string() ? answer[key].get<std::string>() : std::string();
    };
    const std::string reason = text("error");
    throw Error(error_kind_from_name(text("kind")),
                "hawfd at " + address + ": " + (reason.empty() ? "refused without a reason" : reason));
}

bool nudge_hawfd(const Config& config, uid_t owner, const CheckpointId& id) noexcept {
    if (!config.hawfd_configured()) return false;
    try {
        nlohmann::json op = {{"op", "notify"}, {"checkpoint", id.str()}};
        if (getuid() == 0) op["user"] = user_name(owner);  // root acts for the owner
        hawfd_request(config, op, nudge_timeout);
        return true;
    } catch (...) {  // hawfd down or slow: its rescan finds the checkpoint later
        return false;
    }
}

}  // namespace hawf
