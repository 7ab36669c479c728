// hawfd's outbox (hawfd/outbox) with its real sender against the loopback responders
// of loopback.hpp: what is queued is a file at once, sent once (X-Hawf-Event-Id is
// its id), kept across a restart, retried after a temporary failure, given up into
// failed/ (hawf doctor's status) after a permanent one or notify.retry_for. Its state
// must be root's, so these tests skip unless run as root. They wait by polling the
// state with a deadline, never by sleeping a fixed time.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "error.hpp"
#include "fsutil.hpp"
#include "helpers.hpp"
#include "loopback.hpp"
#include "outbox.hpp"

namespace hawf {
namespace {

using hawfd::Outbox;
using hawfd::OutboxEntry;
using nlohmann::json;
using test::HttpRequest;
using test::HttpResponder;
using test::SmtpResponder;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using K = ErrorKind;

[[maybe_unused]] const auto* const curl_environment = ::testing::AddGlobalTestEnvironment(new test::CurlEnvironment);

constexpr auto DEADLINE = 20s;  // for what takes a few seconds (a retry waits 2 s), on a loaded machine

// Polls PREDICATE until it holds or DEADLINE passes; whether it held.
template <typename Predicate>
bool eventually(Predicate predicate) {
    const auto end = Clock::now() + DEADLINE;
    for (;;) {
        if (predicate()) return true;
        if (Clock::now() >= end) return false;
        std::this_thread::sleep_for(20ms);
    }
}

bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

const std::string webhook_body = R"({"event":"decided","checkpoint":"42:review","by":"carol"})";

class OutboxTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!test::is_root()) GTEST_SKIP() << "hawfd's state must be root's";
        notify_.timeout_s = 5;
    }

    void add_webhook(const std::string& name, const std::string& url) {
        WebhookConfig hook;
        hook.name = name;
        hook.url = url;
        hook.format = "json";
        notify_.webhooks.push_back(hook);
    }

    // A notice of OWNER's checkpoint 42:review to CHANNEL, made now.
    static OutboxEntry entry(const std::string& key, const std::string& channel = "hook", uid_t owner = 1001) {
        OutboxEntry e;
        e.id = key + "." + channel;
        e.owner = owner;
        e.checkpoint = "42:review";
        e.event = "decided";
        e.channel = channel;
        e.body = webhook_body;
        e.created = std::time(nullptr);
        return e;
    }

    // STATE/DIR/ID
    std::string path(const std::string& dir, const std::string& id) const { return state_ / (dir + "/" + id); }
    json file(const std::string& dir, const std::string& id) const {
        return json::parse(test::read_text(path(dir, id)));
    }
    bool sent(const std::string& id) const { return exists(path("sent", id)); }
    bool failed(const std::string& id) const { return exists(path("failed", id)); }
    bool queued(const std::string& id) const { return exists(path("outbox", id)); }
    // Given up: recorded in failed/, then removed from outbox/ (two steps, not atomic).
    bool given_up(const std::string& id) const { return failed(id) && !queued(id); }

    // An entry file as a hawfd before this one left it in outbox/.
    void leave_in_outbox(const std::string& name, const std::string& text) {
        mkdir((state_ / "outbox").c_str(), 0700);
        test::write_text(path("outbox", name), text, 0600);
    }

    test::TempDir state_;
    NotifyConfig notify_;
};

// A request as the sender makes it for ENTRY.
void expect_request_of(const HttpRequest& request, const OutboxEntry& entry) {
    EXPECT_EQ(request.request_line, "POST /hook HTTP/1.1");
    const auto id = request.headers.find("x-hawf-event-id");
    ASSERT_NE(id, request.headers.end());
    EXPECT_EQ(id->second, entry.id);
    EXPECT_EQ(request.body, entry.body);
}

std::size_t answered(const std::vector<HttpRequest>& requests, int status) {
    std::size_t n = 0;
    for (const auto& r : requests) n += r.status == status;
    return n;
}

// The receiver hangs at first (the attempt times out after 1 s): the message is queued
// meanwhile, then sent once the receiver answers, and never again.
TEST_F(OutboxTest, QueuedAtOnceSentOnceThenKeptInSent) {
    HttpResponder server(0);
    notify_.timeout_s = 1;
    add_webhook("hook", server.url());
    const OutboxEntry e = entry("1001-42-review-decided");
    {
        Outbox outbox(state_.path(), notify_);
        EXPECT_FALSE(outbox.known(e.id));
        ASSERT_TRUE(outbox.add(e));
        EXPECT_TRUE(outbox.known(e.id));
        // Durable when add returns, before anything is sent.
        ASSERT_TRUE(queued(e.id));
        const json written = file("outbox", e.id);
        EXPECT_EQ(written.at("id"), e.id);
        EXPECT_EQ(written.at("owner"), e.owner);
        EXPECT_EQ(written.at("checkpoint"), e.checkpoint);
        EXPECT_EQ(written.at("event"), e.event);
        EXPECT_EQ(written.at("channel"), e.channel);
        EXPECT_EQ(written.at("body"), e.body);
        EXPECT_EQ(written.at("created"), e.created);

        ASSERT_TRUE(server.wait_requests(1));
        EXPECT_FALSE(outbox.add(e));  // queued already
        EXPECT_EQ(outbox.status(0).at("queued"), 1u);
        server.set_status(200);

        ASSERT_TRUE(eventually([&] { return sent(e.id); })) << "not sent";
        EXPECT_FALSE(queued(e.id));
        EXPECT_EQ(file("sent", e.id), written);
        // Timed out (more than once only if the machine stalled for seconds), then 200 once.
        const auto requests = server.requests();
        ASSERT_GE(requests.size(), 2u);
        EXPECT_EQ(answered(requests, 0), requests.size() - 1);
        EXPECT_EQ(requests.back().status, 200);
        for (const auto& request : requests) expect_request_of(request, e);

        EXPECT_FALSE(outbox.add(e));  // sent already
        EXPECT_TRUE(outbox.known(e.id));
        EXPECT_EQ(outbox.status(0), json({{"queued", 0}, {"failed", json::array()}, {"more_failed", 0}}));
        EXPECT_EQ(server.requests().size(), requests.size());
    }
    // A hawfd started again remembers it too.
    const std::size_t requests = server.requests().size();
    Outbox again(state_.path(), notify_);
    EXPECT_TRUE(again.known(e.id));
    EXPECT_FALSE(again.add(e));
    EXPECT_EQ(again.status(0).at("queued"), 0u);
    EXPECT_FALSE(queued(e.id));
    EXPECT_EQ(server.requests().size(), requests);
}

TEST_F(OutboxTest, RefusesAnIdThatIsNoPlainName) {
    add_webhook("hook", "http://127.0.0.1:9/hook");
    Outbox outbox(state_.path(), notify_);
    OutboxEntry e = entry("x");
    for (const std::string id : {"", "../escape.hook", ".hidden.hook", "with/slash.hook", "with space.hook"}) {
        e.id = id;
        EXPECT_HAWF_ERROR(outbox.add(e), K::Usage, "bad outbox id");
    }
    EXPECT_EQ(outbox.status(0).at("queued"), 0u);
}

// hawfd stopped with the message in flight (the receiver never answers): it stays in
// outbox/, and the next hawfd sends it.
TEST_F(OutboxTest, KeptAcrossARestart) {
    HttpResponder server(0);
    notify_.timeout_s = 60;  // the attempt is abandoned when the outbox stops, not timed out
    add_webhook("hook", server.url());
    const OutboxEntry e = entry("1001-42-review-pending");
    auto outbox = std::make_unique<Outbox>(state_.path(), notify_);
    ASSERT_TRUE(outbox->add(e));
    ASSERT_TRUE(server.wait_requests(1));
    const auto start = Clock::now();
    outbox.reset();
    EXPECT_LT(Clock::now() - start, 30s);  // not waiting for the attempt's timeout
    EXPECT_TRUE(queued(e.id));
    EXPECT_FALSE(sent(e.id));
    EXPECT_FALSE(failed(e.id));

    server.set_status(200);
    outbox = std::make_unique<Outbox>(state_.path(), notify_);
    ASSERT_TRUE(eventually([&] { return sent(e.id); })) << "not sent after the restart";
    EXPECT_FALSE(queued(e.id));
    EXPECT_EQ(outbox->status(0).at("queued"), 0u);
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(answered(requests, 200), 1u);
    for (const auto& request : requests) expect_request_of(request, e);
}

TEST_F(OutboxTest, RetriedAfterAServerError) {
    HttpResponder server(500);
    add_webhook("hook", server.url());
    Outbox outbox(state_.path(), notify_);
    const OutboxEntry e = entry("1001-42-review-reminder");
    ASSERT_TRUE(outbox.add(e));
    ASSERT_TRUE(server.wait_requests(1));
    server.set_status(200);  // the first attempt is answered 500 still
    ASSERT_TRUE(eventually([&] { return sent(e.id); })) << "not sent after a retry";
    EXPECT_FALSE(queued(e.id));
    EXPECT_FALSE(failed(e.id));
    const auto requests = server.requests();
    ASSERT_GE(requests.size(), 2u);  // 2, or more if the machine stalled for seconds
    EXPECT_EQ(answered(requests, 500), requests.size() - 1);
    EXPECT_EQ(requests.back().status, 200);
    for (const auto& request : requests) expect_request_of(request, e);
    EXPECT_EQ(outbox.status(0), json({{"queued", 0}, {"failed", json::array()}, {"more_failed", 0}}));
}

// A permanent refusal is given up at the first answer; hawf doctor shows each user
// what was given up of their own checkpoints (root sees all), and what is queued.
TEST_F(OutboxTest, NotFoundIsGivenUpAtOnceAndShownToItsOwner) {
    HttpResponder missing(404), hanging(0);
    add_webhook("hook", missing.url());
    add_webhook("slow", hanging.url());
    Outbox outbox(state_.path(), notify_);
    const OutboxEntry mine = entry("1001-42-review-decided", "hook", 1001);
    OutboxEntry theirs = entry("1002-7-eval-timeout", "hook", 1002);
    theirs.checkpoint = "7:eval";
    theirs.event = "timeout";
    const OutboxEntry waiting = entry("1001-42-review-decided", "slow", 1001);
    ASSERT_TRUE(outbox.add(mine));
    ASSERT_TRUE(outbox.add(theirs));
    ASSERT_TRUE(outbox.add(waiting));

    ASSERT_TRUE(eventually([&] { return given_up(mine.id) && given_up(theirs.id); })) << "not given up";
    EXPECT_FALSE(queued(mine.id));
    EXPECT_FALSE(queued(theirs.id));
    EXPECT_FALSE(sent(mine.id));
    EXPECT_EQ(missing.requests().size(), 2u);  // once each, no retry
    EXPECT_EQ(answered(missing.requests(), 404), 2u);
    const json record = file("failed", mine.id);
    EXPECT_EQ(record.at("error").get<std::string>().rfind("HTTP 404", 0), 0u) << record;
    EXPECT_EQ(record.at("id"), mine.id);
    EXPECT_EQ(record.at("body"), mine.body);
    EXPECT_TRUE(queued(waiting.id));

    const json own = outbox.status(1001);
    EXPECT_EQ(own.at("queued"), 1u);  // WAITING, in flight or between attempts
    ASSERT_EQ(own.at("failed").size(), 1u) << own;
    const json& shown = own.at("failed")[0];
    EXPECT_EQ(shown.at("id"), mine.id);
    EXPECT_EQ(shown.at("checkpoint"), "42:review");
    EXPECT_EQ(shown.at("channel"), "hook");
    EXPECT_EQ(shown.at("event"), "decided");
    EXPECT_EQ(shown.at("error").get<std::string>().rfind("HTTP 404", 0), 0u) << shown;
    EXPECT_FALSE(shown.at("at").get<std::string>().empty());

    const json other = outbox.status(1002);
    EXPECT_EQ(other.at("queued"), 0u);
    ASSERT_EQ(other.at("failed").size(), 1u) << other;
    EXPECT_EQ(other.at("failed")[0].at("id"), theirs.id);
    EXPECT_EQ(other.at("failed")[0].at("checkpoint"), "7:eval");
    EXPECT_EQ(other.at("failed")[0].at("event"), "timeout");

    EXPECT_EQ(outbox.status(1003), json({{"queued", 0}, {"failed", json::array()}, {"more_failed", 0}}));

    const json everyone = outbox.status(0);
    EXPECT_EQ(everyone.at("queued"), 1u);
    ASSERT_EQ(everyone.at("failed").size(), 2u) << everyone;

    EXPECT_FALSE(outbox.add(mine));  // given up already: not queued again
    EXPECT_EQ(missing.requests().size(), 2u);
}

// A receiver that refuses every connection, with notify.retry_for 0: given up at the
// first failure instead of retried forever.
TEST_F(OutboxTest, RefusedBeyondRetryForIsGivenUp) {
    int port = 0;
    const Fd bound_not_listening = test::loopback_socket(false, port);
    add_webhook("hook", "http://127.0.0.1:" + std::to_string(port) + "/hook");
    notify_.retry_for_s = 0;
    Outbox outbox(state_.path(), notify_);
    const OutboxEntry e = entry("1001-42-review-failed");
    ASSERT_TRUE(outbox.add(e));
    ASSERT_TRUE(eventually([&] { return given_up(e.id); })) << "not given up";
    EXPECT_FALSE(queued(e.id));
    EXPECT_FALSE(sent(e.id));
    const json status = outbox.status(1001);
    EXPECT_EQ(status.at("queued"), 0u);
    ASSERT_EQ(status.at("failed").size(), 1u) << status;
    EXPECT_FALSE(status.at("failed")[0].at("error").get<std::string>().empty());
}

// A receiver answering 503 (retryable) for longer than notify.retry_for (1 s): retried
// (attempts 2 s apart) until then, then given up.
TEST_F(OutboxTest, ServerErrorBeyondRetryForIsGivenUp) {
    HttpResponder server(503);
    add_webhook("hook", server.url());
    notify_.retry_for_s = 1;
    Outbox outbox(state_.path(), notify_);
    const OutboxEntry e = entry("1001-42-review-pending");
    ASSERT_TRUE(outbox.add(e));
    ASSERT_TRUE(eventually([&] { return given_up(e.id); })) << "not given up";
    EXPECT_FALSE(queued(e.id));
    EXPECT_EQ(file("failed", e.id).at("error"), "HTTP 503");
    EXPECT_EQ(outbox.status(0).at("queued"), 0u);
    const auto requests = server.requests();
    // Once, or twice when the first failure came within the second of its creation.
    EXPECT_GE(requests.size(), 1u);
    EXPECT_LE(requests.size(), 2u);
    for (const auto& request : requests) expect_request_of(request, e);
}

// Queued for a webhook that a new config no longer has (hawfd restarted): given up at
// once, naming it, without a request anywhere. Likewise mail without notify.smtp.
TEST_F(OutboxTest, ChannelNoLongerConfiguredIsGivenUpAtOnce) {
    HttpResponder hanging(0), server(200);
    notify_.timeout_s = 60;
    add_webhook("gone", hanging.url());
    const OutboxEntry e = entry("1001-42-review-decided", "gone");
    {
        Outbox outbox(state_.path(), notify_);
        ASSERT_TRUE(outbox.add(e));
        ASSERT_TRUE(hanging.wait_requests(1));
    }
    ASSERT_TRUE(queued(e.id));

    notify_.webhooks.clear();
    add_webhook("hook", server.url());
    Outbox outbox(state_.path(), notify_);
    ASSERT_TRUE(eventually([&] { return given_up(e.id); })) << "not given up";
    EXPECT_FALSE(queued(e.id));
    const std::string error = file("failed", e.id).at("error").get<std::string>();
    EXPECT_NE(error.find("\"gone\""), std::string::npos) << error;
    EXPECT_NE(error.find("no longer configured"), std::string::npos) << error;

    OutboxEntry mail = entry("1001-42-review-decided", "mail");
    mail.recipients = {"alice@example.org"};
    ASSERT_TRUE(outbox.add(mail));
    ASSERT_TRUE(eventually([&] { return given_up(mail.id); })) << "not given up";
    const std::string mail_error = file("failed", mail.id).at("error").get<std::string>();
    EXPECT_NE(mail_error.find("mail is no longer configured"), std::string::npos) << mail_error;

    EXPECT_EQ(hanging.requests().size(), 1u);
    EXPECT_EQ(server.requests().size(), 0u);
    EXPECT_EQ(outbox.status(1001).at("failed").size(), 2u);
}

// What a start finds in outbox/ that is not an entry of its name is left alone: not
// sent, not queued, no crash; the good entry beside them is sent.
TEST_F(OutboxTest, StaleFilesThatAreNoEntryOfTheirNameAreIgnored) {
    HttpResponder server(200);
    add_webhook("hook", server.url());
    const OutboxEntry good = entry("1001-42-review-decided");
    const auto as_json = [](const OutboxEntry& e) {
        return json{{"id", e.id},         {"owner", e.owner},   {"checkpoint", e.checkpoint},
                    {"event", e.event},   {"channel", e.channel}, {"body", e.body},
                    {"recipients", e.recipients}, {"created", e.created}};
    };
    leave_in_outbox(good.id, as_json(good).dump());
    leave_in_outbox("garbage.hook", "{\"id\": \"garbage.hook\", \"owner\": ");  // cut short
    leave_in_outbox("empty.hook", "");
    leave_in_outbox("other-name.hook", as_json(entry("1001-43-review-decided")).dump());  // id differs
    leave_in_outbox("missing-fields.hook", json{{"id", "missing-fields.hook"}}.dump());
    json bad_id = as_json(entry("x"));
    bad_id["id"] = "../bad-id.hook";
    leave_in_outbox("bad-id.hook", bad_id.dump());

    Outbox outbox(state_.path(), notify_);
    ASSERT_TRUE(eventually([&] { return sent(good.id); })) << "the good entry not sent";
    EXPECT_EQ(outbox.status(0), json({{"queued", 0}, {"failed", json::array()}, {"more_failed", 0}}));
    for (const std::string name : {"garbage.hook", "empty.hook", "other-name.hook", "missing-fields.hook", "bad-id.hook"}) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(queued(name));
        EXPECT_FALSE(sent(name));
        EXPECT_FALSE(failed(name));
    }
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    expect_request_of(requests[0], good);
}

// hawfd killed after recording a message as sent or given up but before removing it
// from outbox/: the next start removes it instead of sending it again.
TEST_F(OutboxTest, AnEntryAlreadySentOrGivenUpIsNotSentAgainAtStart) {
    HttpResponder server(200);
    add_webhook("hook", server.url());
    const OutboxEntry was_sent = entry("1001-42-review-decided"), was_failed = entry("1001-43-review-decided");
    {
        Outbox outbox(state_.path(), notify_);  // makes the directories
    }
    for (const OutboxEntry* e : {&was_sent, &was_failed}) {
        const json j = {{"id", e->id},       {"owner", e->owner}, {"checkpoint", e->checkpoint}, {"event", e->event},
                        {"channel", e->channel}, {"body", e->body}, {"recipients", e->recipients},
                        {"created", e->created}, {"error", "HTTP 404"}, {"given_up", "2026-12-01T00:00:00Z"}};
        leave_in_outbox(e->id, j.dump());
        test::write_text(path(e == &was_sent ? "sent" : "failed", e->id), j.dump(), 0600);
    }
    Outbox outbox(state_.path(), notify_);
    EXPECT_FALSE(queued(was_sent.id));
    EXPECT_FALSE(queued(was_failed.id));
    EXPECT_EQ(outbox.status(0).at("queued"), 0);
    EXPECT_FALSE(outbox.add(was_sent));
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(OutboxTest, MailIsDeliveredAndMovedToSent) {
    SmtpResponder server;
    notify_.smtp.url = server.url();
    notify_.smtp.from = "hawf@example.org";
    Outbox outbox(state_.path(), notify_);
    OutboxEntry e = entry("1001-42-review-pending", "mail");
    e.recipients = {"alice@example.org", "bob@example.org"};
    e.body =
        "From: hawf <hawf@example.org>\r\n"
        "To: alice@example.org, bob@example.org\r\n"
        "Message-ID: <1001-42-review-pending.mail@example.org>\r\n"
        "Subject: 42:review is waiting\r\n"
        "\r\n"
        "The checkpoint waits for you.\r\n";
    ASSERT_TRUE(outbox.add(e));
    ASSERT_TRUE(eventually([&] { return sent(e.id); })) << "not sent";
    EXPECT_FALSE(queued(e.id));
    const auto mails = server.mails();
    ASSERT_EQ(mails.size(), 1u);
    EXPECT_EQ(mails[0].from, "hawf@example.org");
    EXPECT_EQ(mails[0].recipients, e.recipients);
    EXPECT_EQ(mails[0].data, e.body);
}

// A relay's refusal is kept as it came, and may not be UTF-8 (Latin-1 text, or a
// character cut by the sender's limit on what it keeps): still given up into failed/
// for hawf doctor, and out of outbox/ (not sent again at every start).
TEST_F(OutboxTest, RefusalThatIsNotUtf8IsStillRecorded) {
    SmtpResponder server("550 5.1.1 Empf\xe4nger unbekannt");
    notify_.smtp.url = server.url();
    notify_.smtp.from = "hawf@example.org";
    Outbox outbox(state_.path(), notify_);
    OutboxEntry e = entry("1001-42-review-pending", "mail");
    e.recipients = {"alice@example.org"};
    e.body = "Subject: 42:review is waiting\r\n\r\nThe checkpoint waits for you.\r\n";
    ASSERT_TRUE(outbox.add(e));
    ASSERT_TRUE(eventually([&] { return given_up(e.id) || outbox.status(0).at("queued") == 0u; }));
    EXPECT_TRUE(failed(e.id));
    EXPECT_FALSE(queued(e.id));
    const json status = outbox.status(1001);
    ASSERT_EQ(status.at("failed").size(), 1u) << status;
    EXPECT_EQ(status.at("failed")[0].at("error").get<std::string>().rfind("SMTP 550 5.1.1 Empf", 0), 0u);
}

}  // namespace
}  // namespace hawf
