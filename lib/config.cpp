#include "config.hpp"

#include <yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <cstring>
#include <memory>
#include <set>

#include "error.hpp"

namespace hawf {
namespace {

// A YAML value reduced to what hawf.yaml uses: a scalar or a list of scalars.
struct Value {
    std::vector<std::string> items;
    bool is_list = false;
    std::size_t line = 0;      // where the value starts
    std::size_t key_line = 0;  // where its key is (differs for a block list)
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

    Error error_at(std::size_t line, const std::string& message) const {
        return Error(ErrorKind::Config, path_ + ":" + std::to_string(line) + ": " + message);
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
    Value value() {
        Value v;
        yaml_event_t ev = next();
        v.line = ev.start_mark.line + 1;
        if (ev.type == YAML_SCALAR_EVENT) {
            v.items.push_back(scalar(ev));
            return done(ev), v;
        }
        if (ev.type != YAML_SEQUENCE_START_EVENT) throw fail(ev, "expected a value or a list of values");
        done(ev);
        v.is_list = true;
        for (;;) {
            ev = next();
            if (ev.type == YAML_SEQUENCE_END_EVENT) return done(ev), v;
            if (ev.type != YAML_SCALAR_EVENT) throw fail(ev, "expected a plain value in the list");
            v.items.push_back(scalar(ev));
            done(ev);
        }
    }

    std::string path_;
    yaml_parser_t parser_;
    std::set<std::string> seen_;
};

}  // namespace

std::string config_path_from_env() {
    const char* env = std::getenv("HAWF_CONF");
    return env && *env ? env : default_config_path;
}

Config load_config(const std::string& path) {
    Config config;
    config.path = path;
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "re"), std::fclose);
    if (!file) {
        if (errno == ENOENT) return config;
        throw Error(ErrorKind::Config, "cannot read " + path + ": " + std::strerror(errno));
    }
    config.found = true;
    Parser parser(file.get(), path);
    parser.parse([&](const std::string& key, const Value& v) {
        auto scalar = [&] {
            if (v.is_list || v.items.size() != 1) throw parser.error_at(v.line, key + ": expected a single value");
            return v.items[0];
        };
        auto number = [&](std::int64_t lo, std::int64_t hi) {
            std::string s = scalar();
            char* end = nullptr;
            errno = 0;
            long long n = std::strtoll(s.c_str(), &end, 10);
            if (s.empty() || *end || errno || n < lo || n > hi)
                throw parser.error_at(v.line, key + ": bad value \"" + s + "\": use a whole number from " +
                                                  std::to_string(lo) + " to " + std::to_string(hi));
            return static_cast<std::int64_t>(n);
        };
        try {
            if (key == "spool") {
                config.spool = scalar();
                if (config.spool.empty() || config.spool[0] != '/')
                    throw Error(ErrorKind::Usage, "bad spool \"" + config.spool + "\": use an absolute path");
            } else if (key == "default_options") {
                std::string joined;
                for (const auto& item : v.items) joined += (joined.empty() ? "" : ",") + item;
                config.default_options = parse_choices(joined, "default_options");
            } else if (key == "max_param_bytes") {
                config.limits.max_param_bytes = number(1, 1 << 20);
            } else if (key == "max_comment_bytes") {
                config.limits.max_comment_bytes = number(0, 1 << 24);
            } else if (key == "poll_interval") {
                config.poll_interval_s = parse_duration(scalar());
            } else {
                throw parser.error_at(v.key_line, "unknown key \"" + key +
                                                  "\": allowed are spool, default_options, max_param_bytes, "
                                                  "max_comment_bytes, poll_interval");
            }
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Config) throw;
            throw parser.error_at(v.line, e.what());
        }
    });
    return config;
}

}  // namespace hawf
