#pragma once
// A state store that runs every change twice, the first run on a copy it then throws away, as an
// optimistic store does when another writer won the race: a policy whose change does anything but
// change the state (counts, reports, draws a number the next run does not see again) decides
// differently through it than through a store that runs each change once.

#include <sturdy/state_store.hpp>

#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace sturdy_test {

template <class State>
class rerunning_store final : public sturdy::state_store<State> {
public:
    void update(std::string_view key, const State& initial,
                sturdy::detail::function_ref<void(State&)> change) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = states_.find(key);
        if (it == states_.end()) it = states_.emplace(std::string(key), initial).first;
        State lost = it->second;  // the run whose write a conflict turns away
        change(lost);
        change(it->second);
        ++updates_;
    }

    int updates() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return updates_;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, State, std::less<>> states_;
    int updates_ = 0;
};

}  // namespace sturdy_test
