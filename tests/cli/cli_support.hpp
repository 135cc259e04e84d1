#pragma once
// What the CLI tests share: running `sturdy`, reading its output, a port nothing listens on.

#include "run_process.hpp"
#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#ifndef STURDY_CLI_PATH
#  error "STURDY_CLI_PATH (the path of the sturdy program) must be defined"
#endif

namespace sturdy_cli_test {

inline process_result sturdy(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    return run_process(STURDY_CLI_PATH, args, env);
}

/// `sturdy` pointed at `base_url`; `args` start with the command.
inline process_result sturdy_at(const std::string& base_url, std::vector<std::string> args,
                                const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), "--base-url=" + base_url);  // first: the rest stays as the test wrote it
    return sturdy(std::move(args), env);
}

inline std::size_t lines_in(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

/// stdout holds exactly one line, a JSON object (its keys in the order printed).
inline nlohmann::ordered_json one_json_line(const process_result& r) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(lines_in(r.out) == 1);
    REQUIRE(r.out.back() == '\n');
    auto j = nlohmann::ordered_json::parse(r.out);
    REQUIRE(j.is_object());
    return j;
}

/// A failure: status 1, nothing on stdout unless said, one error line starting with `prefix`.
inline void check_failure(const process_result& r, const std::string& prefix) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(lines_in(r.err) == 1);
    CHECK(r.err.back() == '\n');
    CHECK(r.err.rfind(prefix, 0) == 0);
    CHECK(r.err.size() > prefix.size() + 1);  // a message follows
}

/// A usage error: status 2, nothing on stdout, one line "error: usage: ...".
inline void check_usage_error(const process_result& r) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(lines_in(r.err) == 1);
    CHECK(r.err.rfind("error: usage: ", 0) == 0);
}

/// The body of a chat completion from `model`, answering "ok", with `usage` (a JSON object).
inline std::string chat_completion(const std::string& model, const std::string& usage) {
    return R"({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": ")" + model +
           R"(", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],)"
           R"( "usage": )" +
           usage + "}";
}

/// A usage object; `details`, if any, is appended inside it (e.g. `"prompt_tokens_details": {...}`).
inline std::string usage_of(int prompt, int completion, const std::string& details = {}) {
    return R"({"prompt_tokens": )" + std::to_string(prompt) + R"(, "completion_tokens": )" +
           std::to_string(completion) + R"(, "total_tokens": )" + std::to_string(prompt + completion) +
           (details.empty() ? "" : ", " + details) + "}";
}

/// The data of one chunk of a streamed chat completion: `delta` and `finish_reason` as JSON.
inline std::string chat_chunk(const std::string& delta, const std::string& finish_reason = "null") {
    return R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": )"
           R"([{"index": 0, "delta": )" +
           delta + R"(, "finish_reason": )" + finish_reason + "}]}";
}

/// The data of a stream's last chunk, its usage (`stream_options.include_usage`).
inline std::string usage_chunk(const std::string& usage) {
    return R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],)"
           R"( "usage": )" +
           usage + "}";
}

/// A port nothing listens on: bound once to get a free one, then closed.
inline int refused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace sturdy_cli_test
