#pragma once
// A policy of a user's own, in blocking form: it records the order in which policies are entered
// and left.

#include <sturdy/policy.hpp>

#include <string>
#include <vector>

namespace sturdy_test {

struct tracer {
    std::string name;
    std::vector<std::string>* log;
    template <class Attempt>
    auto execute(sturdy::call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        log->push_back(name + "+");
        auto r = attempt(ctx);
        log->push_back(name + "-");
        return r;
    }
};

}  // namespace sturdy_test
