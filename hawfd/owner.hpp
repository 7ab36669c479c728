// What hawfd does inside a checkpoint owner's tree, done as that owner: the tree is
// private (0700) and may sit on NFS with root squashed, and records must stay owned
// by their owner. hawfd (root, threaded) never changes its own identity: for each
// verb it runs `hawfd --as-owner`, started by run_command fully dropped to the owner
// (supplementary groups, gid, uid before exec), with the verb as JSON on stdin and
// the answer as JSON on stdout. The child only does what the verb says through the
// core's actions; every decision about who may do what stays in hawfd.
//
// Verbs ({"verb":V,"owner":UID,"checkpoint":"J:N",...}) and their answers:
//   load                                           -> {"events":[...]}
//   approve  {decision, actor, credential}         -> {"events":[...]}
//   withdraw {actor, credential}                   -> {"events":[...]}
//   record-quorum {quorum, seal, actor}            -> {"events":[...]}
//   files                                          -> {"files":[...],"report":"..."}
//   read {file}                                    -> {"data":"<base64>"}
//   take-default {now, seal}                       -> {"events":[...]}  (past its deadline, undecided;
//      a delegated checkpoint's with hawfd's seal over the default)
//   reviewable {reviewer}  (no checkpoint)         -> {"checkpoints":[{"events":[...]},...]}
//      the owner's pending delegated checkpoints REVIEWER may approve
//   pending  (no checkpoint)                       -> {"checkpoints":["JOB:NAME",...]}  (the pending index)
// Every answer also has "ok"; a refusal is {"ok":false,"error","kind"}. Events are
// read back by the parent with the record format's strict checks.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "record.hpp"

namespace hawf::hawfd {

// Carries out REQUEST in the calling process, which must be the owner it names
// (Error(Denied) otherwise). What `hawfd --as-owner` runs; unit tests call it directly.
nlohmann::json owner_verb(const Config& config, const nlohmann::json& request);

// `hawfd --as-owner --conf=FILE`: one verb from stdin, its answer on stdout.
int as_owner_main(const std::string& conf_path);

// How hawfd gets a verb done as an owner.
class OwnerAccess {
public:
    virtual ~OwnerAccess() = default;
    // The answer to REQUEST (whose "owner" is OWNER); a refusal becomes the Error it names.
    virtual nlohmann::json run(uid_t owner, const nlohmann::json& request) const = 0;

    // REQUEST (its verb and arguments) about OWNER's checkpoint ID: the child's answer.
    nlohmann::json ask(uid_t owner, const CheckpointId& id, nlohmann::json request) const;
    // The verbs that answer events: the checkpoint as the child left it.
    Checkpoint load(uid_t owner, const CheckpointId& id) const;
    Checkpoint call(uid_t owner, const CheckpointId& id, nlohmann::json request) const;
};

// The real thing: each verb in a `HAWFD --as-owner --conf=CONF` child dropped to the owner.
class ChildOwnerAccess : public OwnerAccess {
public:
    ChildOwnerAccess(std::string hawfd_path, std::string conf_path)
        : hawfd_path_(std::move(hawfd_path)), conf_path_(std::move(conf_path)) {}
    nlohmann::json run(uid_t owner, const nlohmann::json& request) const override;

private:
    std::string hawfd_path_, conf_path_;
};

// The checkpoint the child's "events" answer describes, held to the record format.
Checkpoint checkpoint_of(const nlohmann::json& events);

}  // namespace hawf::hawfd
