#include "error.hpp"

#include <cstring>

namespace hawf {

Error system_error(const std::string& what, int errnum) {
    return Error(ErrorKind::System, what + ": " + std::strerror(errnum));
}

}  // namespace hawf
