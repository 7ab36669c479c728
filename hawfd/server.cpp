#include "server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "error.hpp"
#include "hawfd_client.hpp"
#include "requests.hpp"

namespace hawf::hawfd {
namespace {

using Clock = std::chrono::steady_clock;

// "127.0.0.1:7477" or "[::1]:7477".
std::string endpoint_name(const sockaddr* address) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (address->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (address->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    return "?";
}

// Closing a socket with unread input resets the connection, which can destroy
// the answer on its way: end our side first, then read what the client still
// sends (bounded in time and bytes) until it closes.
void linger(int fd) {
    shutdown(fd, SHUT_WR);
    const Deadline deadline = Clock::now() + std::chrono::seconds(1);
    char sink[4096];
    for (std::size_t total = 0; total < 1024 * 1024;) {
        const ssize_t n = read(fd, sink, sizeof sink);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) return;
        pollfd p{fd, POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || poll(&p, 1, static_cast<int>(left)) == 0) return;
    }
}

}  // namespace

void log_line(std::string_view line) noexcept {
    static std::mutex mutex;
    const std::lock_guard<std::mutex> lock(mutex);
    iovec parts[] = {{const_cast<char*>(line.data()), line.size()}, {const_cast<char*>("\n"), 1}};
    while (writev(STDERR_FILENO, parts, 2) < 0 && errno == EINTR) {
    }
}

Server::Server(const Service& service, ServerLimits limits) : service_(service), limits_(limits) {
    const std::string& listen_on = service.config.hawfd.listen;
    const HostPort endpoint = parse_host_port(listen_on, "hawfd.listen");
    const AddressList found = resolve(endpoint, true, "cannot listen on " + listen_on);
    // A name may stand for several addresses (localhost: 127.0.0.1 and ::1): each
    // that can be bound is served.
    std::string failure;
    for (const addrinfo* ai = found.get(); ai; ai = ai->ai_next) {
        const std::string name = endpoint_name(ai->ai_addr);
        Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
        const int one = 1;
        if (!fd || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd.get(), 128) != 0) {
            failure = name + ": " + std::strerror(errno);
            log_line("not listening on " + failure);
            continue;
        }
        listeners_.push_back(std::move(fd));
        addresses_.push_back(name);
    }
    if (listeners_.empty()) throw Error(ErrorKind::System, "cannot listen on " + listen_on + ": " + failure);
}

void Server::run(int stop_fd) {
    std::vector<pollfd> watched;
    for (const Fd& fd : listeners_) watched.push_back({fd.get(), POLLIN, 0});
    watched.push_back({stop_fd, POLLIN, 0});
    for (;;) {
        if (poll(watched.data(), watched.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw system_error("hawfd cannot wait for connections", errno);
        }
        if (watched.back().revents) break;
        for (std::size_t i = 0; i + 1 < watched.size(); ++i)
            if (watched[i].revents & POLLIN) accept_one(watched[i].fd);
    }
    listeners_.clear();  // new clients are refused from now on
    std::unique_lock<std::mutex> lock(mutex_);
    if (active_) log_line("stopping; requests in flight: " + std::to_string(active_));
    idle_.wait(lock, [&] { return active_ == 0; });
}

void Server::accept_one(int listen_fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    Fd connection(accept4(listen_fd, reinterpret_cast<sockaddr*>(&address), &length, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!connection) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_line(std::string("cannot accept a connection: ") + std::strerror(errno));
        return;
    }
    const std::string peer = endpoint_name(reinterpret_cast<const sockaddr*>(&address));
    bool admitted = false;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (active_ < limits_.max_connections) {
            ++active_;
            admitted = true;
        }
    }
    if (admitted) {
        const int fd = connection.release();
        try {
            std::thread([this, fd, peer] { serve(Fd(fd), peer); }).detach();
            return;
        } catch (const std::system_error&) {  // no thread to be had: as busy
            connection = Fd(fd);
            const std::lock_guard<std::mutex> lock(mutex_);
            --active_;
        }
    }
    // Answered at once, without waiting for the request: the accept loop never blocks.
    Outcome busy = refuse(peer, Error(ErrorKind::System, "hawfd is busy: try again in a moment"));
    busy.answer["busy"] = true;  // the tools ask again: the request was not even read
    write_all(connection.get(), answer_line(busy.answer), Clock::now());
    shutdown(connection.get(), SHUT_WR);
    log_line(busy.log);
}

void Server::serve(Fd connection, const std::string& peer) {
    try {
        std::string line;
        const LineRead read =
            read_line(connection.get(), hawfd_max_request_bytes, Clock::now() + limits_.request_timeout, line);
        const auto refused = [&](const std::string& why) { return refuse(peer, Error(ErrorKind::Usage, why)); };
        const Outcome outcome =
            read == LineRead::Ok ? handle_request(line, peer, service_)
            : read == LineRead::TooLong
                ? refused("the request is longer than " + std::to_string(hawfd_max_request_bytes) + " bytes")
            : read == LineRead::TimedOut
                ? refused("no whole request line within " + std::to_string(limits_.request_timeout.count()) + " s")
                : refused("the connection ended before a whole request line");
        const bool answered =
            write_all(connection.get(), answer_line(outcome.answer), Clock::now() + limits_.answer_timeout);
        log_line(outcome.log);
        if (answered) linger(connection.get());
    } catch (const std::exception& e) {  // out of memory: drop this one, keep serving
        char text[256];
        std::snprintf(text, sizeof text, "%s: dropped: %s", peer.c_str(), e.what());
        log_line(text);
    }
    connection = Fd();
    const std::lock_guard<std::mutex> lock(mutex_);
    --active_;
    idle_.notify_all();
}

}  // namespace hawf::hawfd
