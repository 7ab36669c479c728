#include "request.hpp"

#include "error.hpp"

namespace hawf::plugin {

const OptionInfo option_table[7] = {
    {Opt::Checkpoint, "hawf-checkpoint", "NAME",
     "[hawf] open checkpoint NAME when this step (srun) or job (sbatch) ends with exit 0"},
    {Opt::Options, "hawf-options", "A,B,...", "[hawf] choices a reviewer may pick (default approve,reject)"},
    {Opt::Params, "hawf-params", "KEY:TYPE,...", "[hawf] typed parameters a decision may set (int, float, bool, string, enum(a|b))"},
    {Opt::Timeout, "hawf-timeout", "DURATION", "[hawf] take --hawf-default when undecided after DURATION (90s, 30m, 24h, 2d)"},
    {Opt::Default, "hawf-default", "CHOICE", "[hawf] choice taken when the timeout passes undecided"},
    {Opt::Then, "hawf-then", "SCRIPT[:CHOICE,...]", "[hawf] follow-up batch script released by those choices"},
    {Opt::After, "hawf-after", "JOBID:NAME", "[hawf] (set by hawf on the follow-ups it submits) run with that decision"},
};

namespace {

const char* name_of(Opt id) {
    for (const auto& o : option_table)
        if (o.id == id) return o.name;
    return "?";
}

}  // namespace

void Request::set(Opt id, const std::string& value) {
    try {
        switch (id) {
            case Opt::Checkpoint: check_name(value); checkpoint_ = value; break;
            case Opt::Options: parse_choices(value); options_ = value; break;
            case Opt::Params: parse_param_specs(value); params_ = value; break;
            case Opt::Timeout: parse_duration(value); timeout_ = value; break;
            case Opt::Default: check_name(value, "choice"); default_ = value; break;
            case Opt::Then:
                // Slurm hands slurmstepd one value per option: a second would be lost.
                if (then_ && *then_ != value)
                    throw Error(ErrorKind::Usage, "given twice: for several follow-ups (branches) use "
                                                  "hawf-await --then=SCRIPT --on=CHOICE JOBID:NAME");
                parse_then(value);
                then_ = value;
                break;
            case Opt::After: parse_checkpoint_id(value); after_ = value; break;
        }
    } catch (const Error& e) {
        throw Error(ErrorKind::Usage, std::string("--") + name_of(id) + ": " + e.what());
    }
}

bool Request::any() const {
    return checkpoint_ || options_ || params_ || timeout_ || default_ || then_ || after_;
}

std::optional<CheckpointId> Request::after() const {
    return after_ ? std::optional<CheckpointId>(parse_checkpoint_id(*after_)) : std::nullopt;
}

CheckpointSpec Request::spec(const CheckpointId& id, uid_t owner_uid, const std::string& owner,
                             const std::string& scope, const std::vector<std::string>& default_options,
                             const Limits& limits) const {
    if (!checkpoint_)
        throw Error(ErrorKind::Usage, "--hawf-options, --hawf-params, --hawf-timeout, --hawf-default and "
                                      "--hawf-then need --hawf-checkpoint=NAME");
    CheckpointSpec spec;
    spec.id = id;
    spec.owner_uid = owner_uid;
    spec.owner = owner;
    spec.scope = scope;
    spec.options = options_ ? parse_choices(*options_) : default_options;
    if (params_) spec.params = parse_param_specs(*params_);
    if (timeout_) spec.timeout_s = parse_duration(*timeout_);
    if (default_) spec.default_choice = *default_;
    if (then_) spec.then.push_back(parse_then(*then_));
    spec.check(limits);
    return spec;
}

}  // namespace hawf::plugin
