#pragma once
// `sturdy bench`: the same chat call made many times to each target, and what that measured.

#include "arguments.hpp"
#include "output.hpp"

#include <sturdy/sturdy.hpp>

namespace sturdy_cli {

/// Sends PROMPT --requests times to each target in turn (--target, else --base-url and --model),
/// --concurrency calls at a time, and prints a table per target, or with --json one object.
/// A call's error is counted, not thrown: only an unexpected failure of the tool itself throws.
/// `options` are the client's settings, each target's base URL put in.
void bench(const arguments& args, const sturdy::client_options& options, output& out);

}  // namespace sturdy_cli
