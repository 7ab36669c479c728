// A fake Slurm for the unit tests: tiny sbatch, scontrol, scancel and squeue shell
// scripts in a temporary bindir. Each call appends its argv (name, then the
// arguments, tab-separated) as one line to calls.log and prints what the real
// command would:
//
//   sbatch            "123" (or the content of sbatch.out); dumps its environment to
//                     sbatch.env and its working directory to sbatch.cwd
//   squeue ... --jobs=J ...  the content of squeue.J, else "Invalid job id specified";
//   scontrol show job J  the content of show.J (if any)
//                     dumps its environment to squeue.env
//   any call          fails with exit 1 and the content of fail.KEY on stderr if that
//                     file exists, KEY being sbatch, release.J, hold.J, update.J,
//                     squeue.J or cancel.J (scancel, also with --signal);
//                     if times.KEY holds a number N, only the next N calls fail;
//                     if passes.KEY holds N, the next N calls succeed first
//
// The scripts use only shell builtins (and /usr/bin/env for the dump), so they work
// with any environment. The state directory is world-writable so that a job user
// (run_as_user) can call them too.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace hawf::test {

class FakeSlurm {
public:
    FakeSlurm() : bin_(root_ / "bin"), state_(root_ / "state") {
        if (mkdir(bin_.c_str(), 0755) != 0 || mkdir(state_.c_str(), 0755) != 0)
            throw std::runtime_error("cannot create the fake Slurm dirs");
        chmod(state_.c_str(), 0777);
        const std::string script =
            "#!/bin/sh\n"
            "dir='" + state_ + "'\n"
            "name=${0##*/}\n"
            "{ printf '%s' \"$name\"; for a in \"$@\"; do printf '\\t%s' \"$a\"; done; printf '\\n'; } >> \"$dir/calls.log\"\n"
            "eval \"last=\\${$#}\"\n"
            "case \"$name $1\" in\n"
            "  'sbatch '*) /usr/bin/env > \"$dir/sbatch.env\"; pwd > \"$dir/sbatch.cwd\"; key=sbatch ;;\n"
            "  'scontrol update') key=\"update.${2#JobId=}\" ;;\n"
            "  'scontrol show') key=\"show.$3\" ;;\n"
            "  'scontrol '*) key=\"$1.$2\" ;;\n"
            "  'scancel '*) key=\"cancel.$last\" ;;\n"
            "  'squeue '*) /usr/bin/env > \"$dir/squeue.env\"; key=squeue.unknown\n"
            "    for a in \"$@\"; do case \"$a\" in --jobs=*) key=\"squeue.${a#--jobs=}\" ;; esac; done ;;\n"
            "  *) key=unknown ;;\n"
            "esac\n"
            "emit() { while IFS= read -r line || [ -n \"$line\" ]; do printf '%s\\n' \"$line\"; done < \"$1\"; }\n"
            "fails=yes\n"
            "if [ -f \"$dir/times.$key\" ]; then read -r n < \"$dir/times.$key\"\n"
            "  if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > \"$dir/times.$key\"; else fails=no; fi; fi\n"
            "if [ -f \"$dir/passes.$key\" ]; then read -r n < \"$dir/passes.$key\"\n"
            "  if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > \"$dir/passes.$key\"; fails=no; fi; fi\n"
            "if [ $fails = yes ] && [ -f \"$dir/fail.$key\" ]; then emit \"$dir/fail.$key\" >&2; exit 1; fi\n"
            "case \"$key\" in\n"
            "  sbatch) if [ -f \"$dir/next_job\" ]; then read -r n < \"$dir/next_job\"; echo $((n + 1)) > \"$dir/next_job\"; echo $n\n"
            "          elif [ -f \"$dir/sbatch.out\" ]; then emit \"$dir/sbatch.out\"; else echo 123; fi ;;\n"
            "  show.*) if [ -f \"$dir/$key\" ]; then emit \"$dir/$key\"; fi ;;\n"
            "  squeue.*) if [ -f \"$dir/$key\" ]; then emit \"$dir/$key\"; else\n"
            "            echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1; fi ;;\n"
            "esac\n"
            "exit 0\n";
        for (const char* name : {"sbatch", "scontrol", "scancel", "squeue"}) write_text(bin_ + "/" + name, script, 0755);
    }

    const std::string& bindir() const { return bin_; }
    std::string state(const std::string& name) const { return state_ + "/" + name; }

    // Makes the call with KEY fail with MESSAGE (its stderr).
    void fail(const std::string& key, const std::string& message) const { write_text(state("fail." + key), message); }
    // ... only the next TIMES calls.
    void fail(const std::string& key, const std::string& message, int times) const {
        fail(key, message);
        write_text(state("times." + key), std::to_string(times) + "\n");
    }
    // ... only after the next PASSES calls succeeded.
    void fail_after(const std::string& key, const std::string& message, int passes) const {
        fail(key, message);
        write_text(state("passes." + key), std::to_string(passes) + "\n");
    }
    void ok(const std::string& key) const {
        unlink(state("fail." + key).c_str());
        unlink(state("times." + key).c_str());
        unlink(state("passes." + key).c_str());
    }
    void set_output(const std::string& key, const std::string& out) const { write_text(state(key), out); }

    // Every call so far, oldest first: {"scontrol", "release", "43"}.
    std::vector<std::vector<std::string>> calls() const {
        std::vector<std::vector<std::string>> out;
        std::istringstream in(read_text(state("calls.log")));
        std::string line;
        while (std::getline(in, line)) {
            std::vector<std::string> argv;
            std::string::size_type start = 0;
            for (;;) {
                auto tab = line.find('\t', start);
                argv.push_back(line.substr(start, tab - start));
                if (tab == std::string::npos) break;
                start = tab + 1;
            }
            out.push_back(argv);
        }
        return out;
    }
    void clear_calls() const { unlink(state("calls.log").c_str()); }

    // The environment sbatch last ran with, one "NAME=value" per entry.
    std::vector<std::string> sbatch_env() const { return env_of("sbatch"); }
    std::vector<std::string> squeue_env() const { return env_of("squeue"); }
    std::vector<std::string> env_of(const std::string& command) const {
        std::vector<std::string> out;
        std::istringstream in(read_text(state(command + ".env")));
        std::string line;
        while (std::getline(in, line)) out.push_back(line);
        return out;
    }
    std::string sbatch_cwd() const {
        std::string cwd = read_text(state("sbatch.cwd"));
        if (!cwd.empty() && cwd.back() == '\n') cwd.pop_back();
        return cwd;
    }

private:
    TempDir root_{0755};
    std::string bin_, state_;
};

// What Slurm::job asks squeue for, and one line of its answer, fields in that order:
// UID|STATE|PRIORITY|ELIGIBLE|ARRAYJOB|ARRAYTASK|PARTITION|QOS|ACCOUNT|REASON (ELIGIBLE: epoch
// seconds or "N/A"; ARRAYTASK "N/A" for a job of its own, whose ARRAYJOB is its own id).
inline const std::string squeue_format =
    "--Format=UserId:0|,State:0|,PriorityLong:0|,EligibleTime:0|,ArrayJobID:0|,ArrayTaskID:0|,Partition:0|,QOS:0|,"
    "Account:0|,Reason:0";
inline std::string squeue_line(uid_t uid, const std::string& state, unsigned long long priority,
                               const std::string& eligible, const std::string& reason,
                               const std::string& partition = "debug", const std::string& qos = "normal",
                               const std::string& account = "(null)", const std::string& array_job = "1",
                               const std::string& array_task = "N/A") {
    return std::to_string(uid) + "|" + state + "|" + std::to_string(priority) + "|" + eligible + "|" + array_job +
           "|" + array_task + "|" + partition + "|" + qos + "|" + account + "|" + reason + "\n";
}

// Prepends DIR to this process's PATH for the lifetime of the object.
class PathPrepend {
public:
    explicit PathPrepend(const std::string& dir) {
        const char* old = std::getenv("PATH");
        had_ = old != nullptr;
        if (old) old_ = old;
        setenv("PATH", (dir + ":" + (had_ ? old_ : std::string("/usr/bin:/bin"))).c_str(), 1);
    }
    ~PathPrepend() {
        if (had_) setenv("PATH", old_.c_str(), 1);
        else unsetenv("PATH");
    }
    PathPrepend(const PathPrepend&) = delete;
    PathPrepend& operator=(const PathPrepend&) = delete;

private:
    bool had_ = false;
    std::string old_;
};

}  // namespace hawf::test
