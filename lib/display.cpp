#include "display.hpp"

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>

namespace hawf {
namespace {

// Length of the valid UTF-8 sequence at TEXT[i] and its code point, or 0 if invalid
// (overlong forms, surrogates and values past U+10FFFF are invalid).
std::size_t utf8_char(const std::string& text, std::size_t i, std::uint32_t* cp) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = byte(i);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > text.size()) return 0;
    std::uint32_t v = len == 1 ? c : c & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        v = (v << 6) | (byte(i + k) & 0x3f);
    }
    static const std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

// Characters that change how the text around them is drawn or read.
bool deceptive(std::uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) ||                       // C1 controls
           (cp >= 0x200b && cp <= 0x200f) ||                   // zero-width, LRM, RLM
           (cp >= 0x2028 && cp <= 0x202e) ||                   // line/paragraph separators, bidi embeddings
           (cp >= 0x2060 && cp <= 0x206f) ||                   // word joiner, invisible operators, bidi isolates
           cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);     // BOM, interlinear annotation
}

std::string escape(const std::string& text, bool keep_lines) {
    std::string out;
    out.reserve(text.size());
    char buf[16];
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = utf8_char(text, i, &cp);
        if (len == 0) {
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(text[i]));
            out += buf;
            ++i;
            continue;
        }
        if (cp == '\\') out += "\\\\";
        else if ((cp == '\n' || cp == '\t') && keep_lines) out += static_cast<char>(cp);
        else if (cp == '\n') out += "\\n";
        else if (cp == '\t') out += "\\t";
        else if (cp == '\r') out += "\\r";
        else if (cp == 0x1b) out += "\\e";
        else if (cp < 0x20 || cp == 0x7f) std::snprintf(buf, sizeof buf, "\\x%02x", cp), out += buf;
        else if (deceptive(cp)) std::snprintf(buf, sizeof buf, "\\u%04x", cp), out += buf;
        else out.append(text, i, len);
        i += len;
    }
    return out;
}

}  // namespace

std::string shown(const std::string& text) { return escape(text, false); }
std::string shown_text(const std::string& text) { return escape(text, true); }

std::string exit_text(int wait_status) {
    if (WIFSIGNALED(wait_status)) return "signal " + std::to_string(WTERMSIG(wait_status));
    return "exit " + std::to_string(WEXITSTATUS(wait_status));
}

}  // namespace hawf
