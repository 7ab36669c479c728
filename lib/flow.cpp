#include "flow.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "error.hpp"
#include "review.hpp"
#include "validate.hpp"
#include "yaml_tree.hpp"

namespace hawf {
namespace {

using yaml::Value;

// sbatch options a flow's stage may not give: hawf sets them (the chain), or they
// would change what a stage is.
constexpr const char* reserved_sbatch[] = {"--hawf-", "--dependency", "-d", "--hold", "-H", "--array", "-a",
                                           "--wrap", "--parsable", "--wait", "-W"};
constexpr std::uint32_t max_rounds = 100;

// Reads one flow file, noting each mistake with its line and going on where it can.
class FlowReader {
public:
    FlowReader(const std::string& path, const std::vector<std::string>& default_options, std::vector<std::string>& errors)
        : path_(path), default_options_(default_options), errors_(errors) {}

    Flow read(yaml::Parser& parser) {
        parser_ = &parser;
        Flow flow;
        flow.path = path_;
        const std::size_t slash = path_.rfind('/');
        flow.dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
        std::size_t stages_line = 0;
        bool named = false;
        parser.parse([&](const std::string& key, const Value& v) {
            if (key == "name") {
                named = true;
                if (const auto name = scalar(key, v)) {
                    flow.name = *name;
                    guard(v.line, [&] { check_name(*name, "flow name"); });
                }
            } else if (key == "stages") {
                stages_line = v.key_line;
                if (!v.is_map || v.entries.empty()) return note(v.line, "stages: expected a mapping of stage names to stages");
                for (const auto& [name, stage] : v.entries) flow.stages.push_back(read_stage(name, stage, flow.dir));
            } else {
                note(v.key_line, "unknown key \"" + key + "\" (known: name, stages)");
            }
        });
        if (!named) {  // the file's name without its extension
            std::string base = path_.substr(slash == std::string::npos ? 0 : slash + 1);
            flow.name = base.substr(0, base.find('.'));
            guard(1, [&] { check_name(flow.name, "flow name (from the file's name; set name:)"); });
        }
        if (!stages_line && flow.stages.empty()) note(1, "no stages: a flow needs a stages: mapping");
        link(flow);
        return flow;
    }

private:
    void note(std::size_t line, const std::string& message) { errors_.push_back(parser_->error_at(line, message).what()); }
    // Runs CHECK (a validator that throws Error), noting what it throws at LINE (after
    // WHAT, the key it is about, when the validator's words do not name it).
    void guard(std::size_t line, const std::function<void()>& check, const std::string& what = "") {
        try {
            check();
        } catch (const Error& e) {
            note(line, what.empty() ? e.what() : what + ": " + e.what());
        }
    }
    std::optional<std::string> scalar(const std::string& key, const Value& v) {
        if (v.is_list || v.is_map || v.items.size() != 1) {
            note(v.line, key + ": expected a single value");
            return std::nullopt;
        }
        return v.items[0];
    }
    // A list of plain values, or one value holding them comma-separated ("a,b").
    std::optional<std::vector<std::string>> strings(const std::string& key, const Value& v) {
        if (v.is_map) return note(v.line, key + ": expected a list of values"), std::nullopt;
        for (const Value& e : v.elements)
            if (e.is_list || e.is_map) return note(e.line, key + ": expected a plain value"), std::nullopt;
        if (v.is_list) return v.items;
        return split(v.items.at(0), ',');
    }

    FlowCheckpoint read_checkpoint(const std::string& stage, const Value& v) {
        FlowCheckpoint c;
        const std::string what = "stage " + stage + ": checkpoint";
        bool timed = false, defaulted = false;  // given, well or not
        if (!v.is_map) {  // checkpoint: eval
            if (const auto name = scalar(what, v)) c.name = *name;
        } else {
            for (const auto& [key, e] : v.entries) {
                const std::string shown = what + "." + key;
                if (key == "name") {
                    if (const auto name = scalar(shown, e)) c.name = *name;
                } else if (key == "options") {
                    if (const auto o = strings(shown, e)) guard(e.line, [&] { c.options = parse_choices(joined(*o, ","), shown); });
                } else if (key == "params") {
                    read_params(shown, e, c);
                } else if (key == "timeout") {
                    timed = true;
                    if (const auto t = scalar(shown, e)) guard(e.line, [&] { c.timeout_s = parse_duration(*t); }, shown);
                } else if (key == "default") {
                    defaulted = true;
                    if (const auto d = scalar(shown, e)) c.default_choice = *d;
                } else if (key == "reviewers") {
                    if (const auto r = strings(shown, e)) guard(e.line, [&] {
                        check_reviewers(*r);
                        c.reviewers = *r;
                    }, shown);
                } else {
                    note(e.key_line, "unknown key \"" + key + "\" in " + what +
                                         " (known: name, options, params, timeout, default, reviewers)");
                }
            }
        }
        if (c.name.empty()) return note(v.line, what + ": needs a name"), c;
        guard(v.line, [&] { check_name(c.name); });
        const std::vector<std::string>& options = c.options.empty() ? default_options_ : c.options;
        if (!c.default_choice.empty() && std::find(options.begin(), options.end(), c.default_choice) == options.end())
            note(v.line, what + ": default \"" + c.default_choice + "\" is not one of its options (" + joined(options) + ")");
        if (timed != defaulted)
            note(v.line, what + ": timeout and default go together (the default is taken when the timeout passes)");
        return c;
    }

    // params: {lr: float, mode: enum(a|b)} or "lr:float,mode:enum(a|b)".
    void read_params(const std::string& shown, const Value& v, FlowCheckpoint& c) {
        if (!v.is_map) {
            if (const auto text = scalar(shown, v)) guard(v.line, [&] { c.params = parse_param_specs(*text); }, shown);
            return;
        }
        std::string text;
        for (const auto& [key, e] : v.entries)
            if (const auto type = scalar(shown + "." + key, e)) text += (text.empty() ? "" : ",") + key + ":" + *type;
        guard(v.line, [&] { c.params = parse_param_specs(text); }, shown);
    }

    FlowStage read_stage(const std::string& name, const Value& v, const std::string& dir) {
        FlowStage s;
        s.name = name;
        s.line = v.key_line;
        guard(s.line, [&] { check_name(name, "stage name"); });
        const std::string what = "stage " + name;
        if (!v.is_map) return note(v.line, what + ": expected a mapping (script: or run:, and more)"), s;
        const Value* repeat = nullptr;
        for (const auto& [key, e] : v.entries) {
            const std::string shown = what + ": " + key;
            if (key == "script") {
                if (const auto script = scalar(shown, e)) {
                    s.script = *script;
                    const std::string full = script->rfind('/', 0) == 0 ? *script : dir + "/" + *script;
                    if (access(full.c_str(), R_OK) != 0)
                        note(e.line, shown + ": cannot read " + quoted_text(full) + ": " + std::strerror(errno));
                }
            } else if (key == "run") {
                if (const auto run = scalar(shown, e)) {
                    s.run = *run;
                    guard(e.line, [&] { check_utf8(*run, shown); });
                    if (run->find_first_not_of(" \t\n") == std::string::npos) note(e.line, shown + ": an empty command");
                }
            } else if (key == "sbatch") {
                if (const auto options = strings(shown, e)) {
                    s.sbatch = *options;
                    for (const auto& option : s.sbatch) check_sbatch_option(shown, option, e.line);
                }
            } else if (key == "checkpoint") {
                s.checkpoint = read_checkpoint(name, e);
            } else if (key == "after") {
                if (const auto after = strings(shown, e))
                    for (const auto& entry : *after) {
                        const std::size_t dot = entry.find('.');
                        s.after.push_back({entry.substr(0, dot), dot == std::string::npos ? "" : entry.substr(dot + 1)});
                    }
                after_line_[name] = e.line;
            } else if (key == "on") {
                if (const auto on = strings(shown, e)) guard(e.line, [&] { s.on = parse_choices(joined(*on, ","), shown); });
                on_line_[name] = e.line;
            } else if (key == "repeat") {
                repeat = &e;
            } else {
                note(e.key_line, "unknown key \"" + key + "\" in " + what +
                                     " (known: script, run, sbatch, checkpoint, after, on, repeat)");
            }
        }
        if (s.script.empty() == s.run.empty()) note(s.line, what + ": needs script: (a batch script) or run: (a command), one of them");
        if (repeat) read_repeat(what, *repeat, s);
        return s;
    }

    void check_sbatch_option(const std::string& shown, const std::string& option, std::size_t line) {
        if (option.empty() || option[0] != '-')
            return note(line, shown + ": \"" + option + "\" is not an sbatch option (--time=1:00:00, ...)");
        if (const std::string why = refused_sbatch_option(option); !why.empty()) note(line, shown + ": " + why);
    }

    void read_repeat(const std::string& what, const Value& v, FlowStage& s) {
        if (!v.is_map) return note(v.line, what + ": repeat: expected {max: N} (and on: choices)");
        bool max_given = false;
        for (const auto& [key, e] : v.entries) {
            if (key == "max") {
                max_given = true;
                const auto n = scalar(what + ": repeat.max", e);
                if (!n) continue;
                char* end = nullptr;
                errno = 0;
                const long value = std::strtol(n->c_str(), &end, 10);
                if (n->empty() || *end || errno || value < 2 || value > static_cast<long>(max_rounds))
                    note(e.line, what + ": repeat.max: bad value \"" + *n + "\": use a whole number of rounds from 2 to " +
                                     std::to_string(max_rounds));
                else s.repeat_max = static_cast<std::uint32_t>(value);
            } else if (key == "on") {
                if (const auto on = strings(what + ": repeat.on", e))
                    guard(e.line, [&] { s.repeat_on = parse_choices(joined(*on, ","), what + ": repeat.on"); });
            } else {
                note(e.key_line, "unknown key \"" + key + "\" in " + what + ": repeat (known: max, on)");
            }
        }
        if (!max_given) note(v.line, what + ": repeat needs max: the number of rounds at most");
        if (!s.checkpoint)
            note(v.line, what + ": repeat needs a checkpoint: the decision at each round's checkpoint starts the next");
        else if (s.repeat_on.empty())
            s.repeat_on = {options_of(*s.checkpoint).front()};
        else
            for (const auto& choice : s.repeat_on) check_choice(v.line, what + ": repeat.on", choice, *s.checkpoint);
    }

    const std::vector<std::string>& options_of(const FlowCheckpoint& c) const {
        return c.options.empty() ? default_options_ : c.options;
    }
    void check_choice(std::size_t line, const std::string& shown, const std::string& choice, const FlowCheckpoint& c) {
        const auto& options = options_of(c);
        if (std::find(options.begin(), options.end(), choice) == options.end())
            note(line, shown + ": \"" + choice + "\" is not an option of checkpoint " + c.name + " (" + joined(options) + ")");
    }

    // What AFTER names must exist; ON must be its checkpoint's choices; no cycles.
    // Then orders the stages so each comes after what it waits for.
    void link(Flow& flow) {
        for (FlowStage& s : flow.stages) {
            const std::size_t after_line = after_line_.count(s.name) ? after_line_[s.name] : s.line;
            const std::string what = "stage " + s.name + ": after";
            std::size_t checkpoints = 0;
            for (const FlowAfter& a : s.after) {
                const FlowStage* other = flow.stage(a.stage);
                if (a.stage == s.name) note(after_line, what + ": a stage cannot wait for itself (use repeat:)");
                else if (!other) note(after_line, what + ": no stage \"" + a.stage + "\" in this flow");
                else if (!a.checkpoint.empty() && (!other->checkpoint || other->checkpoint->name != a.checkpoint))
                    note(after_line, what + ": stage " + a.stage + " has no checkpoint \"" + a.checkpoint + "\"" +
                                         (other->checkpoint ? " (its checkpoint is " + other->checkpoint->name + ")" : ""));
                checkpoints += !a.checkpoint.empty();
            }
            if (checkpoints > 1)
                note(after_line, what + ": at most one checkpoint (a stage starts on one decision; "
                                        "wait for other stages by name)");
            const FlowAfter* gate = s.after_checkpoint();
            const FlowStage* gating = gate ? flow.stage(gate->stage) : nullptr;
            if (!s.on.empty() && !gate)
                note(on_line_.count(s.name) ? on_line_[s.name] : s.line,
                     "stage " + s.name + ": on: needs after: STAGE.CHECKPOINT (the decision it starts on)");
            if (gating && gating->checkpoint && gating->checkpoint->name == gate->checkpoint) {
                if (s.on.empty()) s.on = {options_of(*gating->checkpoint).front()};
                else
                    for (const auto& choice : s.on)
                        check_choice(on_line_[s.name], "stage " + s.name + ": on", choice, *gating->checkpoint);
            }
        }
        order(flow);
        for (const FlowStage& s : flow.stages)
            if (s.repeat_max)
                for (const FlowStage* later : flow.downstream(s.name))
                    if (later->repeat_max)
                        note(later->line, "stage " + later->name + ": repeats after repeating stage " + s.name +
                                              ": a loop inside a loop is not supported (one repeat: per chain)");
    }

    // Depth-first topological order; a cycle is named with its stages.
    void order(Flow& flow) {
        std::map<std::string, int> mark;  // 1: being visited, 2: done
        std::vector<FlowStage> ordered;
        std::vector<std::string> path;
        std::function<bool(const FlowStage&)> visit = [&](const FlowStage& s) {
            if (mark[s.name] == 2) return true;
            if (mark[s.name] == 1) {
                const auto from = std::find(path.begin(), path.end(), s.name);
                std::vector<std::string> cycle(from, path.end());
                cycle.push_back(s.name);
                note(s.line, "stage " + s.name + " waits for itself: " + joined(cycle, " -> "));
                return false;
            }
            mark[s.name] = 1;
            path.push_back(s.name);
            for (const FlowAfter& a : s.after)
                if (const FlowStage* other = flow.stage(a.stage); other && other != &s && !visit(*other)) return false;
            path.pop_back();
            mark[s.name] = 2;
            ordered.push_back(s);
            return true;
        };
        for (const FlowStage& s : flow.stages)
            if (!visit(s)) return;
        flow.stages = std::move(ordered);
    }

    std::string path_;
    const std::vector<std::string>& default_options_;
    std::vector<std::string>& errors_;
    yaml::Parser* parser_ = nullptr;
    std::map<std::string, std::size_t> after_line_, on_line_;
};

}  // namespace

std::string refused_sbatch_option(const std::string& option) {
    const std::string name = option.substr(0, option.find('='));
    for (const char* reserved : reserved_sbatch)
        if (name == reserved || (std::string(reserved) == "--hawf-" && name.rfind(reserved, 0) == 0))
            return name + " is hawf's to set in a flow (the chain, the checkpoint: use after:, on:, checkpoint:)";
    return "";
}

const FlowAfter* FlowStage::after_checkpoint() const {
    for (const FlowAfter& a : after)
        if (!a.checkpoint.empty()) return &a;
    return nullptr;
}

const FlowStage* Flow::stage(const std::string& stage_name) const {
    for (const FlowStage& s : stages)
        if (s.name == stage_name) return &s;
    return nullptr;
}

std::vector<const FlowStage*> Flow::downstream(const std::string& stage_name) const {
    std::vector<std::string> reached = {stage_name};
    std::vector<const FlowStage*> later;
    for (const FlowStage& s : stages)  // in order: what a stage waits for comes before it
        for (const FlowAfter& a : s.after)
            if (std::find(reached.begin(), reached.end(), a.stage) != reached.end()) {
                reached.push_back(s.name);
                later.push_back(&s);
                break;
            }
    return later;
}

Flow load_flow(const std::string& path, const std::vector<std::string>& default_options,
               std::vector<std::string>& errors) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "re"), std::fclose);
    if (!file) throw Error(ErrorKind::Usage, "cannot read the flow file " + quoted_text(path) + ": " + std::strerror(errno));
    yaml::Parser parser(file.get(), path);
    Flow flow;
    try {
        flow = FlowReader(path, default_options, errors).read(parser);
    } catch (const Error& e) {  // YAML that does not parse: its first error ends the reading
        errors.push_back(e.what());
    }
    // In the order of the file's lines ("PATH:LINE: ..."), as a compiler tells them.
    const auto line_of = [&](const std::string& e) { return std::strtoul(e.c_str() + path.size() + 1, nullptr, 10); };
    std::stable_sort(errors.begin(), errors.end(),
                     [&](const std::string& a, const std::string& b) { return line_of(a) < line_of(b); });
    return flow;
}

}  // namespace hawf
