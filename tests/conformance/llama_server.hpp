// Conformance test support: llama.cpp's llama-server (../shared/peers/llama-server.sh), started
// by the test process itself, once per executable and kind, on a free loopback port.
//
//   auto client = sturdy_conformance::chat_client();     // starts the chat server on first use
//   auto reply = client.chat(sturdy_conformance::user_request("Say hello."));
//
// The script is $STURDY_LLAMA_SERVER_SH, else <tests>/../../shared/peers/llama-server.sh. The server
// must have been built by `llama-server.sh build` (about 8 minutes; .ci/run does it in the
// background): $STURDY_LLAMA_SERVER_BIN, else $STURDY_PEERS_DIR (default ~/.cache/sturdy-peers)/
// llama-src-*/build/bin/llama-server. A test never builds it. A missing script, an unbuilt server or
// a failed start fails every test that needs the server, with the reason; nothing is skipped.
//
// Servers stop when the executable exits, even when it dies without running destructors (a crash,
// ctest's timeout kill): each server has a detached shell that runs `llama-server.sh stop PID` once
// the pipe that only this process holds open for writing reaches end-of-file.
//
// Create clients after running_server() returns (chat_client() and embed_client() do): processes
// started while a client holds connections would inherit its sockets.
#pragma once

#include <sturdy/client.hpp>

#include <glob.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#ifndef STURDY_TEST_SOURCE_DIR
#error "STURDY_TEST_SOURCE_DIR (the absolute path of tests/) must be defined by the build"
#endif

namespace sturdy_conformance {

inline constexpr const char* chat_model = "tiny-llama";
inline constexpr const char* embed_model = "tiny-embed";
inline constexpr const char* chat_api_key = "sk-test";
inline constexpr std::size_t embed_dimensions = 64;

enum class server_kind { chat, embed };

namespace detail {

inline std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

/// Runs `command` through /bin/sh; returns its exit status and its stdout.
inline std::pair<int, std::string> run(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "re");
    if (!pipe) throw std::runtime_error("popen failed for: " + command);
    std::string out;
    char buffer[512];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline std::string script_path() {
    std::string path = env("STURDY_LLAMA_SERVER_SH");
    if (path.empty()) path = STURDY_TEST_SOURCE_DIR "/../../shared/peers/llama-server.sh";
    if (::access(path.c_str(), R_OK) != 0)
        throw std::runtime_error("conformance: no llama-server script at " + path +
                                 " (set STURDY_LLAMA_SERVER_SH to ../shared/peers/llama-server.sh)");
    return path;
}

/// Throws unless the server binary exists: `start` would otherwise build it (minutes) in a test.
inline void require_built_server(const std::string& script) {
    const std::string hint = "build it first: bash " + script + " build (about 8 minutes; .ci/run does this)";
    if (std::string bin = env("STURDY_LLAMA_SERVER_BIN"); !bin.empty()) {
        if (::access(bin.c_str(), X_OK) != 0)
            throw std::runtime_error("conformance: STURDY_LLAMA_SERVER_BIN=" + bin + " is not an executable; " + hint);
        return;
    }
    std::string cache = env("STURDY_PEERS_DIR");
    if (cache.empty()) cache = env("HOME") + "/.cache/sturdy-peers";
    const std::string pattern = cache + "/llama-src-*/build/bin/llama-server";
    glob_t found{};
    const bool built = ::glob(pattern.c_str(), 0, nullptr, &found) == 0 && found.gl_pathc > 0;
    ::globfree(&found);
    if (!built) throw std::runtime_error("conformance: llama-server is not built (no " + pattern + "); " + hint);
}

/// A loopback port nobody listens on right now.
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("conformance: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("conformance: no free loopback port");
    return ntohs(addr.sin_port);
}

}  // namespace detail

/// A llama-server of one kind, started by the constructor and stopped by the destructor.
class llama_server {
public:
    /// Starts the server; throws std::runtime_error saying why it could not.
    explicit llama_server(server_kind kind) : script_(detail::script_path()) {
        detail::require_built_server(script_);
        const char* kind_name = kind == server_kind::chat ? "chat" : "embed";
        std::string failure;
        // The port is free when chosen, but another process may take it first: try a few.
        for (int attempt = 0; attempt < 3 && pid_.empty(); ++attempt) {
            const int port = detail::free_port();
            const std::string command = script_command("start " + std::to_string(port) + " " + kind_name);
            // In a session of its own, so a Ctrl-C meant for the tests never reaches the server: only
            // the stopper below signals it.
            auto [status, out] = detail::run("setsid -w " + command + " 2>&1");
            while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
            const std::string pid = out.substr(out.find_last_of('\n') + 1);
            if (status == 0 && !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) {
                pid_ = pid;
                base_url_ = "http://127.0.0.1:" + std::to_string(port) + "/v1";
            } else {
                failure = "conformance: `" + command + "` failed (exit " + std::to_string(status) + "): " + out;
            }
        }
        if (pid_.empty()) throw std::runtime_error(failure);
        // The stopper: a detached subshell (the outer sh exits at once) that runs `stop` when it reads
        // end-of-file on the pipe, which comes when this process closes it: in the destructor, or
        // when the process dies. Exactly one stop: llama-server hangs on a second signal that
        // arrives during its shutdown ("Received second interrupt, terminating immediately").
        const std::string stopper = "exec 3<&0; (read -r line <&3; " + stop_command() + ") </dev/null >/dev/null 2>&1 &";
        stopper_ = ::popen(stopper.c_str(), "we");
        if (!stopper_) {
            detail::run(stop_command());
            throw std::runtime_error("conformance: cannot start the shell that stops llama-server " + pid_);
        }
    }

    /// Stops the server (without waiting for it to exit).
    ~llama_server() { ::pclose(stopper_); }

    llama_server(const llama_server&) = delete;
    llama_server& operator=(const llama_server&) = delete;

    /// "http://127.0.0.1:PORT/v1"
    const std::string& base_url() const noexcept { return base_url_; }

private:
    std::string script_command(const std::string& arguments) const { return "bash " + detail::shell_quote(script_) + " " + arguments; }
    std::string stop_command() const { return script_command("stop " + pid_); }

    std::string script_;
    std::string pid_;
    std::string base_url_;
    FILE* stopper_ = nullptr;
};

namespace detail {

/// A server started once, or why it could not be.
struct shared_server {
    std::unique_ptr<llama_server> server;
    std::string failure;

    explicit shared_server(server_kind kind) {
        try {
            server = std::make_unique<llama_server>(kind);
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    const llama_server& get() const {
        if (!server) throw std::runtime_error(failure);
        return *server;
    }
};

}  // namespace detail

/// The server of this kind, started on first use and stopped when the executable exits. Throws
/// std::runtime_error saying why it could not be started, on this and on every later call.
inline const llama_server& running_server(server_kind kind) {
    if (kind == server_kind::chat) {
        static const detail::shared_server chat(server_kind::chat);
        return chat.get();
    }
    static const detail::shared_server embed(server_kind::embed);
    return embed.get();
}

/// A client of the running server of this kind, with timeouts that fit a local server.
inline sturdy::client client_of(server_kind kind, std::string api_key = {}) {
    sturdy::client_options o;
    o.base_url = running_server(kind).base_url();
    o.api_key = std::move(api_key);
    o.connect_timeout = std::chrono::seconds(2);
    o.timeout = std::chrono::seconds(30);
    return sturdy::client(std::move(o));
}

/// A client of the chat server (model tiny-llama, key sk-test), or with another key.
inline sturdy::client chat_client(std::string api_key = chat_api_key) { return client_of(server_kind::chat, std::move(api_key)); }

/// A client of the embeddings server (model tiny-embed, no key).
inline sturdy::client embed_client() { return client_of(server_kind::embed); }

/// A one-message chat request for tiny-llama, sampled greedily (temperature 0, a fixed seed): the
/// reply is a function of the request, so no test depends on a lucky draw.
inline sturdy::chat_request user_request(std::string prompt, std::optional<int> max_tokens = 16) {
    sturdy::chat_request req{chat_model, {sturdy::chat_message::user(std::move(prompt))}};
    req.max_tokens = max_tokens;
    req.temperature = 0.0;
    req.seed = 42;
    return req;
}

}  // namespace sturdy_conformance
