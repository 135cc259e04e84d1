#pragma once
// Runs a program as a child process (POSIX) and captures its stdout, stderr and exit status
// separately, for the CLI tests.
//
//   auto r = sturdy_cli_test::run_process("/path/to/sturdy", {"models", "--json"},
//                                         {{"OPENAI_MODEL", "demo-mini"}});
//   r.status; r.out; r.err; r.seconds;
//
// The child's environment is ours without OPENAI_* and proxy variables (a developer's key or a CI
// proxy must not leak into the tests), plus `env`. Its stdin is /dev/null. A child still running
// after `limit` is killed, and reported with status -1.

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace sturdy_cli_test {

struct process_result {
    int status = -1;     ///< exit status; -1 if killed by a signal or by the time limit
    std::string out;     ///< everything written to stdout
    std::string err;     ///< everything written to stderr
    double seconds = 0;  ///< wall time from spawn to exit
};

namespace detail {

/// An anonymous temporary file (removed when closed): the child writes, we read back.
class capture_file {
public:
    capture_file() : file_(std::tmpfile()) {
        if (!file_) throw std::runtime_error("tmpfile failed");
    }
    ~capture_file() { std::fclose(file_); }
    capture_file(const capture_file&) = delete;
    capture_file& operator=(const capture_file&) = delete;

    int fd() const { return fileno(file_); }
    std::string contents() const {
        std::string text;
        char buffer[4096];
        ::lseek(fd(), 0, SEEK_SET);
        for (;;) {
            const auto n = ::read(fd(), buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
        return text;
    }

private:
    std::FILE* file_;
};

inline bool inherited(std::string_view entry) {
    static const std::string_view dropped[] = {"http_proxy=", "https_proxy=", "all_proxy=", "no_proxy=",
                                               "HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY="};
    if (entry.rfind("OPENAI_", 0) == 0) return false;
    for (auto prefix : dropped)
        if (entry.rfind(prefix, 0) == 0) return false;
    return true;
}

}  // namespace detail

inline process_result run_process(const std::string& program, const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env = {},
                                  std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::vector<std::string> env_entries;
    for (char** e = environ; e && *e; ++e)
        if (detail::inherited(*e)) env_entries.emplace_back(*e);
    for (const auto& [name, value] : env) env_entries.push_back(name + "=" + value);

    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_entries) envp.push_back(e.data());
    envp.push_back(nullptr);

    detail::capture_file out, err;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd(), 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd(), 2);

    const auto started = std::chrono::steady_clock::now();
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error("cannot run " + program + ": " + std::strerror(spawned));

    int wstatus = 0;
    bool killed = false;
    for (;;) {
        const pid_t done = ::waitpid(pid, &wstatus, WNOHANG);
        if (done == pid) break;
        if (done < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
        if (!killed && std::chrono::steady_clock::now() - started > limit) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }

    process_result r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    r.status = !killed && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    r.out = out.contents();
    r.err = err.contents();
    return r;
}

}  // namespace sturdy_cli_test
