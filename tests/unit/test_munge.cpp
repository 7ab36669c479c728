// munge.hpp against a real, private munged: round trips, and the statuses that
// still authenticate (expired, replayed) versus credentials that do not.
#include "munge.hpp"

#include <gtest/gtest.h>

#include <pwd.h>

#include <chrono>
#include <thread>

#include "error.hpp"
#include "helpers.hpp"
#include "munged.hpp"

namespace hawf {
namespace {

using K = ErrorKind;
using test::MungeTest;

TEST_F(MungeTest, RoundTripIsTheCallerAndTheExactPayload) {
    const std::string payload("{\"op\":\"ping\"}\n\0\xff binary", 23);
    const MungeCredential decoded = munge_decode(munge_encode(payload, socket()), socket());
    EXPECT_EQ(decoded.status, MungeStatus::Valid);
    EXPECT_EQ(decoded.uid, getuid());
    EXPECT_EQ(decoded.gid, getgid());
    EXPECT_EQ(decoded.payload, payload);
    EXPECT_EQ(munge_decode(munge_encode("", socket()), socket()).payload, "");
}

TEST_F(MungeTest, AnotherUsersCredentialNamesThatUser) {
    const struct passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    const int rc = test::run_as(nobody->pw_uid, nobody->pw_gid, [&] {
        const std::string credential = munge_encode("as nobody", socket());
        return write(out[1], credential.data(), credential.size()) == static_cast<ssize_t>(credential.size()) ? 0 : 1;
    });
    close(out[1]);
    ASSERT_EQ(rc, 0);
    std::string credential(4096, '\0');
    credential.resize(static_cast<std::size_t>(std::max<ssize_t>(0, read(out[0], credential.data(), credential.size()))));
    close(out[0]);
    const MungeCredential decoded = munge_decode(credential, socket());
    EXPECT_EQ(decoded.uid, nobody->pw_uid);
    EXPECT_EQ(decoded.gid, nobody->pw_gid);
    EXPECT_EQ(decoded.payload, "as nobody");
}

// What the tools send hawfd: only root decodes it, so another user who sees it
// can neither read it back nor spend it (a decode would mark it replayed).
TEST_F(MungeTest, RootOnlyCredentialCannotBeDecodedByAnotherUser) {
    const struct passwd* nobody = getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody";
    const std::string credential = munge_encode("for hawfd", socket(), 0, MungeDecoder::RootOnly);
    const int rc = test::run_as(nobody->pw_uid, nobody->pw_gid, [&] {
        try {
            munge_decode(credential, socket());
            return 1;
        } catch (const Error& e) {
            return e.kind() == ErrorKind::Untrusted ? 0 : 2;
        }
    });
    EXPECT_EQ(rc, 0);
    const MungeCredential decoded = munge_decode(credential, socket());
    EXPECT_EQ(decoded.status, MungeStatus::Valid);  // the failed attempt did not spend it
    EXPECT_EQ(decoded.payload, "for hawfd");
}

// A second decode and an expired credential still say who wrote what (an audit
// relies on it); the status tells a request to refuse them.
TEST_F(MungeTest, ReplayedStillAuthenticated) {
    const std::string credential = munge_encode("once", socket());
    EXPECT_EQ(munge_decode(credential, socket()).status, MungeStatus::Valid);
    const MungeCredential again = munge_decode(credential, socket());
    EXPECT_EQ(again.status, MungeStatus::Replayed);
    EXPECT_EQ(again.uid, getuid());
    EXPECT_EQ(again.payload, "once");
    EXPECT_STREQ(to_string(again.status), "replayed");
}

TEST_F(MungeTest, ExpiredStillAuthenticated) {
    const std::string credential = munge_encode("short-lived", socket(), 1);
    // munged counts whole seconds: expired once a second has passed after the TTL.
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    const MungeCredential late = munge_decode(credential, socket());
    EXPECT_EQ(late.status, MungeStatus::Expired);
    EXPECT_EQ(late.uid, getuid());
    EXPECT_EQ(late.payload, "short-lived");
}

TEST_F(MungeTest, ForgedAndGarbageAreUntrusted) {
    std::string credential = munge_encode("{\"op\":\"ping\"}", socket());
    std::string forged = credential;
    forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
    EXPECT_HAWF_ERROR(munge_decode(forged, socket()), K::Untrusted, "invalid munge credential");
    EXPECT_HAWF_ERROR(munge_decode("garbage", socket()), K::Untrusted, "invalid munge credential");
    EXPECT_HAWF_ERROR(munge_decode("", socket()), K::Untrusted, "invalid munge credential");
    EXPECT_HAWF_ERROR(munge_decode(credential + std::string(1, '\0') + "x", socket()), K::Untrusted, "NUL");
    EXPECT_EQ(munge_decode(credential, socket()).status, MungeStatus::Valid);  // the original was never consumed
}

TEST_F(MungeTest, AnotherKeysCredentialIsUntrusted) {
    test::Munged other(test::find_munged());
    EXPECT_HAWF_ERROR(munge_decode(munge_encode("elsewhere", other.socket()), socket()), K::Untrusted,
                      "invalid munge credential");
}

TEST_F(MungeTest, UnreachableMungedIsASystemErrorNamingTheSocket) {
    const std::string missing = socket() + ".missing";
    EXPECT_HAWF_ERROR(munge_encode("x", missing), K::System, missing);
    EXPECT_HAWF_ERROR(munge_decode(munge_encode("x", socket()), missing), K::System, missing);
}

}  // namespace
}  // namespace hawf
