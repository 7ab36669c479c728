// hawfd's protocol (hawfd/requests) and its server with the client of the core
// (lib/hawfd_client), over loopback, against a real private munged.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "error.hpp"
#include "hawfd_client.hpp"
#include "helpers.hpp"
#include "munge.hpp"
#include "munged.hpp"
#include "journal.hpp"
#include "owner.hpp"
#include "views.hpp"
#include "requests.hpp"
#include "server.hpp"
#include "service.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using nlohmann::json;

// hawfd's verbs done in this process (the tests run as root, the owner of the trees they make).
class InProcessOwners : public hawfd::OwnerAccess {
public:
    explicit InProcessOwners(const Config& config) : config_(config) {}
    json run(uid_t, const json& request) const override { return hawfd::owner_verb(config_, request); }

private:
    const Config& config_;
};

// A service for the protocol tests: munged at SOCKET, no Slurm, spool and state unused.
hawfd::Service service_for(const Config& config) {
    static const Config defaults;
    static const InProcessOwners owners(defaults);
    return hawfd::Service{config, Spool(config.spool), Slurm(), &owners, nullptr, nullptr, nullptr, "testhost"};
}

// The request line a client sends for OP.
std::string request_line(const std::string& credential) {
    return json{{"v", 1}, {"credential", credential}}.dump();
}

class RequestsTest : public test::MungeTest {
protected:
    void SetUp() override {
        test::MungeTest::SetUp();
        if (IsSkipped()) return;
        config_.hawfd.munge_socket = socket();
    }
    hawfd::Outcome handle(const std::string& line) {
        return hawfd::handle_request(line, "127.0.0.1:4242", service_for(config_));
    }
    Config config_;
    hawfd::Outcome handle_op(const json& op, int ttl_s = 0) {
        return handle(request_line(munge_encode(op.dump(), socket(), ttl_s)));
    }
    // A refusal: ok false, the kind, a one-line error holding NEEDLE, logged as refused.
    void expect_refused(const hawfd::Outcome& outcome, const char* kind, const std::string& needle) {
        EXPECT_EQ(outcome.answer["ok"], false) << outcome.answer;
        EXPECT_EQ(outcome.answer["kind"], kind) << outcome.answer;
        const std::string error = outcome.answer.value("error", "");
        EXPECT_NE(error.find(needle), std::string::npos) << error;
        EXPECT_EQ(error.find('\n'), std::string::npos) << error;
        EXPECT_NE(outcome.log.find("refused: "), std::string::npos) << outcome.log;
        EXPECT_EQ(hawfd::answer_line(outcome.answer).find('\n'), hawfd::answer_line(outcome.answer).size() - 1);
    }
};

TEST_F(RequestsTest, PingNamesTheCaller) {
    const hawfd::Outcome outcome = handle_op({{"op", "ping"}});
    EXPECT_EQ(outcome.answer, (json{{"ok", true}, {"uid", 0}, {"user", "root"}, {"hawfd", HAWF_VERSION}}));
    EXPECT_EQ(outcome.log, "127.0.0.1:4242 uid=0 (root) op=\"ping\": ok");
}

TEST_F(RequestsTest, ReplayAndExpiryRefusedButLoggedWithTheirAuthor) {
    const std::string line = request_line(munge_encode(R"({"op":"ping"})", socket()));
    EXPECT_EQ(handle(line).answer["ok"], true);
    const hawfd::Outcome again = handle(line);
    expect_refused(again, "denied", "replayed");
    EXPECT_NE(again.log.find("uid=0 (root) op=\"ping\""), std::string::npos) << again.log;

    const std::string stale = request_line(munge_encode(R"({"op":"ping"})", socket(), 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    expect_refused(handle(stale), "denied", "expired");
}

TEST_F(RequestsTest, BadEnvelopesRefusedInOneLine) {
    expect_refused(handle("garbage"), "usage", "not a JSON object");
    expect_refused(handle("[1]"), "usage", "not a JSON object");
    expect_refused(handle(R"({"v":1})"), "usage", "no munge credential");
    expect_refused(handle(R"({"v":2,"credential":"x"})"), "usage", "unsupported protocol version \"2\"");
    expect_refused(handle(R"({"credential":"x"})"), "usage", "unsupported protocol version");
    expect_refused(handle(R"({"v":1,"credential":"x","extra\n":1})"), "usage", "unknown request key \"extra\\n\"");
    expect_refused(handle(R"({"v":1,"credential":"MUNGE:forged:"})"), "untrusted", "invalid munge credential");
    expect_refused(handle(std::string("{\"v\":1,\"credential\":\"\xff\"}")), "usage", "not a JSON object");
}

TEST_F(RequestsTest, BadPayloadsAndUnknownOpsRefused) {
    expect_refused(handle_op("ping"), "usage", "not a JSON object with an \"op\"");
    expect_refused(handle_op({{"op", 7}}), "usage", "with an \"op\"");
    const hawfd::Outcome unknown = handle_op({{"op", "rm -rf\n\x1b[2J"}});
    expect_refused(unknown, "usage", "unknown op \"rm -rf\\n\\e[2J\": known are cat, decide, notify, outbox, ping, review, seal, show, verify, withdraw");
    // The log quotes what the client sent, escaped: no raw control character.
    EXPECT_EQ(unknown.log.find('\x1b'), std::string::npos) << unknown.log;
    EXPECT_EQ(unknown.log.find('\n'), std::string::npos) << unknown.log;
    expect_refused(handle_op({{"op", std::string(5000, 'x')}}), "usage", "unknown op");
    EXPECT_LT(handle_op({{"op", std::string(5000, 'y')}}).log.size(), 400u);  // quoted values are cut
}

TEST_F(RequestsTest, UnreachableMungedIsSaid) {
    const std::string line = request_line(munge_encode(R"({"op":"ping"})", socket()));
    config_.hawfd.munge_socket = socket() + ".gone";
    const hawfd::Outcome outcome = hawfd::handle_request(line, "peer", service_for(config_));
    expect_refused(outcome, "system", "munge cannot decode");
}

// A free loopback port for a server (bound to port 0, then released).
std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
}

// A hawfd server on loopback in a thread, stopped (and joined) at the end.
class ServerTest : public test::MungeTest {
protected:
    void start(hawfd::ServerLimits limits = {}) {
        config_.path = "test.yaml";
        config_.hawfd.listen = config_.hawfd.address = "127.0.0.1:" + std::to_string(free_port());
        config_.hawfd.munge_socket = socket();
        service_ = std::make_unique<hawfd::Service>(service_for(config_));
        server_ = std::make_unique<hawfd::Server>(*service_, limits);
        stop_ = Fd(eventfd(0, EFD_CLOEXEC));
        thread_ = std::thread([this] { server_->run(stop_.get()); });
    }
    void TearDown() override {
        if (thread_.joinable()) {
            const std::uint64_t one = 1;
            EXPECT_EQ(write(stop_.get(), &one, sizeof one), 8);
            thread_.join();
        }
    }
    // A raw connection to the server.
    Fd connect_raw() {
        Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(parse_host_port(config_.hawfd.listen, "listen").port);
        EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        return fd;
    }
    std::string answer_of(const Fd& fd) {
        std::string line;
        const int flags = fcntl(fd.get(), F_GETFL);
        fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        EXPECT_EQ(read_line(fd.get(), 4096, std::chrono::steady_clock::now() + std::chrono::seconds(10), line),
                  LineRead::Ok);
        return line;
    }

    Config config_;
    std::unique_ptr<hawfd::Service> service_;
    std::unique_ptr<hawfd::Server> server_;
    Fd stop_;
    std::thread thread_;
};

TEST_F(ServerTest, ClientPingsAndGetsRefusalsAsErrors) {
    start();
    const json answer = hawfd_request(config_, {{"op", "ping"}});
    EXPECT_EQ(answer["user"], "root");
    EXPECT_EQ(answer["hawfd"], HAWF_VERSION);
    EXPECT_HAWF_ERROR(hawfd_request(config_, {{"op", "promote"}}), K::Usage,
                      "hawfd at " + config_.hawfd.address + ": unknown op \"promote\"");
    EXPECT_HAWF_ERROR(hawfd_request(config_, {{"op", "decide"}}), K::Usage,
                      "hawfd at " + config_.hawfd.address + ": the request has no \"checkpoint\"");
}

TEST_F(ServerTest, SilentClientNeitherBlocksOthersNorStaysForever) {
    start({64, std::chrono::seconds(1), std::chrono::seconds(1)});
    const Fd silent = connect_raw();
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(hawfd_request(config_, {{"op", "ping"}})["ok"], true);
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(900));
    const json dropped = json::parse(answer_of(silent));
    EXPECT_EQ(dropped["error"], "no whole request line within 1 s");
}

TEST_F(ServerTest, OversizedRequestRefused) {
    start();
    const Fd client = connect_raw();
    const std::string huge(hawfd_max_request_bytes + 10, 'x');
    send(client.get(), huge.data(), huge.size(), MSG_NOSIGNAL);
    const json answer = json::parse(answer_of(client));
    EXPECT_EQ(answer["error"], "the request is longer than 524288 bytes");
}

// A busy hawfd says so at once; the client asks again (a new credential each time)
// until it has room or the client's time is up.
TEST_F(ServerTest, BusyServerIsAskedAgainUntilItHasRoom) {
    start({1, std::chrono::seconds(2), std::chrono::seconds(1)});
    const Fd occupying = connect_raw();  // dropped by the server after 2 s without a request
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // accepted and admitted
    EXPECT_HAWF_ERROR(hawfd_request(config_, {{"op", "ping"}}, std::chrono::seconds(1)), K::System,
                      "hawfd is busy: try again in a moment");
    EXPECT_EQ(hawfd_request(config_, {{"op", "ping"}}, std::chrono::seconds(10))["user"], "root");
}

TEST_F(ServerTest, UnreachableIsASystemError) {
    config_.hawfd.address = "127.0.0.1:" + std::to_string(free_port());
    config_.hawfd.munge_socket = socket();
    EXPECT_HAWF_ERROR(hawfd_request(config_, {{"op", "ping"}}), K::System,
                      "hawfd at " + config_.hawfd.address + " is not reachable: Connection refused");
    config_.hawfd.address.clear();
    EXPECT_HAWF_ERROR(hawfd_request(config_, {{"op", "ping"}}), K::Config, "hawfd is not configured");
}

// What hawfd owes survives it: entries are files, each checkpoint once, and only
// well-formed names count.
TEST(Journal, KeepsEachOwedCheckpointOnceAndIgnoresOtherNames) {
    if (!test::is_root()) GTEST_SKIP() << "hawfd's state must be root's";
    test::TempDir state;
    const hawfd::Journal journal(state.path());
    const CheckpointId eval{"42", "eval"}, task{"43_7", "deploy.v2"};
    journal.add(1001, eval);
    journal.add(1001, eval);  // owed twice is owed once
    journal.add(1002, task);
    test::write_text(state / "finalize/notanumber:42:eval", "");
    test::write_text(state / "finalize/1001:bad id", "");
    auto entries = journal.entries();
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].first, 1001u);
    EXPECT_EQ(entries[0].second.str(), "42:eval");
    EXPECT_EQ(entries[1].first, 1002u);
    EXPECT_EQ(entries[1].second.str(), "43_7:deploy.v2");
    journal.remove(1001, eval);
    journal.remove(1001, eval);  // gone already: fine
    ASSERT_EQ(journal.entries().size(), 1u);
    EXPECT_EQ(journal.entries()[0].first, 1002u);
    // A new hawfd over the same state finds what the old one owed.
    EXPECT_EQ(hawfd::Journal(state.path()).entries().size(), 1u);
}

// The child acts only as the owner it was started for: a verb for another uid is refused.
TEST(OwnerVerb, RefusesToActForAnotherUser) {
    Config config;
    const uid_t someone_else = geteuid() == 0 ? 4242 : 0;
    EXPECT_HAWF_ERROR(hawfd::owner_verb(config, {{"verb", "load"}, {"owner", someone_else}, {"checkpoint", "1:x"}}),
                      K::Denied, "must run as the owner it acts for (uid " + std::to_string(someone_else) + ")");
}

// A file's bytes travel base64-encoded in hawfd's JSON answers (hawf cat).
TEST(Base64, RoundTripsEveryByteAndRefusesGarbage) {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    for (std::size_t n : {0, 1, 2, 3, 4, 5, 256}) {
        const std::string bytes = all.substr(0, n);
        const std::string text = encode_base64(bytes);
        EXPECT_EQ(text.size() % 4, 0u);
        EXPECT_EQ(decode_base64(text), bytes) << n;
    }
    EXPECT_EQ(encode_base64("hawf"), "aGF3Zg==");
    EXPECT_EQ(encode_base64("hawfd"), "aGF3ZmQ=");
    EXPECT_HAWF_ERROR(decode_base64("aGF3Zg="), K::Untrusted, "not a multiple of 4");
    EXPECT_HAWF_ERROR(decode_base64("aG=3Zg=="), K::Untrusted, "bad character");
    EXPECT_HAWF_ERROR(decode_base64("aGF3\nZg="), K::Untrusted, "bad character");
}

}  // namespace
}  // namespace hawf
