// hawfd's network side: the listening sockets, one thread per connection (a
// bounded number at once, so a crowd of clients can neither block each other nor
// exhaust memory), each request read within a deadline, and a clean stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fsutil.hpp"
#include "service.hpp"

namespace hawf::hawfd {

struct ServerLimits {
    std::size_t max_connections = 64;         // more at once are told to try again
    std::chrono::seconds request_timeout{5};  // to send the whole request line
    std::chrono::seconds answer_timeout{5};   // to take the answer
};

class Server {
public:
    // Binds every address service.config.hawfd.listen names; throws Error(System) if
    // none works. SERVICE must outlive the server.
    Server(const Service& service, ServerLimits limits = {});

    // Serves until STOP_FD (a signalfd) is readable, then stops accepting and
    // returns once the requests in flight are answered.
    void run(int stop_fd);

    // The addresses it listens on, as "HOST:PORT".
    const std::vector<std::string>& addresses() const { return addresses_; }

private:
    void accept_one(int listen_fd);
    void serve(Fd connection, const std::string& peer);

    const Service& service_;
    ServerLimits limits_;
    std::vector<Fd> listeners_;
    std::vector<std::string> addresses_;
    std::mutex mutex_;
    std::condition_variable idle_;
    std::size_t active_ = 0;  // connections being served
};

// One line on stderr (journald keeps it), whole even when threads log at once.
void log_line(std::string_view line) noexcept;

}  // namespace hawf::hawfd
