// hawfd's sender (hawfd/sender) against real loopback servers (loopback.hpp): an HTTP
// responder and an SMTP responder, each one thread serving a connection at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fsutil.hpp"
#include "loopback.hpp"
#include "sender.hpp"

namespace hawf {
namespace {

using hawfd::Outgoing;
using hawfd::Sender;
using hawfd::SendResult;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::HttpResponder;
using test::loopback_socket;
using test::SmtpResponder;
using test::wait_until;

[[maybe_unused]] const auto* const curl_environment = ::testing::AddGlobalTestEnvironment(new test::CurlEnvironment);

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
