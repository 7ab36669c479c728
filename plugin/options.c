#include "options.h"

const struct hawf_option hawf_options[HAWF_OPTION_COUNT] = {
    {"hawf-checkpoint", "NAME", "[hawf] open checkpoint NAME when this step (srun) or job (sbatch) ends with exit 0"},
    {"hawf-options", "A,B,...", "[hawf] choices a reviewer may pick (default approve,reject)"},
    {"hawf-params", "KEY:TYPE,...", "[hawf] typed parameters a decision may set (int, float, bool, string, enum(a|b))"},
    {"hawf-timeout", "DURATION",
     "[hawf] take --hawf-default when undecided after DURATION (90s, 1h30m, 1.5h, 2d, [D-]HH:MM:SS)"},
    {"hawf-default", "CHOICE", "[hawf] choice taken when the timeout passes undecided"},
    {"hawf-then", "SCRIPT[:CHOICE,...]", "[hawf] follow-up batch script released by those choices"},
    {"hawf-reviewers", "USER,@GROUP,...", "[hawf] who decides instead of the owner, through hawfd (the owner only if listed)"},
    {"hawf-quorum", "N", "[hawf] how many distinct reviewers must approve the same decision (default 1)"},
    {"hawf-notify", "CHANNEL,...|none",
     "[hawf] who hawfd tells that the checkpoint waits: mail and the site's webhooks (see hawf.yaml notify:)"},
    {"hawf-after", "JOBID:NAME", "[hawf] (set by hawf on the follow-ups it submits) run with that decision"},
};
