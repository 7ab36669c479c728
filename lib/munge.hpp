// Munge credentials (libmunge): how hawfd learns who sent a request. munged signs
// the caller's uid, gid and a payload; whoever decodes it with the same key gets
// them back authenticated, so no password or key of the user ever travels.
#pragma once

#include <sys/types.h>

#include <string>

namespace hawf {

enum class MungeStatus {
    Valid,
    Expired,   // older than its TTL: uid, gid and payload are still authentic
    Replayed,  // this munged decoded it before: likewise still authentic
};
const char* to_string(MungeStatus status);

struct MungeCredential {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string payload;
    MungeStatus status = MungeStatus::Valid;
};

// Who may decode a credential: anyone, or only root (what goes to hawfd: a
// credential seen on the wire cannot then be decoded, read or spent by another user).
enum class MungeDecoder { Anyone, RootOnly };

// A credential ("MUNGE:...:") for PAYLOAD, as the calling user. SOCKET: munged's
// socket ("" = libmunge's default); TTL_S: seconds it stays valid (0 = munged's
// default; munged caps it at its --max-ttl). Throws Error(System) if munged
// cannot make one.
std::string munge_encode(const std::string& payload, const std::string& socket = "", int ttl_s = 0,
                         MungeDecoder decoder = MungeDecoder::Anyone);

// Decodes CREDENTIAL. Expired and replayed credentials are returned with their
// status (the caller decides: a request refuses them, an audit accepts them);
// anything else that is not valid throws Error(Untrusted), and Error(System)
// when munged cannot be reached.
MungeCredential munge_decode(const std::string& credential, const std::string& socket = "");

}  // namespace hawf
