/* The --hawf-* options, in C: the front plugin (hawf_front.c) registers them with
 * Slurm, the engine (request.cpp) reads their values. Entry i is option
 * hawf::plugin::Opt(i); each option's `val` in Slurm is its index. */
#ifndef HAWF_OPTIONS_H
#define HAWF_OPTIONS_H

#ifdef __cplusplus
extern "C" {
#endif

struct hawf_option {
    const char* name; /* the long option, without "--" */
    const char* arginfo;
    const char* usage;
};

#define HAWF_OPTION_COUNT 10
extern const struct hawf_option hawf_options[HAWF_OPTION_COUNT];

#ifdef __cplusplus
}
#endif

#endif
