// hawfd's ops: what an authenticated request may ask (the table requests.cpp
// dispatches on) and the finishing of a decision (record the quorum, release or
// cancel the follow-ups), which requests and the journal share.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "requests.hpp"
#include "service.hpp"

namespace hawf::hawfd {

// An op's handler: the fields of its answer besides "ok", or an Error to refuse.
using Op = std::function<nlohmann::json(const Service&, const Request&)>;

// ping; notify (look at a checkpoint: its notices and deadline), outbox (the
// notifications waiting or given up, for hawf doctor); decide, withdraw (a reviewer's approval and its withdrawal); show, cat,
// verify (what a reviewer may see); review (the checkpoints the caller may approve);
// seal (root's seal over the spec of a checkpoint hawf-await --open opens in the
// caller's running job). decide refuses a checkpoint whose spec is not sealed.
const std::map<std::string, Op>& op_table();

struct Finished {
    Checkpoint ckpt;
    std::vector<FollowUpChange> changes;
};
// Does what the journal says hawfd owes OWNER's checkpoint ID: records the decision
// its approvals reached (sealed by hawfd), then releases or cancels its follow-ups;
// the entry goes once all is done. Safe to repeat at any point.
Finished finish(const Service& service, uid_t owner, const CheckpointId& id);

// finish() for every entry of the journal; errors are logged and the entry kept.
void finish_owed(const Service& service);

// OWNER's checkpoint ID is pending past its deadline at NOW: records its default
// (a delegated checkpoint's sealed by hawfd, once its spec verifies), then releases
// or cancels its follow-ups as finish() does. First writer wins: a decision already
// made stays, and its follow-ups are synced. Returns the checkpoint as it is then.
Finished take_default_at_deadline(const Service& service, uid_t owner, const CheckpointId& id, std::int64_t now);

}  // namespace hawf::hawfd
