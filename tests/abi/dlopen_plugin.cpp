// Loads the built hawf.so the way Slurm's plugin loader does and finds the symbols
// it looks up. Catches the C++ linkage trap (SPANK_PLUGIN's const arrays are not
// exported from C++) and a plugin_version that does not match the Slurm headers.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>

extern "C" {
#include <slurm/slurm_version.h>
}

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        std::fprintf(stderr, "usage: %s PLUGIN.so [MAJOR.MINOR]\n", argv[0]);
        return 2;
    }
    // Lazy: the spank_* functions the plugin calls come from the loading process.
    void* plugin = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
    if (!plugin) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    int failures = 0;
    for (const char* symbol : {"plugin_name", "plugin_type", "plugin_version", "spank_plugin_version",
                               "slurm_spank_init", "slurm_spank_init_post_opt", "slurm_spank_user_init",
                               "slurm_spank_task_init", "slurm_spank_task_exit", "slurm_spank_exit"}) {
        if (!dlsym(plugin, symbol)) {
            std::fprintf(stderr, "missing symbol %s\n", symbol);
            ++failures;
        }
    }
    if (failures) return 1;
    const char* name = static_cast<const char*>(dlsym(plugin, "plugin_name"));
    const char* type = static_cast<const char*>(dlsym(plugin, "plugin_type"));
    unsigned version = *static_cast<const unsigned*>(dlsym(plugin, "plugin_version"));
    if (std::strcmp(name, "hawf") != 0 || std::strcmp(type, "spank") != 0) {
        std::fprintf(stderr, "plugin_name/plugin_type are \"%s\"/\"%s\", expected \"hawf\"/\"spank\"\n", name, type);
        return 1;
    }
    // Slurm loads a plugin only if its major.minor matches the running Slurm: the one
    // whose headers this test is built with, or the release named (23.11: 0x170b).
    unsigned major = SLURM_VERSION_NUMBER >> 16, minor = (SLURM_VERSION_NUMBER >> 8) & 0xff;
    if (argc == 3 && std::sscanf(argv[2], "%u.%u", &major, &minor) != 2) {
        std::fprintf(stderr, "bad release \"%s\": expected MAJOR.MINOR, e.g. 23.11\n", argv[2]);
        return 2;
    }
    if ((version >> 8) != ((major << 8) | minor)) {
        std::fprintf(stderr, "plugin_version %#x does not match Slurm %u.%02u\n", version, major, minor);
        return 1;
    }
    // 25.05+: a failing slurm_spank_init fails the job (ESPANK_JOB_FAILURE) rather than
    // drain the node; older releases do not look the symbol up.
    const auto* failure_mode = static_cast<const int*>(dlsym(plugin, "slurm_spank_init_failure_mode"));
    const bool has_mode = ((major << 8) | minor) >= ((25u << 8) | 5u);
    constexpr int espank_job_failure = 3012;  // slurm_errno.h of 25.05+
    if (has_mode != (failure_mode != nullptr) || (failure_mode && *failure_mode != espank_job_failure)) {
        std::fprintf(stderr, "slurm_spank_init_failure_mode: %s, expected %s\n",
                     failure_mode ? std::to_string(*failure_mode).c_str() : "not exported",
                     has_mode ? "3012 (ESPANK_JOB_FAILURE)" : "not exported before 25.05");
        return 1;
    }
    // The engine beside it, which the front loads for a job that uses hawf.
    std::string engine_path = argv[1];
    engine_path = engine_path.substr(0, engine_path.rfind('/') + 1) + "hawf_engine.so";
    void* engine = dlopen(engine_path.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (!engine) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    for (const char* symbol : {"hawf_engine_start", "hawf_engine_option", "hawf_engine_init_post_opt",
                               "hawf_engine_user_init", "hawf_engine_task_init", "hawf_engine_task_exit",
                               "hawf_engine_exit"})
        if (!dlsym(engine, symbol)) {
            std::fprintf(stderr, "%s: missing symbol %s\n", engine_path.c_str(), symbol);
            return 1;
        }
    std::printf("ok: %s (%s), Slurm %u.%02u, and its engine\n", name, type, version >> 16, (version >> 8) & 0xff);
    return 0;
}
