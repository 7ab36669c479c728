// Loads the built hawf.so the way Slurm's plugin loader does and finds the symbols
// it looks up. Catches the C++ linkage trap (SPANK_PLUGIN's const arrays are not
// exported from C++) and a plugin_version that does not match the Slurm headers.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>

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
    std::printf("ok: %s (%s), Slurm %u.%02u\n", name, type, version >> 16, (version >> 8) & 0xff);
    return 0;
}
