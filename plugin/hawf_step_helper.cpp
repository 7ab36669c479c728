// hawf-step-helper VERB: what slurmstepd execs, already as the job's user (or, for
// `seal`, as root), to do hawf's work for a step (step_helper.hpp). Not for users:
// run by hand it acts only as whoever runs it, on the request it is given.
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <string>

#include "process.hpp"
#include "run_as_user.hpp"
#include "step_helper.hpp"

int main(int argc, char** argv) {
    using namespace hawf;
    using hawf::plugin::Outcome;
    if (argc == 2 && std::string(argv[1]) == "--version") {  // what hawf doctor checks
        std::cout << "hawf-step-helper " HAWF_VERSION << std::endl;
        return 0;
    }
    Outcome outcome;
    try {
        if (argc != 2) throw Error(ErrorKind::Usage, "usage: hawf-step-helper VERB < REQUEST (run by the hawf SPANK plugin)");
        const std::string request{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
        outcome = {true, plugin::run_step_verb(argv[1], request)};
    } catch (const Error& e) {
        outcome = {false, e.what(), e.kind()};
    } catch (const std::exception& e) {
        outcome = {false, e.what(), ErrorKind::System};
    }
    return write_fully(STDOUT_FILENO, plugin::encode_answer(outcome)) && outcome.ok ? 0 : 1;
}
