#include "munge.hpp"

#include <munge.h>

#include <cstdlib>
#include <memory>
#include <type_traits>

#include "error.hpp"

namespace hawf {
namespace {

using Context = std::unique_ptr<std::remove_pointer_t<munge_ctx_t>, decltype(&munge_ctx_destroy)>;

Context context(const std::string& socket) {
    Context ctx(munge_ctx_create(), munge_ctx_destroy);
    if (!ctx) throw Error(ErrorKind::System, "munge: cannot create a context: out of memory");
    if (!socket.empty() && munge_ctx_set(ctx.get(), MUNGE_OPT_SOCKET, socket.c_str()) != EMUNGE_SUCCESS)
        throw Error(ErrorKind::System, "munge: cannot use socket " + socket + ": " + munge_ctx_strerror(ctx.get()));
    return ctx;
}

// libmunge's message; it names the socket when munged is not there.
std::string detail(munge_ctx_t ctx, munge_err_t err) {
    const char* text = munge_ctx_strerror(ctx);
    return text ? text : munge_strerror(err);
}

// Failing to talk to munged is the system's fault; anything else in a decode is
// the credential's.
bool unreachable(munge_err_t err) {
    return err == EMUNGE_SOCKET || err == EMUNGE_TIMEOUT || err == EMUNGE_SNAFU || err == EMUNGE_NO_MEMORY;
}

}  // namespace

const char* to_string(MungeStatus status) {
    switch (status) {
        case MungeStatus::Valid: return "valid";
        case MungeStatus::Expired: return "expired";
        case MungeStatus::Replayed: return "replayed";
    }
    return "?";
}

std::string munge_encode(const std::string& payload, const std::string& socket, int ttl_s, MungeDecoder decoder) {
    Context ctx = context(socket);
    if (ttl_s > 0 && munge_ctx_set(ctx.get(), MUNGE_OPT_TTL, ttl_s) != EMUNGE_SUCCESS)
        throw Error(ErrorKind::System, "munge: cannot set the TTL: " + std::string(munge_ctx_strerror(ctx.get())));
    if (decoder == MungeDecoder::RootOnly && munge_ctx_set(ctx.get(), MUNGE_OPT_UID_RESTRICTION, uid_t(0)) != EMUNGE_SUCCESS)
        throw Error(ErrorKind::System, "munge: cannot restrict the decoder: " + std::string(munge_ctx_strerror(ctx.get())));
    char* cred = nullptr;
    const munge_err_t err = munge_encode(&cred, ctx.get(), payload.data(), static_cast<int>(payload.size()));
    std::unique_ptr<char, decltype(&std::free)> owned(cred, std::free);
    if (err != EMUNGE_SUCCESS) throw Error(ErrorKind::System, "munge cannot make a credential: " + detail(ctx.get(), err));
    return cred;
}

MungeCredential munge_decode(const std::string& credential, const std::string& socket) {
    // libmunge reads a C string: a NUL would hide what follows it.
    if (credential.find('\0') != std::string::npos)
        throw Error(ErrorKind::Untrusted, "invalid munge credential: it holds a NUL byte");
    Context ctx = context(socket);
    void* data = nullptr;
    int len = 0;
    MungeCredential out;
    const munge_err_t err = munge_decode(credential.c_str(), ctx.get(), &data, &len, &out.uid, &out.gid);
    std::unique_ptr<void, decltype(&std::free)> owned(data, std::free);
    switch (err) {
        case EMUNGE_SUCCESS: out.status = MungeStatus::Valid; break;
        case EMUNGE_CRED_EXPIRED: out.status = MungeStatus::Expired; break;
        case EMUNGE_CRED_REPLAYED: out.status = MungeStatus::Replayed; break;
        default:
            if (unreachable(err)) throw Error(ErrorKind::System, "munge cannot decode: " + detail(ctx.get(), err));
            throw Error(ErrorKind::Untrusted, "invalid munge credential: " + detail(ctx.get(), err));
    }
    if (data && len > 0) out.payload.assign(static_cast<const char*>(data), static_cast<std::size_t>(len));
    return out;
}

}  // namespace hawf
