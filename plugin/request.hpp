// The --hawf-* options a job or step was given: each value is validated as it
// arrives (so srun/sbatch refuse it at once), the combination when all are in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "options.h"
#include "record.hpp"

namespace hawf::plugin {

// In the order of hawf_options (options.h): Opt(i) is hawf_options[i].
enum class Opt { Checkpoint, Options, Params, Timeout, Default, Then, Reviewers, Quorum, Notify, After };
static_assert(static_cast<int>(Opt::After) + 1 == HAWF_OPTION_COUNT, "Opt and hawf_options differ");
inline const char* name_of(Opt id) { return hawf_options[static_cast<int>(id)].name; }

class Request {
public:
    // Validates and stores one option; throws Error(Usage) naming the option.
    void set(Opt id, const std::string& value);
    // slurmstepd: a value can arrive there unchecked (SPANK's environment variables, a
    // submit host without hawf) or fail where it passed (a group unknown on this node).
    // A refused value is kept as an error that spec() raises: the job fails closed
    // instead of running without, say, its reviewers. Returns why it was refused ("" if taken).
    std::string collect(Opt id, const std::string& value);

    // The values as given, refused ones too (by option name): what slurmstepd hands
    // hawf-step-helper, which collects them again (from_given) where it makes the spec.
    nlohmann::json given() const;
    static Request from_given(const nlohmann::json& given);

    bool any() const;
    const std::optional<std::string>& refused() const { return refused_; }
    const std::optional<std::string>& checkpoint() const { return checkpoint_; }
    const std::optional<std::string>& then() const { return then_; }
    std::optional<FollowUpOf> after() const;

    // The checkpoint these options describe (CONFIG: default options, limits, whether
    // hawfd is there for reviewers); throws Error(Usage) for a bad combination.
    CheckpointSpec spec(const CheckpointId& id, uid_t owner_uid, const std::string& owner, Scope scope,
                        const Config& config) const;

private:
    std::optional<std::string> checkpoint_, options_, params_, timeout_, default_, then_, after_;
    std::vector<std::string> reviewers_;  // parsed: each entry checked against NSS once
    std::optional<std::uint32_t> quorum_;
    std::vector<std::string> notify_;     // parsed channel names, or {"none"}
    std::optional<std::string> refused_;  // collect(): the first value slurmstepd refused
    std::map<Opt, std::string> given_;    // every value set() or collect() was given
};

}  // namespace hawf::plugin
