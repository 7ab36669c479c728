// Talking to hawfd. One request per TCP connection, one line of JSON each way:
//   -> {"v":1,"credential":"MUNGE:..."}   the credential's payload is the op, e.g. {"op":"ping"}
//   <- {"ok":true,...} or {"ok":false,"error":"one line","kind":"denied"}
// The munge credential authenticates the caller and seals the op, so the plain
// TCP connection needs no secret of its own. Both sides share what is here.
#pragma once

#include <netdb.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "record.hpp"
#include "error.hpp"

namespace hawf {

constexpr int hawfd_protocol_version = 1;
// The request line, newline included: a credential of max_credential_bytes and its envelope.
constexpr std::size_t hawfd_max_request_bytes = 512 * 1024;
constexpr std::size_t hawfd_max_answer_bytes = 8 * 1024 * 1024;  // a reviewer's listing: 5,000 rows

// Sends OP (a JSON object: "op" and its arguments) to hawfd at config.hawfd.address,
// sealed in a munge credential made as the caller on config.hawfd.munge_socket, and
// returns hawfd's answer ({"ok":true,...}). Throws Error(System) when hawfd cannot
// be reached or does not answer within TIMEOUT, and when hawfd refuses, an Error
// of the kind it names (Denied if none) carrying its one-line reason.
nlohmann::json hawfd_request(const Config& config, const nlohmann::json& op,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Tells hawfd (if configured) to look at OWNER's checkpoint ID, which the caller just
// changed: its notices and deadline (hawfd reads what is owed from the log itself).
// A hint, never waited on for long nor an error: false if hawfd did not take it
// within nudge_timeout (its periodic rescan finds the checkpoint then).
constexpr std::chrono::milliseconds nudge_timeout{1000};
bool nudge_hawfd(const Config& config, uid_t owner, const CheckpointId& id) noexcept;

// Error kinds as the protocol spells them ("usage", "denied", ...), both ways; an
// unknown name is Denied.
const char* error_kind_name(ErrorKind kind);
ErrorKind error_kind_from_name(const std::string& name);

// The TCP addresses of ENDPOINT (getaddrinfo; PASSIVE: to listen on), in its order.
// Throws Error(System) "FAILING: the resolver's reason" when there are none.
using AddressList = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;
AddressList resolve(const HostPort& endpoint, bool passive, const std::string& failing);

// Line I/O on a non-blocking socket, bounded in time and size.
using Deadline = std::chrono::steady_clock::time_point;
enum class LineRead { Ok, TooLong, Closed, TimedOut, Failed };
// One line into LINE (without its newline) if it arrives before DEADLINE within
// MAX_BYTES (newline included). Bytes after the newline are ignored.
LineRead read_line(int fd, std::size_t max_bytes, Deadline deadline, std::string& line);
// All of DATA before DEADLINE; false if the peer is gone or too slow.
bool write_all(int fd, const std::string& data, Deadline deadline);

}  // namespace hawf
