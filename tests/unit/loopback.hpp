// Real loopback servers for the tests of hawfd's notifications (test_sender,
// test_outbox): an HTTP responder and an SMTP responder, each one thread serving a
// connection at a time, and what they need (sockets, a generous wait, libcurl's setup).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "fsutil.hpp"
#include "sender.hpp"

namespace hawf::test {

using namespace std::chrono_literals;

inline constexpr std::chrono::seconds PATIENCE{30};  // for what should take milliseconds, on a loaded machine

// libcurl initialised once, and no proxy for loopback whatever the machine names. A
// test program registers it: ::testing::AddGlobalTestEnvironment(new test::CurlEnvironment).
class CurlEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        setenv("no_proxy", "*", 1);  // the servers are on loopback, whatever proxy the machine names
        hawfd::init_curl();
    }
};

// A bound loopback TCP socket; listening or not.
inline Fd loopback_socket(bool listening, int& port) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        (listening && listen(fd.get(), 16) != 0) ||
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::runtime_error("cannot make a loopback socket");
    port = ntohs(address.sin_port);
    return fd;
}

// One accepted connection; every wait ends when the server stops.
class Connection {
public:
    Connection(Fd fd, int stop_fd) : fd_(std::move(fd)), stop_fd_(stop_fd) {}

    // The next line without its CRLF; nothing at the end of input or when stopped.
    std::optional<std::string> line() {
        for (;;) {
            if (const auto end = buffered_.find("\r\n"); end != std::string::npos) {
                std::string line = buffered_.substr(0, end);
                buffered_.erase(0, end + 2);
                return line;
            }
            if (!fill()) return std::nullopt;
        }
    }
    std::optional<std::string> bytes(std::size_t count) {
        while (buffered_.size() < count)
            if (!fill()) return std::nullopt;
        std::string taken = buffered_.substr(0, count);
        buffered_.erase(0, count);
        return taken;
    }
    // The client may be gone (it stops reading a long answer): errors are ignored.
    void send(const std::string& data) {
        for (std::size_t sent = 0; sent < data.size();) {
            const ssize_t n = ::send(fd_.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return;
            sent += static_cast<std::size_t>(n);
        }
    }
    // Answers nothing until the client gives up or the server stops.
    void hang() {
        while (fill()) buffered_.clear();
    }

private:
    bool fill() {
        pollfd waits[] = {{fd_.get(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        if (poll(waits, 2, -1) <= 0 || waits[1].revents) return false;
        char chunk[4096];
        const ssize_t n = recv(fd_.get(), chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffered_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    Fd fd_;
    int stop_fd_;
    std::string buffered_;
};

// A loopback listener whose thread serves one connection at a time with SERVE, until
// the server is destroyed.
class LoopbackServer {
public:
    explicit LoopbackServer(std::function<void(Connection&)> serve)
        : listener_(loopback_socket(true, port_)), stop_(eventfd(0, EFD_CLOEXEC)), serve_(std::move(serve)),
          thread_([this] { run(); }) {}
    ~LoopbackServer() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = write(stop_.get(), &one, sizeof one);
        thread_.join();
    }
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;
    int port() const { return port_; }
    int connections() const { return connections_; }

private:
    void run() {
        for (;;) {
            pollfd waits[] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
            if (poll(waits, 2, -1) <= 0 || waits[1].revents) return;
            Fd accepted(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!accepted) continue;
            ++connections_;
            Connection connection(std::move(accepted), stop_.get());
            serve_(connection);
        }
    }

    int port_ = 0;
    Fd listener_;
    Fd stop_;
    std::atomic<int> connections_{0};
    std::function<void(Connection&)> serve_;
    std::thread thread_;
};

// Waits for PREDICATE under LOCK, generously.
template <typename Predicate>
bool wait_until(std::condition_variable& changed, std::unique_lock<std::mutex>& lock, Predicate predicate) {
    return changed.wait_for(lock, PATIENCE, predicate);
}

struct HttpRequest {
    std::string request_line;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    int status = 0;  // what it was answered (0: nothing, the responder hung)
};

// Records each request, then answers STATUS with ANSWER_SIZE bytes of body, or (status
// 0) never answers. set_status changes the answer of the requests recorded afterwards
// (a request already recorded gets the status it was recorded with).
class HttpResponder {
public:
    explicit HttpResponder(int status, std::size_t answer_size = 0)
        : status_(status), answer_size_(answer_size), server_([this](Connection& c) { serve(c); }) {}

    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()) + "/hook"; }
    int port() const { return server_.port(); }
    int connections() const { return server_.connections(); }
    void set_status(int status) {
        const std::lock_guard<std::mutex> lock(mutex_);
        status_ = status;
    }
    bool wait_requests(std::size_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        return wait_until(changed_, lock, [&] { return requests_.size() >= count; });
    }
    std::vector<HttpRequest> requests() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }

private:
    void serve(Connection& connection) {
        HttpRequest request;
        const auto request_line = connection.line();
        if (!request_line) return;
        request.request_line = *request_line;
        for (auto line = connection.line(); line && !line->empty(); line = connection.line()) {
            const auto colon = line->find(':');
            std::string name = line->substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
            request.headers[name] = line->substr(line->find_first_not_of(' ', colon + 1));
        }
        const auto length = request.headers.find("content-length");
        const auto body = connection.bytes(length == request.headers.end() ? 0 : std::stoul(length->second));
        if (!body) return;
        request.body = *body;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            request.status = status_;
            requests_.push_back(request);
        }
        changed_.notify_all();
        const int status = request.status;
        if (status == 0) return connection.hang();
        std::string answer = "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nConnection: close\r\n" +
                             "Content-Length: " + std::to_string(answer_size_) + "\r\n";
        if (status / 100 == 3) answer += "Location: http://127.0.0.1:" + std::to_string(port()) + "/elsewhere\r\n";
        connection.send(answer + "\r\n" + std::string(answer_size_, 'x'));
    }

    int status_;  // under MUTEX_
    const std::size_t answer_size_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<HttpRequest> requests_;
    LoopbackServer server_;  // last: its thread uses the members above
};

struct Mail {
    std::string from;
    std::vector<std::string> recipients;
    std::string data;  // un-stuffed, as a receiver stores it
};

// An SMTP server saying 250 to all but RCPT (RCPT_REPLY) and AUTH (offered with
// OFFER_AUTH, always refused), without STARTTLS.
class SmtpResponder {
public:
    explicit SmtpResponder(std::string rcpt_reply = "250 OK", bool offer_auth = false)
        : rcpt_reply_(std::move(rcpt_reply)), offer_auth_(offer_auth), server_([this](Connection& c) { serve(c); }) {}

    std::string url() const { return "smtp://127.0.0.1:" + std::to_string(server_.port()); }
    std::vector<Mail> mails() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return mails_;
    }
    std::vector<std::string> commands() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return commands_;
    }

private:
    void serve(Connection& connection) {
        connection.send("220 localhost ESMTP test\r\n");
        Mail mail;
        while (const auto line = connection.line()) {
            {
                const std::lock_guard<std::mutex> lock(mutex_);
                commands_.push_back(*line);
            }
            std::string verb = line->substr(0, 4);
            std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return std::toupper(c); });
            const auto address = [&] {
                const auto open = line->find('<'), close = line->find('>');
                return open == std::string::npos || close == std::string::npos ? std::string()
                                                                                 : line->substr(open + 1, close - open - 1);
            };
            if (verb == "EHLO") {
                connection.send(std::string("250-localhost\r\n") + (offer_auth_ ? "250-AUTH PLAIN LOGIN\r\n" : "") +
                                "250 8BITMIME\r\n");
            } else if (verb == "HELO" || verb == "RSET" || verb == "NOOP") {
                connection.send("250 OK\r\n");
            } else if (verb == "MAIL") {
                mail = Mail{address(), {}, {}};
                connection.send("250 OK\r\n");
            } else if (verb == "RCPT") {
                mail.recipients.push_back(address());
                connection.send(rcpt_reply_ + "\r\n");
            } else if (verb == "DATA") {
                connection.send("354 go ahead\r\n");
                for (auto data_line = connection.line(); data_line && *data_line != "."; data_line = connection.line())
                    mail.data += (data_line->rfind('.', 0) == 0 ? data_line->substr(1) : *data_line) + "\r\n";
                {
                    const std::lock_guard<std::mutex> lock(mutex_);
                    mails_.push_back(mail);
                }
                connection.send("250 OK queued\r\n");
            } else if (verb == "AUTH") {
                connection.send("535 5.7.8 authentication failed\r\n");
            } else if (verb == "QUIT") {
                return connection.send("221 bye\r\n");
            } else {
                connection.send("502 5.5.1 not implemented\r\n");
            }
        }
    }

    const std::string rcpt_reply_;
    const bool offer_auth_;
    mutable std::mutex mutex_;
    std::vector<Mail> mails_;
    std::vector<std::string> commands_;
    LoopbackServer server_;  // last: its thread uses the members above
};

}  // namespace hawf::test
