// hawf-step-helper VERB: what slurmstepd execs, already as the job's user (or, for
// `seal`, as root), to do hawf's work for a step (step_helper.hpp). Not for users:
// run by hand it acts only as whoever runs it, on the request it is given.
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <iterator>
#include <string>

#include "run_as_user.hpp"
#include "step_helper.hpp"

namespace {

// Writes all of TEXT to stdout; false if it could not.
bool write_all(const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = write(STDOUT_FILENO, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace hawf;
    using hawf::plugin::Outcome;
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
    return write_all(plugin::encode_answer(outcome)) && outcome.ok ? 0 : 1;
}
