// HOST:PORT as hawf.yaml gives hawfd.listen and hawfd.address: parse_host_port.
//
// Accepted: a port from 1 to 65535, a host that is what the system calls get (no
// NUL byte: they stop at one), and the text is host and port written back.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "config.hpp"
#include "fuzz.hpp"

using namespace hawf;
using hawf::fuzz::accepted;
using hawf::fuzz::expect;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    HostPort endpoint;
    if (!accepted({ErrorKind::Usage}, "parse_host_port", [&] { endpoint = parse_host_port(text, "hawfd.address"); }))
        return 0;
    expect(endpoint.port >= 1, "port 0 accepted");
    expect(!endpoint.host.empty(), "an empty host accepted");
    expect(std::strlen(endpoint.host.c_str()) == endpoint.host.size(),
           "a host with a NUL byte accepted: the system calls would get " + fuzz::escaped(endpoint.host.c_str()) +
               ", not " + fuzz::escaped(endpoint.host));
    const bool bracketed = endpoint.host.find(':') != std::string::npos;
    const std::string again =
        (bracketed ? "[" + endpoint.host + "]" : endpoint.host) + ":" + std::to_string(endpoint.port);
    expect(again == text, "parse_host_port does not give back its text: " + fuzz::escaped(again));
    return 0;
}
