// hawf-oci-run: runs an OCI runtime (runc, crun) for Slurm's native containers after
// binding, in the bundle's config.json, the paths the task's HAWF_* variables name.
// Since Slurm 23.02 slurmstepd writes a step's config.json after the SPANK callbacks,
// from the step's environment: the variables arrive by themselves, the directories
// they name do not. A site puts this program in front of the runtime in oci.conf:
//   RunTimeRun="exec /usr/libexec/hawf/hawf-oci-run runc --root=... run %n.%u.%j.%s.%t -b %b"
// It runs as the job's user and changes nothing for a task without those variables.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "container.hpp"
#include "error.hpp"

using namespace hawf;

namespace {

constexpr char usage[] = R"(usage: hawf-oci-run RUNTIME [ARGUMENT...]

Binds the paths a task's HAWF_CHECKPOINT_DIR, HAWF_AFTER_DIR and HAWF_DECISION_FILE
name into the OCI bundle's config.json (the bundle of -b/--bundle, else the current
directory), at the same path, then execs RUNTIME with the ARGUMENTs. For Slurm's
oci.conf (see spank-hawf(8), "CONTAINERS"); run as the job's user.
)";

// The bundle runc and crun are given: -b DIR, --bundle DIR, -b=DIR, --bundle=DIR; else ".".
std::string bundle_of(const std::vector<std::string>& args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "-b" || a == "--bundle") && i + 1 < args.size()) return args[i + 1];
        for (const char* prefix : {"-b=", "--bundle="})
            if (a.rfind(prefix, 0) == 0) return a.substr(std::strlen(prefix));
    }
    return ".";
}

// Adds the binds the config's own process.env calls for, if any. Slurm writes it as
// root (22.05) or as the user (23.02+); a bundle's own is the user's.
void bind_hawf_paths(const std::string& bundle) {
    const std::string path = bundle + "/config.json";
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return;  // the runtime says what is wrong
    amend_oci_config_file(path, st.st_uid == 0 ? 0 : getuid(), {});
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << usage;
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        std::cout << "hawf-oci-run " << HAWF_VERSION << "\n";
        return 0;
    }
    try {
        bind_hawf_paths(bundle_of(args));
    } catch (const std::exception& e) {  // fail closed: the task asked for hawf's paths
        std::cerr << "hawf-oci-run: " << e.what() << "\n";
        return 1;
    }
    execvp(argv[1], argv + 1);
    std::cerr << "hawf-oci-run: cannot run " << argv[1] << ": " << std::strerror(errno) << "\n";
    return 127;
}
