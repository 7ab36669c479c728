/* The entry points of hawf_engine.so, which the front plugin (hawf_front.c) looks
 * up with dlsym once a job uses a --hawf-* option. hawf_engine_start takes the
 * plugstack.conf arguments; hawf_engine_option one option value (ID: its index in
 * hawf_options); the others are the SPANK callbacks of the same names. */
#ifndef HAWF_ENGINE_H
#define HAWF_ENGINE_H

#ifdef __cplusplus
extern "C" {
#endif

#include <slurm/spank.h>

int hawf_engine_start(int ac, char** av);
int hawf_engine_option(int id, const char* value, int remote);
int hawf_engine_init_post_opt(spank_t sp, int ac, char** av);
int hawf_engine_user_init(spank_t sp, int ac, char** av);
int hawf_engine_task_init(spank_t sp, int ac, char** av);
int hawf_engine_task_exit(spank_t sp, int ac, char** av);
int hawf_engine_exit(spank_t sp, int ac, char** av);

#ifdef __cplusplus
}
#endif

#endif
