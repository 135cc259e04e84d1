#pragma once
// An outcome as a client's attempt returns it: with what the attempt saw of its reply attached.

#include <sturdy/observation.hpp>
#include <sturdy/result.hpp>

#include <memory>
#include <utility>

namespace sturdy_test {

template <class T>
sturdy::result<T> observed(sturdy::result<T> outcome, sturdy::reply_observation seen) {
    outcome.set_observation(std::make_shared<const sturdy::reply_observation>(std::move(seen)));
    return outcome;
}

}  // namespace sturdy_test
