// hawf's YAML reader (libyaml), for hawf.yaml and flow files: a document that is a
// mapping, read into values that keep their line, so every mistake is told as
// FILE:LINE. Nesting is bounded and mappings are read whole, duplicate keys refused.
#pragma once

#include <yaml.h>

#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace hawf::yaml {

// A YAML value reduced to what hawf's files use: a scalar, a list, or a mapping of
// keys to values, each with the line it is on (for file:line errors).
struct Value {
    std::vector<std::string> items;  // a scalar's text, or the scalars of a list
    bool is_list = false;
    std::vector<Value> elements;     // a list's elements, scalars included (policies:)
    std::vector<std::pair<std::string, Value>> entries;  // a mapping, in file order
    bool is_map = false;
    std::size_t line = 0;      // where the value starts
    std::size_t key_line = 0;  // where its key is (differs for a block list or mapping)
};

class Parser {
public:
    Parser(FILE* file, std::string path) : path_(std::move(path)) {
        yaml_parser_initialize(&parser_);
        yaml_parser_set_input_file(&parser_, file);
    }
    ~Parser() { yaml_parser_delete(&parser_); }

    // Calls on_key(key, value) for each top-level entry of the mapping.
    void parse(const std::function<void(const std::string&, const Value&)>& on_key) {
        expect(YAML_STREAM_START_EVENT);
        yaml_event_t ev = next();
        if (ev.type == YAML_STREAM_END_EVENT) return done(ev);  // empty file
        if (ev.type != YAML_DOCUMENT_START_EVENT) throw fail(ev, "expected a document");
        done(ev);
        ev = next();
        if (ev.type == YAML_DOCUMENT_END_EVENT) return done(ev);
        if (ev.type != YAML_MAPPING_START_EVENT) throw fail(ev, "expected a mapping of key: value");
        done(ev);
        for (;;) {
            ev = next();
            if (ev.type == YAML_MAPPING_END_EVENT) return done(ev);
            if (ev.type != YAML_SCALAR_EVENT) throw fail(ev, "expected a key");
            std::string key = scalar(ev);
            std::size_t key_line = ev.start_mark.line + 1;
            done(ev);
            if (!seen_.insert(key).second) throw error_at(key_line, "duplicate key \"" + key + "\"");
            Value v = value();
            v.key_line = key_line;
            on_key(key, v);
        }
    }

    // One line whatever the file holds: a key or value quoted raw in MESSAGE (a key
    // with a newline, say) has its control bytes shown as \xNN.
    Error error_at(std::size_t line, const std::string& message) const {
        std::string text;
        for (const char c : message) {
            if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
                text += c;
                continue;
            }
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
            text += escaped;
        }
        return Error(ErrorKind::Config, path_ + ":" + std::to_string(line) + ": " + text);
    }

private:
    yaml_event_t next() {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser_, &ev))
            throw error_at(parser_.problem_mark.line + 1,
                           std::string("YAML syntax: ") + (parser_.problem ? parser_.problem : "error"));
        return ev;
    }
    void done(yaml_event_t& ev) { yaml_event_delete(&ev); }
    Error fail(yaml_event_t& ev, const std::string& message) {
        Error e = error_at(ev.start_mark.line + 1, message);
        done(ev);
        return e;
    }
    void expect(yaml_event_type_t type) {
        yaml_event_t ev = next();
        if (ev.type != type) throw fail(ev, "unexpected YAML structure");
        done(ev);
    }
    static std::string scalar(const yaml_event_t& ev) {
        return std::string(reinterpret_cast<const char*>(ev.data.scalar.value), ev.data.scalar.length);
    }
    Value value(int depth = 0) { return value_of(next(), depth); }
    // The value that starts with EV. Nesting is bounded, and mappings are read whole,
    // so an unknown key is refused by name.
    Value value_of(yaml_event_t ev, int depth) {
        Value v;
        v.line = ev.start_mark.line + 1;
        if (ev.type == YAML_SCALAR_EVENT) {
            v.items.push_back(scalar(ev));
            return done(ev), v;
        }
        if (ev.type != YAML_MAPPING_START_EVENT && ev.type != YAML_SEQUENCE_START_EVENT)
            throw fail(ev, "expected a value or a list of values");
        if (depth >= 8) throw fail(ev, "values nested too deeply");
        if (ev.type == YAML_MAPPING_START_EVENT) {
            done(ev);
            v.is_map = true;
            std::set<std::string> seen;
            for (;;) {
                ev = next();
                if (ev.type == YAML_MAPPING_END_EVENT) return done(ev), v;
                if (ev.type != YAML_SCALAR_EVENT) throw fail(ev, "expected a key");
                std::string key = scalar(ev);
                std::size_t key_line = ev.start_mark.line + 1;
                done(ev);
                if (!seen.insert(key).second) throw error_at(key_line, "duplicate key \"" + key + "\"");
                Value entry = value(depth + 1);
                entry.key_line = key_line;
                v.entries.emplace_back(std::move(key), std::move(entry));
            }
        }
        done(ev);
        v.is_list = true;
        for (;;) {
            ev = next();
            if (ev.type == YAML_SEQUENCE_END_EVENT) return done(ev), v;
            Value element = value_of(ev, depth + 1);
            element.key_line = element.line;
            if (!element.is_list && !element.is_map) v.items.push_back(element.items[0]);
            v.elements.push_back(std::move(element));
        }
    }

    std::string path_;
    yaml_parser_t parser_;
    std::set<std::string> seen_;
};

}  // namespace hawf::yaml
