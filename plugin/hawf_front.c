/* hawf.so, the SPANK plugin Slurm loads: srun, sbatch, salloc and slurmstepd load
 * it for every job, and few jobs use hawf. So this part is small and plain C: it
 * registers the --hawf-* options and nothing else. The first --hawf-* option a job
 * uses loads the engine (hawf_engine.so, beside this file: C++, libyaml) and hands
 * it that option and every callback after. A job without one maps nothing more.
 *
 * Fail closed: if the engine cannot be loaded, srun/sbatch refuse the option
 * (exit 1, one hawf: line); in slurmstepd the job's tasks fail in task_init.
 * Never drain a node: nothing here fails slurm_spank_init or user_init. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "engine.h"
#include "options.h"

const char plugin_name[] = "hawf";
const char plugin_type[] = "spank";
const unsigned int plugin_version = SLURM_VERSION_NUMBER;
const unsigned int spank_plugin_version = 1;

#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 5, 0)
/* Should slurm_spank_init ever fail, Slurm fails the job instead of draining the
 * node (25.05+). */
int slurm_spank_init_failure_mode = ESPANK_JOB_FAILURE;
#endif

static struct {
    int ac;
    char** av;       /* plugstack.conf's arguments (Slurm keeps them for the plugin's life) */
    void* handle;    /* the engine, once loaded */
    int failed;      /* it could not be loaded: the job must not run without it */
    int (*option)(int, const char*, int);
    spank_f* post_opt;
    spank_f* user_init;
    spank_f* task_init;
    spank_f* task_exit;
    spank_f* exit;
} engine;

/* The engine's function NAME into *FN (a function pointer of SIZE bytes); 0 if it
 * has none. (ISO C has no cast from dlsym's object pointer to a function pointer.) */
static int find(const char* name, void* fn, size_t size) {
    void* symbol = dlsym(engine.handle, name);
    memcpy(fn, &symbol, size);
    return symbol != NULL;
}

/* Loads the engine beside this file; 0 on success. */
static int load_engine(void) {
    Dl_info self;
    char real[PATH_MAX], path[PATH_MAX];
    const char* slash;
    int (*start)(int, char**) = NULL;
    if (engine.handle) return 0;
    if (engine.failed) return -1;
    engine.failed = 1;
    /* Beside the file itself, also when plugstack.conf names a symbolic link to it. */
    if (!dladdr(plugin_name, &self) || !self.dli_fname || !realpath(self.dli_fname, real) ||
        !(slash = strrchr(real, '/')) ||
        snprintf(path, sizeof path, "%.*s/hawf_engine.so", (int)(slash - real), real) >= (int)sizeof path) {
        slurm_error("hawf: cannot tell where hawf.so is, to load hawf_engine.so beside it");
        return -1;
    }
    /* Lazy, as Slurm loads plugins: the spank_* functions come from this process. */
    engine.handle = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (!engine.handle) {
        slurm_error("hawf: cannot load %s: %s", path, dlerror());
        return -1;
    }
    if (!find("hawf_engine_start", &start, sizeof start) || !find("hawf_engine_option", &engine.option, sizeof engine.option) ||
        !find("hawf_engine_init_post_opt", &engine.post_opt, sizeof engine.post_opt) ||
        !find("hawf_engine_user_init", &engine.user_init, sizeof engine.user_init) ||
        !find("hawf_engine_task_init", &engine.task_init, sizeof engine.task_init) ||
        !find("hawf_engine_task_exit", &engine.task_exit, sizeof engine.task_exit) ||
        !find("hawf_engine_exit", &engine.exit, sizeof engine.exit)) {
        slurm_error("hawf: %s is not a hawf engine of this release (a hawf_engine_* function is missing)", path);
        dlclose(engine.handle);
        engine.handle = NULL;
        return -1;
    }
    engine.failed = 0;
    return start(engine.ac, engine.av);
}

/* Every --hawf-* option: VAL is its index in hawf_options. */
static int on_option(int val, const char* value, int remote) {
    if (load_engine() != 0) return remote ? 0 : -1; /* slurmstepd: task_init fails the job */
    return engine.option(val, value, remote);
}

int slurm_spank_init(spank_t sp, int ac, char** av) {
    int i;
    const spank_context_t where = spank_context();
    engine.ac = ac;
    engine.av = av;
    if (where != S_CTX_LOCAL && where != S_CTX_ALLOCATOR && where != S_CTX_REMOTE) return 0;
    for (i = 0; i < HAWF_OPTION_COUNT; ++i) {
        struct spank_option opt = {(char*)hawf_options[i].name, (char*)hawf_options[i].arginfo,
                                   (char*)hawf_options[i].usage, 1, i, on_option};
        if (spank_option_register(sp, &opt) != ESPANK_SUCCESS)
            slurm_error("hawf: cannot register --%s", hawf_options[i].name);
    }
    return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char** av) {
    return engine.handle ? engine.post_opt(sp, ac, av) : 0;
}

int slurm_spank_user_init(spank_t sp, int ac, char** av) {
    return engine.handle ? engine.user_init(sp, ac, av) : 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char** av) {
    if (engine.failed) {
        slurm_error("hawf: this job asked for hawf, and hawf_engine.so could not be loaded on this node");
        return -1;
    }
    return engine.handle ? engine.task_init(sp, ac, av) : 0;
}

int slurm_spank_task_exit(spank_t sp, int ac, char** av) {
    return engine.handle ? engine.task_exit(sp, ac, av) : 0;
}

int slurm_spank_exit(spank_t sp, int ac, char** av) {
    return engine.handle ? engine.exit(sp, ac, av) : 0;
}
