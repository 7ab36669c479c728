// Making text safe to put on a person's terminal. Names, comments, parameter values,
// file names, report text and record fields come from users; printed raw, a byte
// sequence could clear a screen, retitle a window, or add a fake line to root's
// listing. Human-readable output passes every such value through these (JSON
// output stays exact: a JSON encoder escapes control characters itself).
#pragma once

#include <string>

namespace hawf {

// One field on one line: every control character (C0 including newline and tab,
// DEL, C1), every byte that is not valid UTF-8, and the Unicode characters that
// reorder or hide text (bidi controls, zero-width, line/paragraph separators) are
// shown as escapes: \n, \t, \e, \xNN, \u202e. A backslash is doubled, so an
// escaped text cannot be mistaken for one that was typed with escapes.
std::string shown(const std::string& text);

// Multi-line text (a report): as shown(), but newlines and tabs stay.
std::string shown_text(const std::string& text);

// A step's wait status as Slurm shows it: "exit 3", "signal 9".
std::string exit_text(int wait_status);

}  // namespace hawf
