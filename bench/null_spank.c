/* A SPANK plugin that does nothing: the bench's floor for "a plugin is loaded"
 * (Slurm reads plugstack.conf, dlopens it, looks up its callbacks and calls them). */
#include <slurm/spank.h>

SPANK_PLUGIN(null, 1);

int slurm_spank_init(spank_t sp, int ac, char** av) {
    (void)sp;
    (void)ac;
    (void)av;
    return 0;
}
