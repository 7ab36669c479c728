#include "slurm.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "display.hpp"
#include "error.hpp"
#include "fsutil.hpp"
#include "process.hpp"
#include "validate.hpp"

extern char** environ;

namespace hawf {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& items) {
    std::vector<char*> out;
    for (const auto& s : items) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

// What a command printed, for a message: its first line, escaped, at most 80 bytes.
std::string excerpt(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    const bool cut = line.size() > 80;
    if (cut) line.resize(80);
    return "\"" + shown(line) + (cut ? "...\"" : "\"");
}

// Digits that fit a 64-bit number.
bool small_number(const std::string& s) { return s.size() <= 18 && all_digits(s); }

}  // namespace

bool CommandResult::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string CommandResult::message() const {
    std::string text = err.empty() ? out : err;
    auto end = text.find('\n');
    std::string line = text.substr(0, end);
    if (line.empty()) line = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                 : "exit status " + std::to_string(WEXITSTATUS(status));
    return line;
}

RunAs run_as_user(uid_t uid) {
    std::vector<char> buf(16384);
    passwd pw{}, *found = nullptr;
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found)
        throw Error(ErrorKind::NotFound, "uid " + std::to_string(uid) + " has no entry in the user database");
    RunAs as{uid, pw.pw_gid, {}};
    int count = 64;
    as.groups.resize(static_cast<std::size_t>(count));
    while (getgrouplist(pw.pw_name, pw.pw_gid, as.groups.data(), &count) < 0)
        as.groups.resize(static_cast<std::size_t>(count));
    as.groups.resize(static_cast<std::size_t>(count));
    return as;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd,
                          const std::vector<std::string>* env, int timeout_s, const std::string* input,
                          const RunAs* as) {
    const Fd stdin_source = input ? input_file(*input) : Fd();
    // Everything the child needs, made here: the child may be forked from a process
    // with threads (hawfd), where it must make async-signal-safe calls only.
    std::vector<char*> args = c_strings(argv);
    std::vector<char*> envp = env ? c_strings(*env) : std::vector<char*>();
    char** const child_env = env ? envp.data() : environ;
    std::string search_path;  // execvp's: the PATH of the environment the command gets
    for (char** e = child_env; *e; ++e)
        if (std::strncmp(*e, "PATH=", 5) == 0) search_path = *e + 5;
    const std::string program = program_path(argv.at(0), search_path);
    const std::string cannot_cd = "cannot change to " + cwd, cannot_run = "cannot run " + argv[0];
    const std::string cannot_switch = "cannot change to uid " + std::to_string(as ? as->uid : 0);
    Subprocess command(stdin_source.get(), [&] {
        if (!cwd.empty() && chdir(cwd.c_str()) != 0) exit_child(STDERR_FILENO, cannot_cd.c_str(), errno, 126);
        if (as && (setgroups(as->groups.size(), as->groups.data()) != 0 || setresgid(as->gid, as->gid, as->gid) != 0 ||
                   setresuid(as->uid, as->uid, as->uid) != 0 || (as->uid != 0 && setuid(0) == 0)))
            exit_child(STDERR_FILENO, cannot_switch.c_str(), errno, 126);
        execve(program.c_str(), args.data(), child_env);
        exit_child(STDERR_FILENO, cannot_run.c_str(), errno, 127);
    });
    Subprocess::Finished done = command.finish(std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s));
    CommandResult result{done.status, std::move(done.out), std::move(done.err)};
    if (done.timed_out)
        result.err = joined(argv, " ") + ": no answer within " + std::to_string(timeout_s) + " s\n" + result.err;
    return result;
}

bool JobInfo::active() const {
    for (const char* waiting : {"PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                                "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "COMPLETING"})
        if (state == waiting) return true;
    return false;
}

std::string Slurm::tool(const char* name) const { return bindir_.empty() ? name : bindir_ + "/" + name; }

void Slurm::run_or_throw(const std::vector<std::string>& argv) const {
    CommandResult r = run_command(argv);
    if (!r.ok()) throw Error(ErrorKind::System, joined(argv, " ") + ": " + r.message());
}

std::string Slurm::submit(const std::vector<std::string>& args, const std::string& script, const std::string& cwd,
                          const std::vector<std::string>* env) const {
    std::vector<std::string> argv = {tool("sbatch"), "--parsable"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(script);
    CommandResult r = run_command(argv, cwd, env);
    if (!r.ok()) throw Error(ErrorKind::System, "sbatch " + script + ": " + r.message());
    // --parsable prints "ID" or "ID;CLUSTER". sbatch succeeded, so a job may well exist:
    // say that, not a misleading "exit status 0".
    std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
    if (!small_number(id))
        throw Error(ErrorKind::System, "sbatch " + script + " succeeded but printed no job id (output: " +
                                           (r.out.empty() ? std::string("none") : excerpt(r.out)) +
                                           "): a job may have been submitted, check squeue");
    return id;
}

void Slurm::release(const std::string& job) const { run_or_throw({tool("scontrol"), "release", job}); }
void Slurm::hold(const std::string& job) const { run_or_throw({tool("scontrol"), "hold", job}); }
void Slurm::cancel(const std::string& job) const { run_or_throw({tool("scancel"), job}); }
std::vector<std::string> job_ranges(const std::vector<std::string>& jobs) {
    std::vector<std::string> words;
    std::map<std::string, std::vector<std::uint32_t>> tasks;  // of each array, in WORDS as its array job id
    for (const std::string& job : jobs) {
        check_job_id(job);  // "1_2" or "3": never an option or a range of our own
        const std::size_t underscore = job.find('_');
        if (underscore == std::string::npos) {
            words.push_back(job);
            continue;
        }
        const std::string array = job.substr(0, underscore);
        auto [it, first] = tasks.emplace(array, std::vector<std::uint32_t>());
        if (first) words.push_back(array + "_");
        it->second.push_back(static_cast<std::uint32_t>(std::stoul(job.substr(underscore + 1))));
    }
    for (std::string& word : words) {
        if (word.back() != '_') continue;
        std::vector<std::uint32_t>& of = tasks.at(word.substr(0, word.size() - 1));
        std::sort(of.begin(), of.end());
        of.erase(std::unique(of.begin(), of.end()), of.end());
        word += of.size() == 1 ? std::to_string(of[0]) : "[" + task_ranges(of) + "]";
    }
    return words;
}

namespace {
std::vector<std::string> with_jobs(std::vector<std::string> argv, const std::vector<std::string>& jobs) {
    for (std::string& word : job_ranges(jobs)) argv.push_back(std::move(word));
    return argv;
}
}  // namespace

void Slurm::release(const std::vector<std::string>& jobs) const { run_or_throw(with_jobs({tool("scontrol"), "release"}, jobs)); }
void Slurm::hold(const std::vector<std::string>& jobs) const { run_or_throw(with_jobs({tool("scontrol"), "hold"}, jobs)); }
void Slurm::cancel(const std::vector<std::string>& jobs) const { run_or_throw(with_jobs({tool("scancel")}, jobs)); }

void Slurm::requeue_hold(const std::string& job) const { run_or_throw({tool("scontrol"), "requeuehold", job}); }
void Slurm::requeue(const std::string& job) const { run_or_throw({tool("scontrol"), "requeue", job}); }

void Slurm::update(const std::string& job, const std::vector<std::string>& assignments) const {
    std::vector<std::string> argv = {tool("scontrol"), "update", "JobId=" + job};
    argv.insert(argv.end(), assignments.begin(), assignments.end());
    run_or_throw(argv);
}

void Slurm::signal(const std::string& job, const std::string& sig) const {
    const std::size_t at = sig.find("@batch");
    run_or_throw({tool("scancel"), "--signal=" + sig.substr(0, at), at == std::string::npos ? "--full" : "--batch", job});
}

SlurmFailure classify_failure(const std::string& message) {
    const auto says = [&](std::initializer_list<const char*> texts) {
        for (const char* t : texts)
            if (message.find(t) != std::string::npos) return true;
        return false;
    };
    if (says({"already finished", "already completing or completed", "Invalid job id"})) return SlurmFailure::JobGone;
    // When slurmctld does not answer within MessageTimeout, scontrol 22.05 release, hold
    // and update say "Unexpected message received"; scancel and squeue "Socket timed
    // out"; run_command's own timeout "no answer within".
    if (says({"Unexpected message received", "timed out", "Unable to contact", "Zero Bytes were transmitted",
              "Communication connection", "send/recv", "Connection refused", "Connection reset", "Broken pipe",
              "no answer within", "killed by signal"}))
        return SlurmFailure::NoAnswer;
    return SlurmFailure::Refused;
}

std::string Slurm::mail_user(const std::string& job) const {
    check_job_id(job);
    const CommandResult r = run_command({tool("scontrol"), "show", "job", job});
    if (!r.ok()) return "";
    std::string mail_user;
    std::size_t start = 0;
    while (start < r.out.size()) {
        const std::size_t end = std::min(r.out.find('\n', start), r.out.size());
        const std::string line = r.out.substr(start, end - start);
        const std::size_t first = line.find_first_not_of(' ');
        if (first != std::string::npos && line.compare(first, 9, "MailUser=") == 0) {
            const std::size_t value = first + 9;
            mail_user = line.substr(value, line.find(' ', value) - value);
        }
        start = end + 1;
    }
    return mail_user == "(null)" ? "" : mail_user;
}

std::optional<std::string> Slurm::squeue_line(const std::string& job, const std::string& format) const {
    const auto lines = squeue_lines(job, format);
    if (!lines) return std::nullopt;
    return lines->empty() ? "" : lines->front();
}

std::vector<std::uint32_t> Slurm::array_task_ids(const std::string& array_job) const {
    // --array: one line per task, the queued remainder's too ("3", never "3-40").
    const auto lines = squeue_lines(array_job, "ArrayTaskID:0", {"--array"});
    std::vector<std::uint32_t> tasks;
    for (std::string line : lines ? *lines : std::vector<std::string>()) {
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        if (line == "N/A") continue;  // not an array job
        if (!small_number(line) || line.size() > 7)
            throw Error(ErrorKind::System, "squeue --array --jobs=" + array_job + " printed " + excerpt(line) +
                                               ", not a task id");
        tasks.push_back(static_cast<std::uint32_t>(std::stoul(line)));
    }
    std::sort(tasks.begin(), tasks.end());
    tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
    return tasks;
}

std::optional<std::vector<std::string>> Slurm::squeue_lines(const std::string& job, const std::string& format,
                                                            const std::vector<std::string>& extra) const {
    check_job_id(job);  // one job or task: "1,2" would list two, and the first line could be either
    // Begin times as plain epoch seconds; no SQUEUE_* setting of the caller may filter
    // the job away (SQUEUE_USERS would make someone else's job look unknown).
    std::vector<std::string> env = {"SLURM_TIME_FORMAT=%s"};
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "SQUEUE_", 7) != 0 && std::strncmp(*e, "SLURM_TIME_FORMAT=", 18) != 0) env.push_back(*e);
    // "--jobs=J" is one word: J can never be read as an option.
    std::vector<std::string> argv = {tool("squeue"), "--noheader", "--states=all", "--jobs=" + job,
                                     "--Format=" + format};
    argv.insert(argv.end(), extra.begin(), extra.end());
    CommandResult r = run_command(argv, "", &env);
    if (!r.ok()) {
        if (classify_failure(r.message()) == SlurmFailure::JobGone) return std::nullopt;
        throw Error(ErrorKind::System, "squeue --jobs=" + job + ": " + r.message());
    }
    std::vector<std::string> lines = split(r.out, '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
}

std::optional<JobShape> Slurm::shape(const std::string& job) const {
    const std::optional<std::string> line =
        squeue_line(job, "State:0|,TimeLimit:0|,Partition:0|,NumNodes:0|,MaxNodes:0|,NumCPUs:0|,NumTasks:0");
    if (!line || line->empty()) return std::nullopt;
    std::vector<std::string> f;
    for (std::size_t pos = 0;;) {
        const std::size_t bar = line->find('|', pos);
        f.push_back(line->substr(pos, bar == std::string::npos ? std::string::npos : bar - pos));
        if (bar == std::string::npos) break;
        pos = bar + 1;
    }
    for (auto& field : f)
        while (!field.empty() && std::isspace(static_cast<unsigned char>(field.back()))) field.pop_back();
    if (f.size() != 7 || !small_number(f[3]) || !small_number(f[5]) || !small_number(f[6]))
        throw Error(ErrorKind::System, "squeue --jobs=" + job + " printed " + excerpt(*line) +
                                           ", not STATE|TIME_LIMIT|PARTITION|NODES|MAX_NODES|CPUS|TASKS");
    JobInfo state;
    state.state = f[0];
    if (!state.active()) return std::nullopt;
    // MaxNodes is 0 where the job set no maximum.
    const bool range = small_number(f[4]) && f[4] != "0" && f[4] != f[3];
    return JobShape{{"TimeLimit", f[1]}, {"Partition", f[2]}, {"NumNodes", f[3] + (range ? "-" + f[4] : "")},
                    {"NumCPUs", f[5]}, {"NumTasks", f[6]}};
}

std::optional<JobInfo> Slurm::job(const std::string& job) const {
    const std::optional<std::string> found =
        squeue_line(job, "UserId:0|,State:0|,PriorityLong:0|,EligibleTime:0|,ArrayJobID:0|,ArrayTaskID:0|,Partition:0|,"
                         "QOS:0|,Account:0|,Reason:0");
    if (!found) return std::nullopt;
    const std::string& line = *found;
    if (line.empty()) return std::nullopt;  // a task id of a known array job, e.g. 28_9
    // UID|STATE|PRIORITY|ELIGIBLE|ARRAYJOB|ARRAYTASK|PARTITION|QOS|ACCOUNT|REASON. Only the account (any
    // text a user gives where associations are not enforced: slurmctld just lower-cases
    // it) and the reason (slurmctld's own text) may hold anything, '|' included, so they
    // come last: they cannot shift the fields before them. The rest must be exactly
    // what squeue prints there.
    std::vector<std::string> f;
    std::size_t pos = 0;
    for (int i = 0; i < 9; ++i) {
        const std::size_t bar = line.find('|', pos);
        if (bar == std::string::npos) break;
        f.push_back(line.substr(pos, bar - pos));
        pos = bar + 1;
    }
    // Partition and QOS names as slurm.conf and sacctmgr allow them; squeue prints
    // "(null)" for a QOS or account the job has none of.
    const auto is_name = [](const std::string& s) {
        for (const char c : s)
            if (c <= ' ' || c >= 0x7f) return false;  // signed char: bytes above 0x7f too
        return !s.empty();
    };
    // A task is "8"; an array's queued remainder "3-40", "1,5-9" or with a throttle "3-40%4".
    const auto is_tasks = [](const std::string& s) {
        return s == "N/A" || (!s.empty() && s.find_first_not_of("0123456789-,%[]") == std::string::npos);
    };
    JobInfo info;
    const bool parsed = f.size() == 9 && small_number(f[0]) && std::stoull(f[0]) < 4294967295ULL &&
                        !f[1].empty() && f[1].find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos &&
                        small_number(f[2]) &&
                        (small_number(f[3]) || f[3] == "N/A" || f[3] == "Unknown" || f[3] == "None") &&
                        small_number(f[4]) && is_tasks(f[5]) && is_name(f[6]) && is_name(f[7]) && !f[8].empty();
    if (!parsed)
        throw Error(ErrorKind::System,
                    "squeue --jobs=" + job + " printed " + excerpt(line) +
                        ", not UID|STATE|PRIORITY|ELIGIBLE|ARRAYJOB|ARRAYTASK|PARTITION|QOS|ACCOUNT|REASON");
    info.uid = static_cast<uid_t>(std::stoull(f[0]));
    info.state = f[1];
    info.held = (info.state == "PENDING" || info.state == "REQUEUE_HOLD") && std::stoull(f[2]) == 0;
    info.eligible = small_number(f[3]) ? std::stoll(f[3]) : 0;
    if (f[5] != "N/A") {
        info.array_job = f[4];
        info.array_task = f[5];
    }
    info.partition = f[6];
    info.qos = f[7] == "(null)" ? "" : f[7];
    info.account = f[8] == "(null)" ? "" : f[8];
    info.reason = line.substr(pos);
    while (!info.reason.empty() && std::isspace(static_cast<unsigned char>(info.reason.back()))) info.reason.pop_back();
    return info;
}

}  // namespace hawf
