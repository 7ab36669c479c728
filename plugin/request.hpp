// The --hawf-* options a job or step was given: each value is validated as it
// arrives (so srun/sbatch refuse it at once), the combination when all are in.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "record.hpp"

namespace hawf::plugin {

enum class Opt { Checkpoint, Options, Params, Timeout, Default, Then, After };

struct OptionInfo {
    Opt id;
    const char* name;     // the long option, without "--"
    const char* arginfo;
    const char* usage;
};
extern const OptionInfo option_table[7];

class Request {
public:
    // Validates and stores one option; throws Error(Usage) naming the option.
    void set(Opt id, const std::string& value);

    bool any() const;
    const std::optional<std::string>& checkpoint() const { return checkpoint_; }
    const std::optional<std::string>& then() const { return then_; }
    std::optional<CheckpointId> after() const;

    // The checkpoint these options describe; throws Error(Usage) for a bad combination.
    CheckpointSpec spec(const CheckpointId& id, uid_t owner_uid, const std::string& owner, const std::string& scope,
                        const std::vector<std::string>& default_options, const Limits& limits = Limits{}) const;

private:
    std::optional<std::string> checkpoint_, options_, params_, timeout_, default_, then_, after_;
};

}  // namespace hawf::plugin
