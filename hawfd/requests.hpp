// What hawfd does with one request line: check the envelope, authenticate the
// munge credential, run the op its payload names, and say what to answer and log.
// No network here (server.hpp), so the unit tests drive it with a private munged.
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

#include "error.hpp"

namespace hawf::hawfd {

// An authenticated request, as an op sees it.
struct Request {
    std::string peer;        // "127.0.0.1:51234", for the log
    std::string credential;  // as received: an approval keeps it as its proof
    uid_t uid = 0;           // who made the credential: munge vouches for it
    gid_t gid = 0;
    std::string user;        // uid's name, or the number if it has none
    nlohmann::json payload;  // the op and its arguments (a JSON object)
};

// The answer to send (a JSON object) and the line to log about it (escaped: it
// quotes what the client sent).
struct Outcome {
    nlohmann::json answer;
    std::string log;
};

struct Service;

// Answers LINE (the request without its newline) from PEER, decoding with munged
// at service.munge_socket(). Every refusal is an answer: only running out of
// memory throws.
Outcome handle_request(const std::string& line, const std::string& peer, const Service& service);

// The answer to a request that never arrived whole (too long, too slow).
Outcome refuse(const std::string& peer, const Error& why);

// One line to send: the answer's JSON (invalid UTF-8 replaced) and a newline.
std::string answer_line(const nlohmann::json& answer);

}  // namespace hawf::hawfd
