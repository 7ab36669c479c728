#include "validate.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "display.hpp"
#include "error.hpp"

namespace hawf {

bool all_digits(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

namespace {

Error usage(const std::string& message) { return Error(ErrorKind::Usage, message); }

bool is_alnum(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }


void check_key(const std::string& key) {
    bool ok = !key.empty() && key.size() <= 64 && !is_digit(key[0]);
    for (char c : key) ok = ok && (is_alnum(c) || c == '_');
    if (!ok)
        throw usage("bad parameter name " + quoted_text(key) +
                    ": use letters, digits and _, not starting with a digit, at most 64");
}

// The decimal numbers a float parameter takes: [+-]?(D+(.D*)?|.D+)([eE][+-]?D+)?.
// strtod alone would also take leading whitespace of any kind, hex, nan and inf.
bool is_decimal(const std::string& s) {
    std::size_t i = 0;
    auto digits = [&] {
        std::size_t start = i;
        while (i < s.size() && is_digit(s[i])) ++i;
        return i - start;
    };
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t mantissa = digits();
    if (i < s.size() && s[i] == '.') ++i, mantissa += digits();
    if (mantissa == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (digits() == 0) return false;
    }
    return i == s.size();
}

// C0 controls, DEL, and C1 controls (U+0080-U+009F, "\xc2\x80".."\xc2\x9f" in UTF-8):
// what a terminal may take as the start of an escape sequence. Returns its length.
std::size_t control_at(const std::string& s, std::size_t i) {
    const unsigned char c = s[i];
    if (c < 0x20 || c == 0x7f) return 1;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
        return 2;
    return 0;
}

}  // namespace

std::string quoted_text(const std::string& s) {
    const std::string inner = shown(s);  // the one escaping of everything shown to people
    std::string out = "\"";
    for (char c : inner) {
        const bool continues_a_character = (static_cast<unsigned char>(c) & 0xC0) == 0x80;
        if (out.size() > 80 && !continues_a_character) {  // never cut a UTF-8 character in two
            out += "...";
            break;
        }
        if (c == '"') out += '\\';
        out += c;
    }
    return out + "\"";
}

void check_name(const std::string& name, const std::string& what) {
    bool ok = !name.empty() && name.size() <= 64 && is_alnum(name[0]);
    for (char c : name) ok = ok && (is_alnum(c) || c == '.' || c == '_' || c == '-');
    if (!ok)
        throw usage("bad " + what + " " + quoted_text(name) +
                    ": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
}

void check_job_id(const std::string& job_id) {
    auto parts = split(job_id, '_');
    bool ok = parts.size() <= 2 && job_id.size() <= 24;
    for (const auto& p : parts) ok = ok && all_digits(p);
    if (!ok) throw usage("bad job id " + quoted_text(job_id) + ": use JOBID or JOBID_TASK (digits)");
}

void check_array_job_id(const std::string& job_id) {
    check_job_id(job_id);
    if (job_id.find('_') != std::string::npos)
        throw usage("bad job id " + quoted_text(job_id) + ": use the array's JOBID (digits)");
}

CheckpointId parse_checkpoint_id(const std::string& text) {
    auto colon = text.find(':');
    if (colon == std::string::npos)
        throw usage("bad checkpoint " + quoted_text(text) + ": use JOBID:NAME (e.g. 4242:eval)");
    CheckpointId id{text.substr(0, colon), text.substr(colon + 1)};
    check_job_id(id.job_id);
    check_name(id.name);
    return id;
}

FollowUpOf parse_followup_of(const std::string& text) {
    const std::size_t star = text.find("_*:");
    if (star == std::string::npos) return {parse_checkpoint_id(text), false};
    FollowUpOf of{parse_checkpoint_id(text.substr(0, star) + text.substr(star + 2)), true};
    try {
        check_array_job_id(of.id.job_id);
    } catch (const Error&) {
        throw usage("bad checkpoint " + quoted_text(text) + ": use JOBID:NAME or ARRAYJOBID_*:NAME");
    }
    return of;
}

std::string task_ranges(const std::vector<std::uint32_t>& tasks) {
    std::string text;
    for (std::size_t i = 0; i < tasks.size();) {
        std::size_t last = i;
        while (last + 1 < tasks.size() && tasks[last + 1] == tasks[last] + 1) ++last;
        text += (text.empty() ? "" : ",") + std::to_string(tasks[i]) +
                (last > i ? "-" + std::to_string(tasks[last]) : "");
        i = last + 1;
    }
    return text;
}

namespace {

constexpr std::uint32_t max_task_id = 4000000;  // Slurm: MaxArraySize - 1 at most

std::uint32_t task_number(const std::string& text, const std::string& whole) {
    if (!all_digits(text) || text.size() > 7 || std::stoul(text) > max_task_id)
        throw usage("bad task " + quoted_text(text) + " in " + quoted_text(whole) + ": use a number from 0 to " +
                    std::to_string(max_task_id));
    return static_cast<std::uint32_t>(std::stoul(text));
}

// "8", "[1-5,9]" after "JOB_".
std::vector<std::uint32_t> parse_tasks(const std::string& text, const std::string& whole, std::size_t& count) {
    const bool bracketed = text.size() >= 2 && text.front() == '[' && text.back() == ']';
    std::vector<std::uint32_t> tasks;
    for (const std::string& part : split(bracketed ? text.substr(1, text.size() - 2) : text, ',')) {
        const std::size_t dash = part.find('-');
        if (!bracketed && (dash != std::string::npos || part != text))
            throw usage("bad tasks " + quoted_text(text) + " in " + quoted_text(whole) +
                        ": ranges go in brackets, e.g. 4242_[1-5,9]");
        const std::uint32_t first = task_number(part.substr(0, dash), whole);
        const std::uint32_t last = dash == std::string::npos ? first : task_number(part.substr(dash + 1), whole);
        if (last < first) throw usage("bad range " + quoted_text(part) + " in " + quoted_text(whole) + ": it runs backwards");
        if (count + (last - first) + 1 > max_selected)
            throw usage(quoted_text(whole) + " names more than " + std::to_string(max_selected) + " tasks");
        count += last - first + 1;
        for (std::uint32_t t = first;; ++t) {
            tasks.push_back(t);
            if (t == last) break;
        }
    }
    return tasks;
}

// "a,[b,c],d" split at the commas outside brackets.
std::vector<std::string> split_outside_brackets(const std::string& text) {
    std::vector<std::string> parts(1);
    int depth = 0;
    for (const char c : text) {
        depth += c == '[' ? 1 : c == ']' ? -1 : 0;
        if (c == ',' && depth == 0) parts.emplace_back();
        else parts.back() += c;
    }
    return parts;
}

}  // namespace

CheckpointSelection parse_checkpoint_selection(const std::string& text) {
    const std::size_t colon = text.find(':');
    const std::string forms = ": use JOBID:NAME, JOBID_TASK:NAME, JOBID_[1-5,9]:NAME or JOBID_*:NAME "
                              "(several jobs separated by ',')";
    if (colon == std::string::npos || colon == 0 || text.size() > 4096) throw usage("bad checkpoint " + quoted_text(text) + forms);
    CheckpointSelection selection;
    selection.name = text.substr(colon + 1);
    check_name(selection.name);
    std::size_t count = 0;
    for (const std::string& item : split_outside_brackets(text.substr(0, colon))) {
        const std::size_t underscore = item.find('_');
        JobSelector job{item.substr(0, underscore), false, {}};
        if (!all_digits(job.job) || job.job.size() > 10) throw usage("bad job " + quoted_text(item) + " in " + quoted_text(text) + forms);
        if (underscore != std::string::npos) {
            const std::string tasks = item.substr(underscore + 1);
            if (tasks == "*") job.all_tasks = true;
            else job.tasks = parse_tasks(tasks, text, count);
        }
        selection.jobs.push_back(std::move(job));
    }
    return selection;
}

std::vector<CheckpointId> array_tasks(const std::vector<CheckpointId>& ids, const std::string& array_job,
                                      const std::string& name) {
    std::vector<std::pair<std::uint32_t, CheckpointId>> tasks;
    const std::string prefix = array_job + "_";
    for (const CheckpointId& id : ids)
        if (id.name == name && id.job_id.rfind(prefix, 0) == 0 && all_digits(id.job_id.substr(prefix.size())) &&
            id.job_id.size() - prefix.size() <= 7)
            tasks.emplace_back(std::stoul(id.job_id.substr(prefix.size())), id);
    std::sort(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<CheckpointId> sorted;
    for (auto& [task, id] : tasks) sorted.push_back(std::move(id));
    return sorted;
}

std::vector<std::string> parse_choices(const std::string& text, const std::string& what) {
    if (text.empty()) throw usage("empty " + what + ": give one or more names separated by ','");
    std::vector<std::string> choices = split(text, ',');
    std::set<std::string> seen;
    for (const auto& c : choices) {
        check_name(c, "choice in " + what);
        if (!seen.insert(c).second) throw usage("choice " + quoted_text(c) + " appears twice in " + what);
    }
    return choices;
}

std::vector<std::string> parse_notify_channels(const std::string& text) {
    if (text == "none") return {"none"};
    std::vector<std::string> channels = parse_choices(text, "channels (or none alone)");
    for (const auto& c : channels)
        if (c == "none") throw usage("none stands alone: it means no notifications");
    if (channels.size() > 16) throw usage(std::to_string(channels.size()) + " channels, at most 16");
    return channels;
}

std::string joined(const std::vector<std::string>& names, const char* separator) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : separator) + n;
    return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::string::size_type start = 0;
    for (;;) {
        auto pos = s.find(sep, start);
        parts.push_back(s.substr(start, pos - start));
        if (pos == std::string::npos) return parts;
        start = pos + 1;
    }
}

bool valid_mail_address(const std::string& address) {
    const std::size_t at = address.find('@');
    if (at == 0 || at == std::string::npos || at + 1 >= address.size() || address.size() > 254) return false;
    const std::string local = address.substr(0, at), domain = address.substr(at + 1);
    if (local.size() > 64 || local.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                     ".!#$%&'*+/=?^_`{|}~-") != std::string::npos)
        return false;
    if (domain.front() == '.' || domain.back() == '.' || domain.front() == '-' || domain.find("..") != std::string::npos)
        return false;
    return domain.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
           std::string::npos;
}

std::string ParamSpec::type_text() const {
    switch (type) {
        case ParamType::Int: return "int";
        case ParamType::Float: return "float";
        case ParamType::Bool: return "bool";
        case ParamType::String: return "string";
        case ParamType::Enum: return "enum(" + joined(values, "|") + ")";
    }
    return "string";
}

ParamSpec parse_param_spec(const std::string& text) {
    auto colon = text.find(':');
    if (colon == std::string::npos)
        throw usage("bad parameter " + quoted_text(text) +
                    ": use KEY:TYPE with TYPE int, float, bool, string or enum(a|b)");
    ParamSpec spec;
    spec.key = text.substr(0, colon);
    check_key(spec.key);
    std::string type = text.substr(colon + 1);
    if (type == "int") spec.type = ParamType::Int;
    else if (type == "float") spec.type = ParamType::Float;
    else if (type == "bool") spec.type = ParamType::Bool;
    else if (type == "string") spec.type = ParamType::String;
    else if (type.size() > 6 && type.compare(0, 5, "enum(") == 0 && type.back() == ')') {
        spec.type = ParamType::Enum;
        spec.values = split(type.substr(5, type.size() - 6), '|');
        std::set<std::string> seen;
        for (const auto& v : spec.values) {
            check_name(v, "enum value of " + spec.key);
            if (!seen.insert(v).second) throw usage("enum value " + quoted_text(v) + " appears twice in " + quoted_text(type));
        }
    } else {
        throw usage("bad type " + quoted_text(type) + " for parameter " + spec.key +
                    ": use int, float, bool, string or enum(a|b)");
    }
    return spec;
}

std::vector<ParamSpec> parse_param_specs(const std::string& text) {
    // Split on ',' outside enum(...) so enum values cannot be confused with params.
    std::vector<ParamSpec> specs;
    std::set<std::string> seen;
    std::string current;
    int depth = 0;
    auto flush = [&] {
        ParamSpec spec = parse_param_spec(current);
        // Keys become HAWF_PARAM_<KEY>: two that differ only in case would share it.
        std::string upper = spec.key;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (!seen.insert(upper).second) throw usage("parameter " + quoted_text(spec.key) + " declared twice (names ignore case)");
        specs.push_back(spec);
        current.clear();
    };
    for (char c : text) {
        if (c == '(') ++depth;
        if (c == ')') --depth;
        if (c == ',' && depth == 0) flush();
        else current += c;
    }
    flush();
    return specs;
}

void check_utf8(const std::string& text, const std::string& what) {
    std::size_t i = 0;
    while (i < text.size()) {
        unsigned char c = text[i];
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= text.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) >> 6) == 2;
        if (ok && len == 2) ok = c >= 0xc2;  // no overlong forms
        if (ok && len >= 3) {
            // No overlong forms, no UTF-16 surrogates, nothing above U+10FFFF: what JSON
            // (nlohmann::json::dump) refuses to write must be refused here first.
            unsigned char c1 = text[i + 1];
            if (c == 0xe0) ok = c1 >= 0xa0;
            else if (c == 0xed) ok = c1 <= 0x9f;
            else if (c == 0xf0) ok = c1 >= 0x90;
            else if (c == 0xf4) ok = c1 <= 0x8f;
            else if (c > 0xf4) ok = false;
        }
        if (!ok) throw usage(what + " is not valid UTF-8 (byte " + std::to_string(i) + "): only UTF-8 text can be stored");
        if (c == 0) throw usage(what + " holds a NUL byte");
        i += len;
    }
}

std::string check_param_value(const ParamSpec& spec, const std::string& value, std::size_t max_bytes) {
    if (value.size() > max_bytes)
        throw usage("value of " + spec.key + " is " + std::to_string(value.size()) +
                    " bytes: at most " + std::to_string(max_bytes) + " allowed");
    check_utf8(value, "value of " + spec.key);
    const std::string bad = "bad value " + quoted_text(value) + " for " + spec.key + " (" + spec.type_text() + ")";
    switch (spec.type) {
        case ParamType::Int: {
            std::string digits = (!value.empty() && (value[0] == '-' || value[0] == '+')) ? value.substr(1) : value;
            errno = 0;
            if (!all_digits(digits) || (std::strtoll(value.c_str(), nullptr, 10), errno == ERANGE))
                throw usage(bad + ": use a whole number such as 42 or -3");
            break;
        }
        case ParamType::Float: {
            // The grammar first; strtod then only rules out what overflows or underflows.
            const bool decimal = is_decimal(value);
            errno = 0;
            const double d = decimal ? std::strtod(value.c_str(), nullptr) : 0;
            if (!decimal || errno == ERANGE || !std::isfinite(d))
                throw usage(bad + ": use a decimal number such as 0.5 or 1e-4");
            break;
        }
        case ParamType::Bool:
            if (value != "true" && value != "false") throw usage(bad + ": use true or false");
            break;
        case ParamType::Enum: {
            bool found = false;
            for (const auto& v : spec.values) found = found || v == value;
            if (!found) throw usage(bad + ": use one of " + spec.type_text().substr(4));
            break;
        }
        case ParamType::String: break;
    }
    return value;
}

std::pair<std::string, std::string> parse_assignment(const std::string& text) {
    auto eq = text.find('=');
    if (eq == std::string::npos) throw usage("bad --set " + quoted_text(text) + ": use KEY=VALUE");
    std::string key = text.substr(0, eq);
    check_key(key);
    return {key, text.substr(eq + 1)};
}

namespace {

// One CSV line's cells (RFC 4180 quoting: "a,b" and "say ""hi""").
std::vector<std::string> csv_cells(const std::string& line, const std::string& where) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') cells.back() += c, ++i;
        else if (c == '"') quoted = !quoted;
        else if (c == ',' && !quoted) cells.emplace_back();
        else cells.back() += c;
    }
    if (quoted) throw usage(where + ": a quote is not closed");
    return cells;
}

void add_row(ParamsTable& table, const std::string& key, std::map<std::string, std::string> row,
             const std::string& where) {
    if (key.empty() || key.size() > 100 || key.find_first_of(" \t") != std::string::npos)
        throw usage(where + ": bad key " + quoted_text(key) + ": use a task (8), job (4242_8) or checkpoint (4242_8:eval)");
    if (!table.emplace(key, std::move(row)).second) throw usage(where + ": " + quoted_text(key) + " appears twice");
}

}  // namespace

ParamsTable parse_params_table(const std::string& content, const std::string& source) {
    ParamsTable table;
    const std::size_t first = content.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && content[first] == '{') {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(content);
        } catch (const nlohmann::json::exception& e) {
            throw usage(source + ": not valid JSON: " + e.what());
        }
        for (const auto& [key, values] : j.items()) {
            const std::string where = source + ": " + quoted_text(key);
            if (!values.is_object()) throw usage(where + ": give an object of parameter values");
            std::map<std::string, std::string> row;
            for (const auto& [name, value] : values.items()) {
                if (!value.is_string() && !value.is_number() && !value.is_boolean())
                    throw usage(where + ": " + name + ": give a string, number or true/false");
                row.insert(parse_assignment(name + "=" + (value.is_string() ? value.get<std::string>() : value.dump())));
            }
            add_row(table, key, std::move(row), source);
        }
        return table;
    }
    std::vector<std::string> header;
    std::size_t line_no = 0;
    for (std::string line : split(content, '\n')) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const std::string where = source + ":" + std::to_string(line_no);
        const std::vector<std::string> cells = csv_cells(line, where);
        if (header.empty()) {
            header = cells;
            if (header.size() < 2) throw usage(where + ": the header names the key column, then parameters (task,lr)");
            for (std::size_t i = 1; i < header.size(); ++i) parse_assignment(header[i] + "=");
            continue;
        }
        if (cells.size() != header.size())
            throw usage(where + ": " + std::to_string(cells.size()) + " cells, the header has " +
                        std::to_string(header.size()));
        std::map<std::string, std::string> row;
        for (std::size_t i = 1; i < cells.size(); ++i)
            if (!cells[i].empty()) row.emplace(header[i], cells[i]);
        add_row(table, cells[0], std::move(row), where);
    }
    return table;
}

std::vector<std::string> params_keys(const CheckpointId& id) {
    std::vector<std::string> keys = {id.str(), id.job_id};
    if (const std::size_t underscore = id.job_id.find('_'); underscore != std::string::npos)
        keys.push_back(id.job_id.substr(underscore + 1));
    return keys;
}

namespace {

std::int64_t unit_seconds(char unit) {
    switch (unit) {
        case 's': return 1;
        case 'm': return 60;
        case 'h': return 3600;
        case 'd': return 86400;
        default: return 0;
    }
}

// The digits of TEXT from AT on (at most 9): their value, AT moved past them.
std::optional<std::int64_t> number_at(const std::string& text, std::size_t& at) {
    const std::size_t start = at;
    while (at < text.size() && is_digit(text[at])) ++at;
    if (at == start || at - start > 9) return std::nullopt;
    return std::stoll(text.substr(start, at - start));
}

// "90s", "1h30m", "2d12h": whole numbers each with its unit, largest unit first, each
// once; or "1.5h": one decimal number and its unit, giving whole seconds.
std::optional<std::int64_t> duration_with_units(const std::string& text) {
    std::size_t at = 0;
    std::int64_t total = 0, previous_unit = unit_seconds('d') + 1;
    while (at < text.size()) {
        const std::size_t term = at;
        const auto whole = number_at(text, at);
        if (!whole) return std::nullopt;
        if (at < text.size() && text[at] == '.' && term == 0) {  // a decimal: the only term
            const std::size_t start = ++at;
            const auto fraction = number_at(text, at);
            const std::int64_t unit = at + 1 == text.size() ? unit_seconds(text[at]) : 0;
            if (!fraction || at - start > 6 || unit == 0) return std::nullopt;
            std::int64_t scale = 1;
            for (std::size_t i = start; i < at; ++i) scale *= 10;
            if (*fraction * unit % scale != 0) return std::nullopt;  // not whole seconds
            return *whole * unit + *fraction * unit / scale;
        }
        const std::int64_t unit = at < text.size() ? unit_seconds(text[at]) : 0;
        if (unit == 0 || unit >= previous_unit) return std::nullopt;
        total += *whole * unit;
        previous_unit = unit;
        ++at;
    }
    return text.empty() ? std::nullopt : std::optional<std::int64_t>(total);
}

// Slurm's time forms with a colon or a dash: MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
// (a bare number, minutes to Slurm, is refused: with hawf's units it would mislead).
std::optional<std::int64_t> slurm_duration(const std::string& text) {
    std::size_t at = 0;
    std::int64_t days = 0;
    if (text.find('-') != std::string::npos) {
        const auto d = number_at(text, at);
        if (!d || at >= text.size() || text[at] != '-') return std::nullopt;
        days = *d;
        ++at;
    } else if (text.find(':') == std::string::npos) {
        return std::nullopt;
    }
    std::vector<std::int64_t> fields;
    for (;;) {
        const auto field = number_at(text, at);
        if (!field) return std::nullopt;
        fields.push_back(*field);
        if (at == text.size()) break;
        if (text[at++] != ':') return std::nullopt;
    }
    if (fields.size() > 3) return std::nullopt;
    // Without days: MM:SS or HH:MM:SS; with days: HH, HH:MM, HH:MM:SS.
    if (days == 0 && text.find('-') == std::string::npos && fields.size() == 2) fields.insert(fields.begin(), 0);
    while (fields.size() < 3) fields.push_back(0);
    if (fields[1] >= 60 || fields[2] >= 60) return std::nullopt;
    return days * 86400 + fields[0] * 3600 + fields[1] * 60 + fields[2];
}

}  // namespace

std::int64_t parse_duration(const std::string& text) {
    const std::string shown_text = quoted_text(text);
    if (!text.empty() && all_digits(text) && text.size() <= 9)
        throw usage("bad duration " + shown_text + ": give a unit (" + text + "s, " + text +
                    "m; Slurm would read it as minutes) or Slurm's [D-]HH:MM:SS");
    std::optional<std::int64_t> seconds;
    if (text.size() <= 24) seconds = duration_with_units(text);
    if (!seconds && text.size() <= 24) seconds = slurm_duration(text);
    if (!seconds)
        throw usage("bad duration " + shown_text + ": use 90s, 30m, 1h30m, 1.5h, 2d or Slurm's [D-]HH:MM:SS");
    if (*seconds <= 0 || *seconds > max_duration_s)
        throw usage("bad duration " + shown_text + ": must be more than 0 and at most 365d");
    return *seconds;
}

std::string format_duration(std::int64_t s) {
    if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
    if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

void check_user_name(const std::string& name, const std::string& what) {
    const std::string body = !name.empty() && name.back() == '$' ? name.substr(0, name.size() - 1) : name;
    bool ok = !body.empty() && name.size() <= 255 && (is_alnum(body[0]) || body[0] == '_');
    for (char c : body) ok = ok && (is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '@');
    if (!ok)
        throw usage("bad " + what + " " + quoted_text(name) +
                    ": use 1-255 letters, digits, '.', '_', '-' or '@', starting with a letter, digit or '_'");
}

void check_host_name(const std::string& name, const std::string& what) {
    bool ok = !name.empty() && name.size() <= 255;
    for (char c : name) ok = ok && (is_alnum(c) || c == '.' || c == '_' || c == '-');
    if (!ok) throw usage("bad " + what + " " + quoted_text(name) + ": use 1-255 letters, digits, '.', '_' or '-'");
}

void check_path(const std::string& path, const std::string& what) {
    if (path.empty() || path.size() > 4096) throw usage("bad " + what + " " + quoted_text(path) + ": use 1-4096 bytes");
    check_utf8(path, what);
    for (std::size_t i = 0; i < path.size(); ++i)
        if (control_at(path, i))
            throw usage("bad " + what + " " + quoted_text(path) + ": control characters are not allowed (byte " +
                        std::to_string(i) + ")");
}

void check_signal(const std::string& name) {
    const std::size_t at = name.find('@');
    const std::string signal = name.substr(0, at);
    for (const char* ok : {"USR1", "USR2", "HUP", "INT", "TERM", "CONT"})
        if (signal == ok && (at == std::string::npos || name.substr(at) == "@batch")) return;
    throw usage("bad signal " + quoted_text(name) + ": use USR1, USR2, HUP, INT, TERM or CONT (without SIG), "
                                                    "with @batch for the batch shell only (USR1@batch)");
}

ThenSpec parse_then(const std::string& text) {
    ThenSpec then;
    auto colon = text.rfind(':');
    then.script = text.substr(0, colon);
    if (colon != std::string::npos) then.on = parse_choices(text.substr(colon + 1), "--hawf-then choices");
    if (then.script.empty() || then.script.size() > 4096)
        throw usage("bad --hawf-then " + quoted_text(text) + ": use SCRIPT[:CHOICE,...]");
    check_path(then.script, "--hawf-then script path");
    return then;
}

}  // namespace hawf
