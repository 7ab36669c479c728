// hawfd's sender (hawfd/sender) against real loopback servers written here: an HTTP
// responder and an SMTP responder, each one thread serving a connection at a time.
#include <gtest/gtest.h>

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
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fsutil.hpp"
#include "sender.hpp"

namespace hawf {
namespace {

using hawfd::Outgoing;
using hawfd::Sender;
using hawfd::SendResult;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto PATIENCE = 30s;  // for what should take milliseconds, on a loaded machine

class CurlEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        setenv("no_proxy", "*", 1);  // the servers are on loopback, whatever proxy the machine names
        hawfd::init_curl();
    }
};
[[maybe_unused]] const auto* const curl_environment = ::testing::AddGlobalTestEnvironment(new CurlEnvironment);

// A bound loopback TCP socket; listening or not.
Fd loopback_socket(bool listening, int& port) {
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
};

// Records each request, then answers STATUS with ANSWER_SIZE bytes of body, or (status
// 0) never answers.
class HttpResponder {
public:
    explicit HttpResponder(int status, std::size_t answer_size = 0)
        : status_(status), answer_size_(answer_size), server_([this](Connection& c) { serve(c); }) {}

    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()) + "/hook"; }
    int port() const { return server_.port(); }
    int connections() const { return server_.connections(); }
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
            requests_.push_back(request);
        }
        changed_.notify_all();
        if (status_ == 0) return connection.hang();
        std::string answer = "HTTP/1.1 " + std::to_string(status_) + " Whatever\r\nConnection: close\r\n" +
                             "Content-Length: " + std::to_string(answer_size_) + "\r\n";
        if (status_ / 100 == 3) answer += "Location: http://127.0.0.1:" + std::to_string(port()) + "/elsewhere\r\n";
        connection.send(answer + "\r\n" + std::string(answer_size_, 'x'));
    }

    const int status_;
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

// What DONE was called with, in order (by key).
class Outcomes {
public:
    Sender::Done callback() {
        return [this](const Outgoing& message, const SendResult& result) {
            {
                const std::lock_guard<std::mutex> lock(mutex_);
                done_.emplace_back(message.key, result);
            }
            changed_.notify_all();
        };
    }
    // The first COUNT outcomes, once there are that many (a test failure if not in time).
    std::vector<std::pair<std::string, SendResult>> wait_for(std::size_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!wait_until(changed_, lock, [&] { return done_.size() >= count; })) {
            ADD_FAILURE() << "only " << done_.size() << " of " << count << " messages done";
            return {};
        }
        return done_;
    }
    SendResult only() {
        const auto done = wait_for(1);
        return done.empty() ? SendResult{} : done.front().second;
    }
    std::size_t count() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return done_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::pair<std::string, SendResult>> done_;
};

Outgoing webhook(const std::string& url, const std::string& key = "event-1") {
    Outgoing message;
    message.key = key;
    message.url = url;
    message.body = R"({"event":"decided","checkpoint":"42:review","by":"carol"})";
    return message;
}

Outgoing mail(const std::string& url) {
    Outgoing message;
    message.kind = Outgoing::Kind::Mail;
    message.key = "mail-1";
    message.url = url;
    message.from = "hawf@example.org";
    message.recipients = {"alice@example.org", "bob@example.org"};
    message.body =
        "From: hawf <hawf@example.org>\r\n"
        "To: alice@example.org, bob@example.org\r\n"
        "Subject: 42:review is waiting\r\n"
        "\r\n"
        "The checkpoint waits for you.\r\n"
        ".a line that starts with a dot\r\n"
        "..and one with two\r\n"
        "Bye.\r\n";
    return message;
}

// A failure as the contract has it: one line.
void expect_failure(const SendResult& result, bool permanent) {
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.permanent, permanent) << result.error;
    EXPECT_FALSE(result.error.empty());
    EXPECT_EQ(result.error.find_first_of("\r\n"), std::string::npos) << result.error;
}

TEST(Sender, WebhookPostsTheBodyWithItsHeaders) {
    HttpResponder server(200);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    const Outgoing message = webhook(server.url(), "1001:42:review:decided");
    sender.send(message);
    const SendResult result = outcomes.only();
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.error, "");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].request_line, "POST /hook HTTP/1.1");
    EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
    EXPECT_EQ(requests[0].headers.at("x-hawf-event-id"), "1001:42:review:decided");
    EXPECT_EQ(requests[0].headers.at("user-agent"), "hawfd/" HAWF_VERSION);
    EXPECT_EQ(requests[0].headers.count("expect"), 0u);
    EXPECT_EQ(requests[0].body, message.body);
}

TEST(Sender, WebhookStatusDecidesRetry) {
    HttpResponder failing(500), missing(404), busy(429);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook(failing.url(), "500"));
    sender.send(webhook(missing.url(), "404"));
    sender.send(webhook(busy.url(), "429"));
    auto done = outcomes.wait_for(3);
    ASSERT_EQ(done.size(), 3u);
    std::sort(done.begin(), done.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    expect_failure(done[0].second, true);
    EXPECT_EQ(done[0].second.error, "HTTP 404");
    expect_failure(done[1].second, false);
    EXPECT_EQ(done[1].second.error, "HTTP 429");
    expect_failure(done[2].second, false);
    EXPECT_EQ(done[2].second.error, "HTTP 500");
}

TEST(Sender, RedirectIsPermanentAndNotFollowed) {
    HttpResponder server(302);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook(server.url()));
    const SendResult result = outcomes.only();
    expect_failure(result, true);
    EXPECT_EQ(result.error.rfind("HTTP 302", 0), 0u) << result.error;
    EXPECT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.connections(), 1);
}

TEST(Sender, LongAnswerIsCutShortAndStillASuccess) {
    HttpResponder server(200, 1024 * 1024);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook(server.url()));
    const SendResult result = outcomes.only();
    EXPECT_TRUE(result.ok) << result.error;
}

TEST(Sender, HangingWebhookTimesOut) {
    HttpResponder server(0);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    Outgoing message = webhook(server.url());
    message.timeout = 500ms;
    sender.send(message);
    const SendResult result = outcomes.only();
    expect_failure(result, false);
    EXPECT_EQ(result.error, "timed out after 500 ms");
}

// The hung message's timeout is long so that the order below does not depend on how
// fast a loaded machine answers; the sender abandons it at the end.
TEST(Sender, HungWebhookDelaysNothingElse) {
    HttpResponder hanging(0), good(200);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    Outgoing hung = webhook(hanging.url(), "hung");
    hung.timeout = 60s;
    sender.send(hung);
    ASSERT_TRUE(hanging.wait_requests(1));
    sender.send(webhook(good.url(), "good"));
    const auto done = outcomes.wait_for(1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].first, "good");
    EXPECT_TRUE(done[0].second.ok) << done[0].second.error;
}

TEST(Sender, MoreThanMaxInFlightWaitTheirTurn) {
    HttpResponder hanging(0), good(200);
    Outcomes outcomes;
    Sender sender(outcomes.callback(), 1);
    Outgoing hung = webhook(hanging.url(), "hung");
    hung.timeout = 300ms;
    sender.send(hung);
    sender.send(webhook(good.url(), "good"));
    const auto done = outcomes.wait_for(2);
    ASSERT_EQ(done.size(), 2u);
    EXPECT_EQ(done[0].first, "hung");
    EXPECT_EQ(done[0].second.error, "timed out after 300 ms");
    EXPECT_EQ(done[1].first, "good");
    EXPECT_TRUE(done[1].second.ok) << done[1].second.error;
}

TEST(Sender, RefusedConnectionIsRetryable) {
    int port = 0;
    const Fd bound_not_listening = loopback_socket(false, port);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook("http://127.0.0.1:" + std::to_string(port) + "/hook"));
    expect_failure(outcomes.only(), false);
}

TEST(Sender, OtherSchemesArePermanentWithoutNetwork) {
    HttpResponder server(200);
    const std::string address = "127.0.0.1:" + std::to_string(server.port());
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook("ftp://" + address + "/hook", "ftp"));
    sender.send(webhook("file:///etc/passwd", "file"));
    sender.send(webhook(address + "/hook", "none"));
    sender.send(mail("http://" + address));
    Outgoing nobody = mail("smtp://" + address);
    nobody.key = "nobody";
    nobody.recipients.clear();
    sender.send(nobody);
    const auto done = outcomes.wait_for(5);
    ASSERT_EQ(done.size(), 5u);
    for (const auto& [key, result] : done) {
        SCOPED_TRACE(key);
        expect_failure(result, true);
    }
    EXPECT_EQ(done[0].second.error, "unsupported URL scheme \"ftp\" for a webhook (http:// or https://)");
    EXPECT_EQ(done[2].second.error, "the URL has no scheme (http:// or https://)");
    EXPECT_EQ(done[3].second.error, "unsupported URL scheme \"http\" for mail (smtp:// or smtps://)");
    EXPECT_EQ(done[4].second.error, "no recipients");
    EXPECT_EQ(server.connections(), 0);
}

TEST(Sender, LineBreakInAHeaderValueIsRefused) {
    HttpResponder server(200);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(webhook(server.url(), "event\r\nX-Injected: yes"));
    expect_failure(outcomes.only(), true);
    EXPECT_EQ(server.connections(), 0);
}

TEST(Sender, MailIsDelivered) {
    SmtpResponder server;
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    const Outgoing message = mail(server.url());
    sender.send(message);
    const SendResult result = outcomes.only();
    EXPECT_TRUE(result.ok) << result.error;
    const auto mails = server.mails();
    ASSERT_EQ(mails.size(), 1u);
    EXPECT_EQ(mails[0].from, "hawf@example.org");
    EXPECT_EQ(mails[0].recipients, (std::vector<std::string>{"alice@example.org", "bob@example.org"}));
    EXPECT_EQ(mails[0].data, message.body);
}

TEST(Sender, RefusedRecipientIsPermanent) {
    SmtpResponder server("550 5.1.1 <bob@example.org>: no such user");
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(mail(server.url()));
    const SendResult result = outcomes.only();
    expect_failure(result, true);
    EXPECT_EQ(result.error, "SMTP 550 5.1.1 <bob@example.org>: no such user");
    EXPECT_TRUE(server.mails().empty());
}

TEST(Sender, TemporaryRefusalIsRetryable) {
    SmtpResponder server("451 4.3.0 try again later");
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    sender.send(mail(server.url()));
    const SendResult result = outcomes.only();
    expect_failure(result, false);
    EXPECT_EQ(result.error, "SMTP 451 4.3.0 try again later");
}

TEST(Sender, RefusedLoginIsPermanentAndDoesNotShowThePassword) {
    SmtpResponder server("250 OK", true);
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    Outgoing message = mail(server.url());
    message.user = "hawf";
    message.password = "s3cret-pass";
    sender.send(message);
    const SendResult result = outcomes.only();
    expect_failure(result, true);
    EXPECT_EQ(result.error.find("s3cret"), std::string::npos) << result.error;
    EXPECT_TRUE(server.mails().empty());
}

// The server offers no STARTTLS: not a refusal of this message (it may be a server
// being reconfigured), so retryable.
TEST(Sender, RequiredStartTlsNeverSendsInTheClear) {
    SmtpResponder server;
    Outcomes outcomes;
    Sender sender(outcomes.callback());
    Outgoing message = mail(server.url());
    message.starttls = Outgoing::StartTls::Required;
    sender.send(message);
    expect_failure(outcomes.only(), false);
    const auto commands = server.commands();
    EXPECT_TRUE(std::none_of(commands.begin(), commands.end(), [](const std::string& c) { return c.rfind("MAIL", 0) == 0; }));
}

TEST(Sender, ExceptionInDoneIsIgnored) {
    HttpResponder server(200);
    Outcomes outcomes;
    const auto record = outcomes.callback();
    Sender sender([&](const Outgoing& message, const SendResult& result) {
        record(message, result);
        throw std::runtime_error("the caller's bug");
    });
    sender.send(webhook(server.url(), "first"));
    sender.send(webhook(server.url(), "second"));
    EXPECT_EQ(outcomes.wait_for(2).size(), 2u);
}

TEST(Sender, StopsPromptlyWithATransferHanging) {
    HttpResponder server(0);
    Outcomes outcomes;
    auto sender = std::make_unique<Sender>(outcomes.callback());
    Outgoing message = webhook(server.url());
    message.timeout = 60s;
    sender->send(message);
    ASSERT_TRUE(server.wait_requests(1));
    const auto start = Clock::now();
    sender.reset();
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(outcomes.count(), 0u);
}

}  // namespace
}  // namespace hawf
