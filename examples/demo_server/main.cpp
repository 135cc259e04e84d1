// sturdy-demo-server: the demo server as a program, for trying sturdy's examples and CLI against
// a local OpenAI-compatible API, and for injecting faults over HTTP (see README.md).
//
//   sturdy-demo-server [--port N] [--host H] [--api-key KEY] [--chunk-delay-ms N]
//                      [--context-window N] [--strict-models] [--quiet]
#include "demo_server.hpp"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace {

void usage(std::ostream& out) {
  out << "usage: sturdy-demo-server [--port N] [--host H] [--api-key KEY] [--chunk-delay-ms N]\n"
         "                          [--context-window N] [--strict-models] [--quiet]\n"
         "  --port N            port to listen on (default 8080; 0 picks a free one)\n"
         "  --host H            address to bind (default 127.0.0.1)\n"
         "  --api-key KEY       require 'Authorization: Bearer KEY' (default: accept anything)\n"
         "  --chunk-delay-ms N  pause between streamed chunks (default 0)\n"
         "  --context-window N  longer prompts (in words) get context_length_exceeded (default "
         "4096)\n"
         "  --strict-models     404 for models other than demo-mini, demo-large, demo-embed\n"
         "  --quiet             do not log requests\n";
}

int to_int(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    const int n = std::stoi(value, &used);
    if (used == value.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + " needs a non-negative integer, not '" + value + "'");
}

}  // namespace

int main(int argc, char** argv) {
  sturdy_demo::options opts;
  int port = 8080;
  bool quiet = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--port") {
        port = to_int(arg, value());
      } else if (arg == "--host") {
        opts.host = value();
      } else if (arg == "--api-key") {
        opts.api_key = value();
      } else if (arg == "--chunk-delay-ms") {
        opts.chunk_delay = std::chrono::milliseconds(to_int(arg, value()));
      } else if (arg == "--context-window") {
        opts.context_window = to_int(arg, value());
      } else if (arg == "--strict-models") {
        opts.strict_models = true;
      } else if (arg == "--quiet") {
        quiet = true;
      } else if (arg == "--help" || arg == "-h") {
        usage(std::cout);
        return 0;
      } else {
        throw std::invalid_argument("unknown option " + arg);
      }
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "sturdy-demo-server: " << e.what() << "\n";
    usage(std::cerr);
    return 2;
  }

  if (!quiet) {
    // Called from the server's threads; the mutex keeps lines whole.
    opts.log = [mutex = std::make_shared<std::mutex>()](const std::string& line) {
      std::lock_guard<std::mutex> lock(*mutex);
      std::cout << line << std::endl;
    };
  }

  // Block SIGINT and SIGTERM before any thread starts (threads inherit the mask), then wait for
  // them with sigwait: no code has to run inside a signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  sturdy_demo::server server(opts);
  try {
    server.start(port);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  std::cout << "listening on " << server.base_url() << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  server.stop();
  std::cout << "stopped" << std::endl;
  return 0;
}
