// hawfd's notifications on the wire: webhooks (HTTP POST) and mail (SMTP), sent by
// one thread driving a libcurl multi handle, so every message is in flight at once
// and a server that never answers holds up only its own message. What to send and
// what to do with the outcome (retries, the idempotency key's bookkeeping) is the
// caller's; this only makes one attempt per message and says how it went.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace hawf::hawfd {

// One message to send. Webhook: HTTP(S) POST of BODY (JSON) to URL. Mail: SMTP(S) to URL,
// MAIL FROM `from`, RCPT TO each of `recipients`, DATA = BODY (a whole RFC 5322 message with
// CRLF line ends, already rendered by the caller; libcurl does the dot-stuffing).
struct Outgoing {
    enum class Kind { Webhook, Mail };
    enum class StartTls { Optional, Required, Off };  // smtp:// only (smtps:// is TLS from the start)
    Kind kind = Kind::Webhook;
    std::string key;                      // idempotency key; webhook: header X-Hawf-Event-Id
    std::string url;
    std::string body;
    std::string from;                     // mail
    std::vector<std::string> recipients;  // mail
    std::string user, password;           // SMTP AUTH when user is not empty
    StartTls starttls = StartTls::Optional;
    std::chrono::milliseconds timeout{20000};  // the whole attempt; connect bounded by min(timeout, 10 s)
};

struct SendResult {
    bool ok = false;
    bool permanent = false;   // retrying cannot help (e.g. HTTP 400/404, SMTP 5xx, bad URL/protocol)
    std::string error;        // one line when !ok: "HTTP 500", "connect timed out after 2000 ms", curl's text...
};

// A thread running a curl multi handle: every message in flight at once (at most
// MAX_IN_FLIGHT; more wait in a queue), so a webhook that never answers delays
// nothing else. DONE is called on the sender's thread once per message sent.
class Sender {
public:
    using Done = std::function<void(const Outgoing&, const SendResult&)>;
    explicit Sender(Done done, std::size_t max_in_flight = 64);
    ~Sender();  // stops: transfers in flight are abandoned without calling DONE
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;
    void send(Outgoing message);  // thread-safe; returns at once, never touches the network

private:
    struct Loop;                  // the queue shared with send(), and the curl state of the thread
    std::unique_ptr<Loop> loop_;
    std::thread thread_;          // last: started once the loop exists
};

// curl_global_init, once, before any thread: hawfd's main calls it.
void init_curl();

}  // namespace hawf::hawfd
