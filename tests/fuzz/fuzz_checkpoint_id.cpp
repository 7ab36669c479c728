// Checkpoint ids as the tools take them (JOBID:NAME, JOBID_TASK:NAME):
// parse_checkpoint_id. Its parts become directory names of the spool
// (SPOOL/<uid>/ckpt/<jobid>/<name>/), so what it accepts must be a plain name.
//
// Accepted: the id is the text (str() gives it back), each part passes its own
// check, neither part can name another directory, and a checkpoint and a
// follow-up with this id are written and read back the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz.hpp"
#include "record.hpp"
#include "validate.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;
using hawf::fuzz::must;
using nlohmann::json;

namespace {

bool plain_component(const std::string& part) {
    return !part.empty() && part != "." && part != ".." && part.find('/') == std::string::npos &&
           part.find('\0') == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    CheckpointId id;
    if (!accepted({ErrorKind::Usage}, "parse_checkpoint_id", [&] { id = parse_checkpoint_id(text); })) return 0;
    expect(id.str() == text, "parse_checkpoint_id does not give back its text");
    must("check_job_id of an id's job", [&] { check_job_id(id.job_id); });
    must("check_name of an id's name", [&] { check_name(id.name); });
    expect(plain_component(id.job_id) && plain_component(id.name), "a checkpoint id that is not two plain names");

    Event ev;
    ev.seq = 1;
    ev.type = EventType::FollowUpAdded;
    ev.by = "alice";
    ev.by_uid = 1001;
    ev.via = Via::Cli;
    ev.host = "login1";
    ev.followup = FollowUp{id, 1001, id.job_id.substr(0, id.job_id.find('_')), "next.sh", {}};
    Event back;
    must("event_from_json of a follow-up of this id",
         [&] { back = event_from_json(json::parse(fuzz::written(to_json(ev)))); });
    expect(back.followup && back.followup->of == id, "a follow-up's checkpoint id read back differently");
    return 0;
}
