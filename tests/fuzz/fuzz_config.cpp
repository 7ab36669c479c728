// hawf.yaml: load_config on the input, written to a memory file (memfd) that
// load_config opens by its /proc/self/fd path, so nothing touches the disk and
// lib/config.cpp is used exactly as the tools use it.
//
// Loaded: what load_config promises holds (limits within their ceilings, default
// options a checkpoint may have, policies and notifications only with hawfd, the
// default channels among those offered, addresses that parse), and the policies
// apply to a job without surprises.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "config.hpp"
#include "fuzz.hpp"
#include "review.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;

namespace {

int memory_file() {
    static const int fd = [] {
        const int made = memfd_create("hawf.yaml", MFD_CLOEXEC);
        if (made < 0) fuzz::finding("memfd_create failed");
        return made;
    }();
    return fd;
}

void check_loaded(const Config& c) {
    const Limits ceilings = Limits::ceilings();
    expect(c.found, "a config read from a file that exists is not found");
    const auto within = [&](std::size_t value, std::size_t lo, std::size_t hi, const char* key) {
        expect(value >= lo && value <= hi, std::string("limits.") + key + " = " + std::to_string(value) +
                                               " outside " + std::to_string(lo) + ".." + std::to_string(hi));
    };
    within(c.limits.max_param_bytes, 1, ceilings.max_param_bytes, "max_param_bytes");
    within(c.limits.max_comment_bytes, 0, ceilings.max_comment_bytes, "max_comment_bytes");
    within(c.limits.max_options, 1, ceilings.max_options, "max_options");
    within(c.limits.max_params, 0, ceilings.max_params, "max_params");
    within(c.limits.max_checkpoints, 1, ceilings.max_checkpoints, "max_checkpoints");
    within(c.limits.max_record_bytes, 65536, ceilings.max_record_bytes, "max_record_bytes");
    within(c.limits.max_events, 100, ceilings.max_events, "max_events");
    expect(!c.spool.empty() && c.spool[0] == '/', "spool is not an absolute path");
    expect(c.poll_interval_s > 0 && c.poll_interval_s <= max_duration_s, "poll_interval out of range");
    expect(c.default_options.size() <= c.limits.max_options, "more default options than limits.max_options");
    must("parse_choices of the default options", [&] { parse_choices(joined(c.default_options, ",")); });
    expect(c.policies.empty() || c.hawfd_configured(), "policies without hawfd.address");
    expect(!c.notify.configured() || c.hawfd_configured(), "notify without hawfd.address");
    if (!c.hawfd.address.empty()) must("parse_host_port of hawfd.address", [&] { parse_host_port(c.hawfd.address, "a"); });
    if (!c.hawfd.listen.empty()) must("parse_host_port of hawfd.listen", [&] { parse_host_port(c.hawfd.listen, "l"); });
    if (!c.notify.default_channels.empty())
        must("check_notify_channels of notify.default",
             [&] { check_notify_channels(c.notify, c.notify.default_channels, c.path); });
    for (const Policy& p : c.policies) {
        expect(!p.reviewers.empty(), "a policy without reviewers");
        must("check_reviewers of a policy", [&] { check_reviewers(p.reviewers); });
        expect(p.quorum >= 1 && p.quorum <= max_quorum, "a policy's quorum out of range");
    }
    // The policies as the plugin applies them when a checkpoint opens: the spec they
    // make is checked like any other (too many requirements is a refusal).
    CheckpointSpec spec;
    spec.id = CheckpointId{"4242", "eval"};
    spec.owner_uid = 1001;
    spec.owner = "alice";
    spec.options = c.default_options;
    apply_policies(c.policies, JobFacts{"gpu", "ml-team", "normal"}, spec);
    accepted({ErrorKind::Usage}, "CheckpointSpec::check after apply_policies", [&] { spec.check(c.limits); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fd = memory_file();
    if (ftruncate(fd, 0) != 0) fuzz::finding("ftruncate of the memory file failed");
    for (std::size_t done = 0; done < size;) {
        const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
        if (n <= 0) fuzz::finding("pwrite to the memory file failed");
        done += static_cast<std::size_t>(n);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    Config config;
    if (accepted({ErrorKind::Config}, "load_config", [&] { config = load_config(path); })) check_loaded(config);
    return 0;
}
