#include "sender.hpp"

#include <curl/curl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "error.hpp"
#include "fsutil.hpp"

namespace hawf::hawfd {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t RESPONSE_CAP = 64 * 1024;  // of a webhook's answer, read and discarded
constexpr std::size_t REPLY_KEPT = 200;          // of an SMTP reply line, for the error
constexpr milliseconds CONNECT_TIMEOUT_CAP{10000};
// curl shortens the wait to its own next timer; send() and the destructor wake it at once.
constexpr int IDLE_WAIT_MS = 60000;

// The one-line, password-free form of a message from curl or a server.
std::string one_line(std::string text, const std::string& password) {
    std::replace_if(text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n' || c == '\t'; }, ' ');
    if (!password.empty())
        for (auto at = text.find(password); at != std::string::npos; at = text.find(password, at + 3))
            text.replace(at, password.size(), "***");
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

bool has_line_break(const std::string& text) { return text.find_first_of(std::string("\r\n\0", 3)) != std::string::npos; }

// The URL's scheme in lower case, empty if it has none (RFC 3986: a letter, then
// letters, digits, "+", "-", ".").
std::string scheme_of(const std::string& url) {
    const auto end = url.find("://");
    if (end == std::string::npos || end == 0 || !std::isalpha(static_cast<unsigned char>(url[0]))) return {};
    std::string scheme = url.substr(0, end);
    for (char& c : scheme) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return scheme;
}

// Why MESSAGE cannot be sent at all (empty: it can be tried). libcurl is restricted to
// the same protocols; checking here says so without touching the network.
std::string refusal_of(const Outgoing& message) {
    const bool webhook = message.kind == Outgoing::Kind::Webhook;
    const std::string scheme = scheme_of(message.url);
    const char* expected = webhook ? "http:// or https://" : "smtp:// or smtps://";
    if (scheme.empty()) return std::string("the URL has no scheme (") + expected + ")";
    if (webhook ? scheme != "http" && scheme != "https" : scheme != "smtp" && scheme != "smtps")
        return "unsupported URL scheme \"" + scheme + "\" for " + (webhook ? "a webhook" : "mail") + " (" +
               expected + ")";
    // A line break would let a value add protocol lines (headers, SMTP commands) of its own.
    if (has_line_break(message.key)) return "line break in the event id";
    if (webhook) return {};
    if (message.recipients.empty()) return "no recipients";
    if (has_line_break(message.from) ||
        std::any_of(message.recipients.begin(), message.recipients.end(), has_line_break))
        return "line break in a mail address";
    return {};
}

SendResult http_outcome(long status) {
    if (status >= 200 && status < 300) return {true, false, {}};
    const bool retryable = status == 408 || status == 429 || (status >= 500 && status < 600);
    std::string error = "HTTP " + std::to_string(status);
    if (status >= 300 && status < 400) error += " (redirects are not followed)";
    return {false, !retryable, error};
}

// One message on its way: the curl handle and what its callbacks keep.
struct Transfer {
    explicit Transfer(Outgoing m) : message(std::move(m)) {}
    ~Transfer() {
        if (multi) curl_multi_remove_handle(multi, easy);
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
        curl_slist_free_all(recipients);
    }
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    Outgoing message;
    CURL* easy = nullptr;
    CURLM* multi = nullptr;            // once added to it
    curl_slist* headers = nullptr;     // webhook
    curl_slist* recipients = nullptr;  // mail
    std::size_t uploaded = 0;          // mail: how much of the body curl has taken
    std::size_t received = 0;          // webhook: answer bytes discarded
    bool answer_cut = false;           // webhook: the answer went beyond RESPONSE_CAP
    std::string refusal;               // mail: the server's latest 4xx or 5xx reply line
    char error[CURL_ERROR_SIZE] = "";
};

size_t discard_answer(char*, size_t size, size_t count, void* data) {
    auto& transfer = *static_cast<Transfer*>(data);
    const size_t n = size * count;
    if (transfer.received + n > RESPONSE_CAP) {
        transfer.answer_cut = true;
        return 0;  // ends the transfer (CURLE_WRITE_ERROR); the status is known by now
    }
    transfer.received += n;
    return n;
}

size_t read_mail(char* buffer, size_t size, size_t count, void* data) {
    auto& transfer = *static_cast<Transfer*>(data);
    const std::string& body = transfer.message.body;
    const size_t n = std::min(size * count, body.size() - transfer.uploaded);
    std::memcpy(buffer, body.data() + transfer.uploaded, n);
    transfer.uploaded += n;
    return n;
}

// libcurl hands the SMTP server's reply lines to the header callback: a refusal says
// more than curl's "RCPT failed: 550" (and the answer to QUIT comes after it).
size_t keep_refusal(char* buffer, size_t size, size_t count, void* data) {
    auto& transfer = *static_cast<Transfer*>(data);
    const size_t n = size * count;
    if (n > 0 && (buffer[0] == '4' || buffer[0] == '5')) {
        try {
            transfer.refusal.assign(buffer, std::min(n, REPLY_KEPT));
        } catch (...) {
            transfer.refusal.clear();  // out of memory: the error falls back to curl's text
        }
    }
    return n;
}

using Sockets = std::unordered_set<curl_socket_t>;

// curl's sockets are opened here so the loop knows them all (and they are close-on-exec).
curl_socket_t open_socket(void* data, curlsocktype, curl_sockaddr* address) {
    const int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    try {
        static_cast<Sockets*>(data)->insert(fd);
    } catch (...) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

int close_socket(void* data, curl_socket_t fd) {
    static_cast<Sockets*>(data)->erase(fd);
    return close(fd);
}

}  // namespace

struct Sender::Loop {
    Loop(Done done_, std::size_t max_in_flight_);
    ~Loop();
    void run() noexcept;
    void wake() const noexcept;

    // Shared with send() and the destructor, under MUTEX.
    std::mutex mutex;
    std::deque<std::unique_ptr<Transfer>> queue;
    bool stopping = false;

    // The sender thread's own.
    Done done;
    std::size_t max_in_flight;
    Fd wake_fd;  // an eventfd, the extra descriptor of curl_multi_wait
    CURLM* multi = nullptr;
    std::vector<std::unique_ptr<Transfer>> transfers;  // capacity MAX_IN_FLIGHT: adding never throws
    Sockets sockets;                                   // every socket curl has open

private:
    bool stop_requested();
    void start_queued();
    void start(std::unique_ptr<Transfer> transfer);
    CURLcode configure(Transfer& transfer);
    void finish_done();
    SendResult outcome(const Transfer& transfer, CURLcode code) const;
    void report(const Outgoing& message, const SendResult& result) const noexcept;
};

Sender::Loop::Loop(Done done_, std::size_t max_in_flight_)
    : done(std::move(done_)), max_in_flight(std::max<std::size_t>(1, max_in_flight_)),
      wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!wake_fd) throw system_error("cannot create an eventfd", errno);
    transfers.reserve(max_in_flight);
    multi = curl_multi_init();
    if (!multi) throw Error(ErrorKind::System, "cannot create a curl multi handle");
    // Beyond this many connections libcurl closes its oldest idle one, and closing a live
    // SMTP connection waits on this thread for the answer to QUIT: room for far more than
    // run at once (the default follows the handles in flight, so it shrinks as they end).
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(4 * max_in_flight));
}

Sender::Loop::~Loop() {
    // libcurl says goodbye (SMTP QUIT) on the connections it keeps and waits minutes
    // for the answer; on shut sockets that fails at once, whatever the servers do.
    for (const curl_socket_t fd : sockets) shutdown(fd, SHUT_RDWR);
    queue.clear();
    transfers.clear();  // abandoned: removed from the multi handle, without DONE
    curl_multi_cleanup(multi);
}

void Sender::Loop::wake() const noexcept {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the loop is woken anyway.
    [[maybe_unused]] const ssize_t n = write(wake_fd.get(), &one, sizeof one);
}

void Sender::Loop::run() noexcept {
    while (!stop_requested()) {
        try {
            int running = 0;
            curl_multi_perform(multi, &running);
            finish_done();
            start_queued();  // a new handle's timer is due at once: the wait then returns at once
            curl_waitfd woken{wake_fd.get(), CURL_WAIT_POLLIN, 0};
            curl_multi_wait(multi, &woken, 1, IDLE_WAIT_MS, nullptr);
            if (woken.revents) {
                std::uint64_t count;
                [[maybe_unused]] const ssize_t n = read(wake_fd.get(), &count, sizeof count);  // resets it
            }
        } catch (const std::exception&) {
            // Out of memory: what was being started or finished is lost, the rest goes on.
        }
    }
}

bool Sender::Loop::stop_requested() {
    const std::lock_guard<std::mutex> lock(mutex);
    return stopping;
}

void Sender::Loop::start_queued() {
    for (;;) {
        std::unique_ptr<Transfer> next;
        {
            const std::lock_guard<std::mutex> lock(mutex);
            if (queue.empty() || transfers.size() >= max_in_flight) return;
            next = std::move(queue.front());
            queue.pop_front();
        }
        start(std::move(next));
    }
}

void Sender::Loop::start(std::unique_ptr<Transfer> transfer) {
    const Outgoing& message = transfer->message;
    if (const std::string refusal = refusal_of(message); !refusal.empty())
        return report(message, {false, true, refusal});
    if (const CURLcode code = configure(*transfer); code != CURLE_OK)
        // Out of memory may pass; anything else is a libcurl without what the message needs.
        return report(message, {false, code != CURLE_OUT_OF_MEMORY, std::string("libcurl: ") + curl_easy_strerror(code)});
    if (const CURLMcode code = curl_multi_add_handle(multi, transfer->easy); code != CURLM_OK)
        return report(message, {false, false, std::string("libcurl: ") + curl_multi_strerror(code)});
    transfer->multi = multi;
    transfers.push_back(std::move(transfer));
}

CURLcode Sender::Loop::configure(Transfer& transfer) {
    const Outgoing& message = transfer.message;
    const bool webhook = message.kind == Outgoing::Kind::Webhook;
    transfer.easy = curl_easy_init();
    if (!transfer.easy) return CURLE_OUT_OF_MEMORY;
    CURLcode code = CURLE_OK;
    const auto set = [&](CURLoption option, auto value) {
        if (code == CURLE_OK) code = curl_easy_setopt(transfer.easy, option, value);
    };
    set(CURLOPT_ERRORBUFFER, transfer.error);
    set(CURLOPT_URL, message.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the bitmask options are deprecated
    const char* protocols = webhook ? "http,https" : "smtp,smtps";
    set(CURLOPT_PROTOCOLS_STR, protocols);
    set(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
#else
    const long protocols = webhook ? CURLPROTO_HTTP | CURLPROTO_HTTPS : CURLPROTO_SMTP | CURLPROTO_SMTPS;
    set(CURLOPT_PROTOCOLS, protocols);
    set(CURLOPT_REDIR_PROTOCOLS, protocols);
#endif
    set(CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is a permanent error, not a new destination
    set(CURLOPT_NOSIGNAL, 1L);        // threads: no SIGALRM for name lookup timeouts
#if LIBCURL_VERSION_NUM >= 0x075700
    // A name lookup that timed out or was abandoned finishes on its own thread instead
    // of being waited for on this one (older releases never wait).
    set(CURLOPT_QUICK_EXIT, 1L);
#endif
    const milliseconds timeout = std::max(message.timeout, milliseconds(1));  // 0 would be none
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(timeout, CONNECT_TIMEOUT_CAP).count()));
    set(CURLOPT_OPENSOCKETFUNCTION, &open_socket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&sockets));
    set(CURLOPT_CLOSESOCKETFUNCTION, &close_socket);
    set(CURLOPT_CLOSESOCKETDATA, static_cast<void*>(&sockets));
    set(CURLOPT_WRITEFUNCTION, &discard_answer);  // never libcurl's default, stdout
    set(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
    if (webhook) {
        for (const std::string& header : {std::string("Content-Type: application/json"),
                                          "X-Hawf-Event-Id: " + message.key,
                                          std::string("Expect:")}) {  // no 100-continue round trip
            curl_slist* more = curl_slist_append(transfer.headers, header.c_str());
            if (!more) return CURLE_OUT_OF_MEMORY;
            transfer.headers = more;
        }
        set(CURLOPT_HTTPHEADER, transfer.headers);
        set(CURLOPT_USERAGENT, "hawfd/" HAWF_VERSION);
        set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(message.body.size()));
        set(CURLOPT_POSTFIELDS, message.body.c_str());
        return code;
    }
    for (const std::string& recipient : message.recipients) {
        curl_slist* more = curl_slist_append(transfer.recipients, recipient.c_str());
        if (!more) return CURLE_OUT_OF_MEMORY;
        transfer.recipients = more;
    }
    set(CURLOPT_MAIL_FROM, message.from.c_str());
    set(CURLOPT_MAIL_RCPT, transfer.recipients);
    set(CURLOPT_UPLOAD, 1L);
    set(CURLOPT_READFUNCTION, &read_mail);
    set(CURLOPT_READDATA, static_cast<void*>(&transfer));
    set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.body.size()));
    set(CURLOPT_HEADERFUNCTION, &keep_refusal);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&transfer));
    const long use_ssl = message.starttls == Outgoing::StartTls::Required ? CURLUSESSL_ALL
                         : message.starttls == Outgoing::StartTls::Off    ? CURLUSESSL_NONE
                                                                          : CURLUSESSL_TRY;
    set(CURLOPT_USE_SSL, use_ssl);
    // After a refusal libcurl says QUIT and waits on this thread for the answer (by
    // default two minutes): no longer than the attempt itself.
#if LIBCURL_VERSION_NUM >= 0x080600  // 8.6: the option in seconds is deprecated
    set(CURLOPT_SERVER_RESPONSE_TIMEOUT_MS, static_cast<long>(timeout.count()));
#else
    set(CURLOPT_SERVER_RESPONSE_TIMEOUT, static_cast<long>((timeout.count() + 999) / 1000));
#endif
    if (!message.user.empty()) {
        set(CURLOPT_USERNAME, message.user.c_str());
        set(CURLOPT_PASSWORD, message.password.c_str());
    }
    return code;
}

void Sender::Loop::finish_done() {
    int left = 0;
    while (const CURLMsg* info = curl_multi_info_read(multi, &left)) {
        if (info->msg != CURLMSG_DONE) continue;
        const CURLcode code = info->data.result;
        const auto found = std::find_if(transfers.begin(), transfers.end(),
                                        [&](const auto& t) { return t->easy == info->easy_handle; });
        if (found == transfers.end()) continue;
        const std::unique_ptr<Transfer> transfer = std::move(*found);
        transfers.erase(found);
        report(transfer->message, outcome(*transfer, code));
    }
}

SendResult Sender::Loop::outcome(const Transfer& transfer, CURLcode code) const {
    const Outgoing& message = transfer.message;
    const auto curl_text = [&] { return one_line(*transfer.error ? transfer.error : curl_easy_strerror(code), message.password); };
    long status = 0;  // the HTTP status, or the latest SMTP reply's code
    curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &status);
    if (message.kind == Outgoing::Kind::Webhook) {
        if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.answer_cut)) return http_outcome(status);
    } else {
        if (code == CURLE_OK) return {true, false, {}};
        const bool permanent = (status >= 500 && status < 600) || code == CURLE_LOGIN_DENIED;
        if (status >= 400 && transfer.refusal.rfind(std::to_string(status), 0) == 0)
            return {false, permanent, "SMTP " + one_line(transfer.refusal, message.password)};
        if (permanent) return {false, true, curl_text()};
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
        // Connecting (name lookup, TCP, TLS, the SMTP greeting and login) has its own limit.
        double pretransfer = 0;
        curl_easy_getinfo(transfer.easy, CURLINFO_PRETRANSFER_TIME, &pretransfer);
        const milliseconds timeout = std::max(message.timeout, milliseconds(1));
        if (pretransfer <= 0)
            return {false, false, "connect timed out after " + std::to_string(std::min(timeout, CONNECT_TIMEOUT_CAP).count()) + " ms"};
        return {false, false, "timed out after " + std::to_string(timeout.count()) + " ms"};
    }
    const bool bad_url = code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT;
    return {false, bad_url, curl_text()};
}

void Sender::Loop::report(const Outgoing& message, const SendResult& result) const noexcept {
    try {
        done(message, result);
    } catch (...) {
        // DONE's own failure is DONE's business: the sender goes on.
    }
}

Sender::Sender(Done done, std::size_t max_in_flight)
    : loop_(std::make_unique<Loop>(std::move(done), max_in_flight)), thread_(&Loop::run, loop_.get()) {}

Sender::~Sender() {
    {
        const std::lock_guard<std::mutex> lock(loop_->mutex);
        loop_->stopping = true;
    }
    loop_->wake();
    thread_.join();
}

void Sender::send(Outgoing message) {
    auto transfer = std::make_unique<Transfer>(std::move(message));
    {
        const std::lock_guard<std::mutex> lock(loop_->mutex);
        loop_->queue.push_back(std::move(transfer));
    }
    loop_->wake();
}

void init_curl() {
    if (const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK)
        throw Error(ErrorKind::System, std::string("cannot initialise libcurl: ") + curl_easy_strerror(code));
}

}  // namespace hawf::hawfd
