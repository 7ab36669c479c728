#include "request.hpp"

#include "actions.hpp"
#include "error.hpp"
#include "review.hpp"

namespace hawf::plugin {

void Request::set(Opt id, const std::string& value) {
    given_[id] = value;
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
            case Opt::Reviewers: reviewers_ = parse_reviewers(value); break;
            case Opt::Quorum: quorum_ = parse_quorum(value); break;
            case Opt::Notify: notify_ = parse_notify_channels(value); break;
            case Opt::After: parse_followup_of(value); after_ = value; break;
        }
    } catch (const Error& e) {
        throw Error(ErrorKind::Usage, std::string("--") + name_of(id) + ": " + e.what());
    }
}

std::string Request::collect(Opt id, const std::string& value) {
    try {
        set(id, value);
        return "";
    } catch (const std::exception& e) {
        if (!refused_) refused_ = e.what();
        return e.what();
    }
}

nlohmann::json Request::given() const {
    nlohmann::json given = nlohmann::json::object();
    for (const auto& [id, value] : given_) given[name_of(id)] = value;
    return given;
}

Request Request::from_given(const nlohmann::json& given) {
    Request request;
    for (const auto& [name, value] : given.items()) {
        std::optional<Opt> option;
        for (int i = 0; i < HAWF_OPTION_COUNT; ++i)
            if (name == hawf_options[i].name) option = Opt(i);
        if (!option || !value.is_string()) throw Error(ErrorKind::System, "unknown option " + quoted_text(name));
        request.collect(*option, value.get<std::string>());
    }
    return request;
}

bool Request::any() const {
    return checkpoint_ || options_ || params_ || timeout_ || default_ || then_ || after_ || !reviewers_.empty() ||
           quorum_ || !notify_.empty();
}

std::optional<FollowUpOf> Request::after() const {
    return after_ ? std::optional<FollowUpOf>(parse_followup_of(*after_)) : std::nullopt;
}

CheckpointSpec Request::spec(const CheckpointId& id, uid_t owner_uid, const std::string& owner,
                             Scope scope, const Config& config) const {
    if (refused_) throw Error(ErrorKind::Usage, *refused_);
    if (!checkpoint_)
        throw Error(ErrorKind::Usage, "--hawf-options, --hawf-params, --hawf-timeout, --hawf-default, "
                                      "--hawf-then, --hawf-reviewers and --hawf-notify need --hawf-checkpoint=NAME");
    if (quorum_ && reviewers_.empty())
        throw Error(ErrorKind::Usage, "--hawf-quorum needs --hawf-reviewers=USER,@GROUP,...");
    if (!reviewers_.empty() && !config.hawfd_configured())
        throw Error(ErrorKind::Usage, "--hawf-reviewers needs hawfd: hawfd.address is not set in " + config.path);
    if (quorum_) {
        // A quorum more people than the reviewers name could never be reached.
        const std::vector<uid_t> users = reviewer_uids(reviewers_);
        if (*quorum_ > users.size()) {
            std::string names;
            for (const uid_t uid : users) names += (names.empty() ? "" : ", ") + user_name(uid);
            throw Error(ErrorKind::Usage, "--hawf-quorum=" + std::to_string(*quorum_) + " but the reviewers name " +
                                              std::to_string(users.size()) + (users.size() == 1 ? " user" : " users") +
                                              " (" + (names.empty() ? "none" : names) + ")");
        }
    }
    CheckpointSpec spec;
    spec.id = id;
    spec.owner_uid = owner_uid;
    spec.owner = owner;
    spec.scope = scope;
    spec.options = options_ ? parse_choices(*options_) : config.default_options;
    if (params_) spec.params = parse_param_specs(*params_);
    if (timeout_) spec.timeout_s = parse_duration(*timeout_);
    if (default_) spec.default_choice = *default_;
    if (then_) spec.then.push_back(parse_then(*then_));
    spec.reviewers = reviewers_;
    spec.quorum = quorum_.value_or(1);
    spec.notify = notify_;
    spec.check(config.limits);
    return spec;
}

}  // namespace hawf::plugin
