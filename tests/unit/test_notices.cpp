// Notifications without a network: notify: in hawf.yaml, --hawf-notify's grammar,
// which notices a checkpoint's state owes (hawfd/notices) and what they say.
#include "notices.hpp"

#include <gtest/gtest.h>

#include "config.hpp"
#include "error.hpp"
#include "helpers.hpp"

namespace hawf::hawfd {
namespace {

using K = ErrorKind;
using nlohmann::json;
using Strings = std::vector<std::string>;

const std::int64_t t0 = 1790000000;

Event event(std::uint64_t seq, EventType type, std::int64_t at) {
    Event ev;
    ev.seq = seq;
    ev.type = type;
    ev.at = at;
    ev.by = "alice";
    ev.by_uid = 1001;
    ev.via = Via::Plugin;
    ev.host = "node1";
    return ev;
}

CheckpointSpec spec(std::int64_t timeout_s = 3600) {
    CheckpointSpec s;
    s.id = parse_checkpoint_id("4242:eval");
    s.owner_uid = 1001;
    s.owner = "alice";
    s.scope = Scope::Job;
    s.options = {"continue", "stop"};
    s.params = parse_param_specs("lr:float");
    s.timeout_s = timeout_s;
    if (timeout_s) s.default_choice = "stop";
    return s;
}

// Opened at t0, pending at t0 + 60, then EXTRA.
Checkpoint checkpoint(const CheckpointSpec& s, std::vector<Event> extra = {}) {
    std::vector<Event> events;
    events.push_back(event(1, EventType::Opened, t0));
    events.back().spec = s;
    events.push_back(event(2, EventType::Pending, t0 + 60));
    for (auto& ev : extra) events.push_back(std::move(ev));
    return fold(std::move(events));
}

Event decision(std::uint64_t seq, const std::string& choice, Via via, const std::string& comment = "") {
    Event ev = event(seq, EventType::Decided, t0 + 600);
    ev.via = via;
    ev.by = via == Via::Timeout ? "timeout" : "bob";
    ev.decision = Decision{choice, {{"lr", "1e-4"}}, comment};
    return ev;
}

NotifyConfig notify() {
    NotifyConfig n;
    n.smtp.url = "smtp://relay:25";
    n.webhooks.push_back({"team", "https://chat/hook", "", "slack"});
    n.remind_before_s = {1800, 7200};  // the second falls before the checkpoint was pending
    n.default_channels = {"mail"};
    return n;
}

Strings events_of(const std::vector<Notice>& notices) {
    Strings out;
    for (const auto& n : notices) out.push_back(n.event + "@" + std::to_string(n.due ? n.due - t0 : 0) + ":" + n.key);
    return out;
}

TEST(Notices, PendingOwesTheNoticeAndItsRemindersKeyedByItsEvent) {
    EXPECT_EQ(events_of(notices_for(checkpoint(spec()), notify())),
              (Strings{"pending@0:1001.4242.eval.pending.2", "reminder@1860:1001.4242.eval.reminder-1800s.2"}));
    NotifyConfig only_decisions = notify();
    only_decisions.events = {"decided"};
    EXPECT_TRUE(notices_for(checkpoint(spec()), only_decisions).empty());
    EXPECT_EQ(events_of(notices_for(checkpoint(spec(0)), notify())), (Strings{"pending@0:1001.4242.eval.pending.2"}));
}

TEST(Notices, ARevokedDecisionIsANewPendingKey) {
    Event revoked = event(4, EventType::Revoked, t0 + 700);
    const Checkpoint c = checkpoint(spec(0), {decision(3, "continue", Via::Cli), revoked});
    EXPECT_EQ(events_of(notices_for(c, notify())), (Strings{"pending@0:1001.4242.eval.pending.4"}));
}

TEST(Notices, DecisionsTimeoutsAndFailuresOweOneEach) {
    EXPECT_EQ(events_of(notices_for(checkpoint(spec(), {decision(3, "continue", Via::Cli)}), notify())),
              (Strings{"decided@0:1001.4242.eval.decided.3"}));
    EXPECT_EQ(events_of(notices_for(checkpoint(spec(), {decision(3, "stop", Via::Timeout)}), notify())),
              (Strings{"timeout@0:1001.4242.eval.timeout.3"}));
    std::vector<Event> failed = {event(1, EventType::Opened, t0), event(2, EventType::Failed, t0 + 5)};
    failed[0].spec = spec();
    failed[1].exit_status = 3 << 8;
    EXPECT_EQ(events_of(notices_for(fold(failed), notify())), (Strings{"failed@0:1001.4242.eval.failed.2"}));
    std::vector<Event> running = {event(1, EventType::Opened, t0)};
    running[0].spec = spec();
    EXPECT_TRUE(notices_for(fold(running), notify()).empty());
}

TEST(Notices, ChannelsAreTheJobsElseTheDefaultNoneOrUnknownGiveNone) {
    CheckpointSpec s = spec();
    EXPECT_EQ(channels_for(s, notify()), (Strings{"mail"}));
    s.notify = {"team", "gone", "mail"};
    Strings dropped;
    EXPECT_EQ(channels_for(s, notify(), &dropped), (Strings{"team", "mail"}));
    EXPECT_EQ(dropped, (Strings{"gone"}));
    s.notify = {"none"};
    EXPECT_TRUE(channels_for(s, notify()).empty());
}

TEST(Notices, PendingSaysWhatToDecideWithEveryUserValueEscaped) {
    const Message m = render(Notice{"pending", "k", 0}, checkpoint(spec()), "acc 0.9\x1b[2J\nline2\n", t0 + 120);
    EXPECT_EQ(m.subject, "[hawf] 4242:eval of alice waits for a decision");
    EXPECT_EQ(m.text,
              "Checkpoint 4242:eval of alice waits for a decision.\n"
              "Options: continue, stop\n"
              "Parameters: lr (float)\n"
              "Deadline: 2026-09-21 15:14:20 UTC (in 59m), then the default: stop\n"
              "Report (report.md):\n"
              "  | acc 0.9\\e[2J\n"
              "  | line2\n"
              "\n"
              "To decide, on a login node:\n"
              "  hawf-decide 4242:eval continue --set lr=VALUE\n"
              "  (choices: continue, stop; hawf show 4242:eval shows everything)\n");
}

TEST(Notices, ALongReportIsCutToItsFirstLines) {
    std::string report;
    for (int i = 1; i <= 40; ++i) report += "line " + std::to_string(i) + "\n";
    const std::string text = render(Notice{"pending", "k", 0}, checkpoint(spec(0)), report, t0).text;
    EXPECT_NE(text.find("Report (report.md, first lines):\n  | line 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("  | line 15\n\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("line 16"), std::string::npos) << text;
}

TEST(Notices, DecidedNamesWhoWhatAndTheComment) {
    const Checkpoint c = checkpoint(spec(), {decision(3, "continue", Via::Cli, "ok\nfake line")});
    const Message m = render(Notice{"decided", "k", 0}, c, "", t0 + 700);
    EXPECT_EQ(m.subject, "[hawf] 4242:eval of alice: continue");
    EXPECT_EQ(m.text, "Checkpoint 4242:eval of alice was decided: continue, by bob.\n"
                      "  lr = 1e-4\n"
                      "Comment: ok\\nfake line\n"
                      "Decided at 2026-09-21 14:23:20 UTC.\n");
    const Checkpoint t = checkpoint(spec(), {decision(3, "stop", Via::Timeout)});
    EXPECT_EQ(render(Notice{"timeout", "k", 0}, t, "", t0).subject,
              "[hawf] 4242:eval of alice: stop (the default, not decided in time)");
}

TEST(Notices, MailHasTheHeadersAReceiverNeedsAndCrlfLines) {
    const Message m{"[hawf] subject", "line one\n.dot line\n"};
    const std::string mail = mail_message(m, "hawf@c.example", {"a@x.org", "b@x.org"}, "1001.4242.eval.pending.2.mail",
                                          "hawfd1", t0);
    EXPECT_EQ(mail,
              "From: hawf@c.example\r\nTo: a@x.org, b@x.org\r\nSubject: [hawf] subject\r\n"
              "Date: Mon, 21 Sep 2026 14:13:20 +0000\r\n"
              "Message-ID: <1001.4242.eval.pending.2.mail@hawfd1>\r\n"
              "X-Hawf-Event-Id: 1001.4242.eval.pending.2.mail\r\nAuto-Submitted: auto-generated\r\n"
              "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
              "\r\nline one\r\n.dot line\r\n");
}

TEST(Notices, ChatBodiesDefuseMarkupAndJsonCarriesTheCheckpoint) {
    const Message m{"[hawf] s", "report <!channel> & `code` ```\n"};
    const Notice n{"pending", "1001.4242.eval.pending.2", 0};
    const json slack = webhook_body("slack", n, m, json::object(), t0);
    EXPECT_EQ(slack, (json{{"text", "*[hawf] s*\n```\nreport &lt;!channel&gt; &amp; 'code' '''\n```"}}));
    EXPECT_EQ(webhook_body("mattermost", n, m, json::object(), t0), slack);
    const json body = webhook_body("json", n, m, {{"checkpoint", "4242:eval"}}, t0);
    EXPECT_EQ(body["event"], (json{{"type", "pending"}, {"key", n.key}, {"at", "2026-09-21T14:13:20Z"}}));
    EXPECT_EQ(body["checkpoint"]["checkpoint"], "4242:eval");
    EXPECT_EQ(body["text"], m.text);
}

// ------------------------------------------------------------ notify: and --hawf-notify

class NotifyConfigTest : public ::testing::Test {
protected:
    std::string conf(const std::string& text) {
        const std::string path = dir_ / "hawf.yaml";
        test::write_text(path, "hawfd:\n  address: \"127.0.0.1:7477\"\n" + text);
        return path;
    }
    test::TempDir dir_;
};

TEST_F(NotifyConfigTest, AllKeysParsed) {
    const Config c = load_config(
        conf("notify:\n"
             "  smtp: {url: \"smtps://relay:465\", from: hawf@c.example, domain: example.org, starttls: required,\n"
             "         user: hawf, password_file: /etc/hawf/smtp.pass}\n"
             "  webhooks:\n"
             "    ml-team: {url: \"https://chat/hooks/abc\", format: slack}\n"
             "    audit: {url_file: /etc/hawf/audit.url}\n"
             "  events: [pending, decided]\n"
             "  remind_before: [1h, 10m]\n"
             "  default: [mail, ml-team]\n"
             "  timeout: 5s\n  retry_for: 2h\n  rescan: 1m\n"));
    const NotifyConfig& n = c.notify;
    EXPECT_EQ(n.smtp.url, "smtps://relay:465");
    EXPECT_EQ(n.smtp.starttls, "required");
    EXPECT_EQ(n.smtp.password_file, "/etc/hawf/smtp.pass");
    ASSERT_EQ(n.webhooks.size(), 2u);
    EXPECT_EQ(n.webhooks[0].format, "slack");
    EXPECT_EQ(n.webhooks[1].format, "json");  // the default
    EXPECT_EQ(n.webhooks[1].url_file, "/etc/hawf/audit.url");
    EXPECT_EQ(n.events, (Strings{"pending", "decided"}));
    EXPECT_EQ(n.remind_before_s, (std::vector<std::int64_t>{3600, 600}));
    EXPECT_EQ(n.default_channels, (Strings{"mail", "ml-team"}));
    EXPECT_EQ(n.channels(), (Strings{"mail", "ml-team", "audit"}));
    EXPECT_EQ((std::vector<std::int64_t>{n.timeout_s, n.retry_for_s, n.rescan_s}),
              (std::vector<std::int64_t>{5, 7200, 60}));
    // Mail is the default channel where there is mail.
    EXPECT_EQ(load_config(conf("notify:\n  smtp: {url: \"smtp://r:25\", from: a@b.c, domain: b.c}\n"))
                  .notify.default_channels,
              (Strings{"mail"}));
    EXPECT_TRUE(load_config(conf("notify:\n  webhooks: {t: {url: \"http://x/y\"}}\n")).notify.default_channels.empty());
}

TEST_F(NotifyConfigTest, MistakesNameTheLine) {
    const auto refused = [&](const std::string& text, const std::string& needle) {
        const std::string path = conf(text);
        EXPECT_HAWF_ERROR(load_config(path), K::Config, needle);
    };
    refused("notify:\n  webhooks: {t: {url: \"ftp://x/y\"}}\n", ":4: notify.webhooks.t.url: bad URL \"ftp://x/y\": use https://HOST... or http://HOST...");
    refused("notify:\n  webhooks: {mail: {url: \"http://x\"}}\n", "notify.webhooks.mail: \"mail\" is reserved");
    refused("notify:\n  webhooks: {t: {url: \"http://x\", url_file: /f}}\n", "give url or url_file");
    refused("notify:\n  webhooks: {t: {url: \"http://x\", format: teams}}\n", "format: bad value \"teams\": use one of slack, mattermost, json");
    refused("notify:\n  smtp: {url: \"http://r\", from: a@b.c, domain: b.c}\n", "notify.smtp.url: bad URL");
    refused("notify:\n  smtp: {url: \"smtp://r\", from: \"Hawf <a@b.c>\", domain: b.c}\n", "notify.smtp.from: needs a mail address");
    refused("notify:\n  events: [pending, lunch]\n  webhooks: {t: {url: \"http://x\"}}\n", ":4: notify.events: bad value \"lunch\"");
    refused("notify:\n  default: [team]\n  webhooks: {t: {url: \"http://x\"}}\n", "notify.default: no channel \"team\"");
    refused("notify:\n  sms: {}\n", "unknown key \"notify.sms\"");
    refused("notify:\n  remind_before: [1h]\n", "notify: needs smtp: or webhooks:");
    const std::string path = dir_ / "nohawfd.yaml";
    test::write_text(path, "notify:\n  webhooks: {t: {url: \"http://x\"}}\n");
    EXPECT_HAWF_ERROR(load_config(path), K::Config, path + ":1: notify needs hawfd: set hawfd.address");
}

TEST_F(NotifyConfigTest, ChannelsOfAJobAreCheckedAgainstTheSite) {
    const Config c = load_config(conf("notify:\n  smtp: {url: \"smtp://r:25\", from: a@b.c, domain: b.c}\n"
                                      "  webhooks: {team: {url: \"http://x\"}}\n"));
    check_notify_channels(c.notify, {"mail", "team"}, c.path);
    check_notify_channels(c.notify, {"none"}, c.path);
    EXPECT_HAWF_ERROR(check_notify_channels(c.notify, {"mail", "nosuch"}, c.path), K::Usage,
                      "no channel \"nosuch\" in " + c.path + ": use mail, team or none");
    EXPECT_HAWF_ERROR(check_notify_channels(NotifyConfig{}, {"mail"}, "/etc/hawf.yaml"), K::Usage,
                      "no notifications are configured (no notify: in /etc/hawf.yaml)");
    EXPECT_EQ(parse_notify_channels("none"), (Strings{"none"}));
    EXPECT_HAWF_ERROR(parse_notify_channels("mail,none"), K::Usage, "none stands alone");
    EXPECT_HAWF_ERROR(parse_notify_channels("mail,mail"), K::Usage, "\"mail\" appears twice");
    EXPECT_HAWF_ERROR(parse_notify_channels("https://x/y"), K::Usage, "\"https://x/y\"");
}

TEST(MailAddress, OnlyPlainAddressesPass) {
    for (const char* good : {"alice@example.org", "a.b+tag@sub.example.org", "x@y"}) EXPECT_TRUE(valid_mail_address(good)) << good;
    for (const char* bad : {"", "alice", "@x.org", "alice@", "a b@x.org", "Alice <a@x.org>", "a@x.org\r\nBcc: c@d",
                            "a@-x.org", "a@x..org", "\"a\"@x.org", "a@x.org,b@y.org"})
        EXPECT_FALSE(valid_mail_address(bad)) << bad;
}

}  // namespace
}  // namespace hawf::hawfd
