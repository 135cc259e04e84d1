#pragma once
/// @file
/// Cooperative cancellation: a source cancels, tokens observe, callbacks wake blocked waits.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sturdy {

namespace detail {

struct cancellation_state {
    std::atomic<bool> cancelled{false};
    std::mutex mutex;
    std::uint64_t next_id = 1;
    std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;

    void cancel() {
        std::lock_guard<std::mutex> lock(mutex);
        if (cancelled.exchange(true)) return;
        // Run under the lock, so a registration that is being removed can never fire afterwards.
        for (auto& entry : callbacks) entry.second();
    }
};

}  // namespace detail

/// Unregisters its callback when destroyed; after that the callback will not run.
class cancellation_registration {
public:
    cancellation_registration() = default;
    cancellation_registration(std::shared_ptr<detail::cancellation_state> state, std::uint64_t id)
        : state_(std::move(state)), id_(id) {}
    cancellation_registration(cancellation_registration&& other) noexcept
        : state_(std::move(other.state_)), id_(other.id_) {}
    cancellation_registration& operator=(cancellation_registration&& other) noexcept {
        if (this != &other) {
            reset();
            state_ = std::move(other.state_);
            id_ = other.id_;
        }
        return *this;
    }
    cancellation_registration(const cancellation_registration&) = delete;
    cancellation_registration& operator=(const cancellation_registration&) = delete;
    ~cancellation_registration() { reset(); }

    void reset() {
        if (!state_) return;
        std::lock_guard<std::mutex> lock(state_->mutex);
        auto& cbs = state_->callbacks;
        for (auto it = cbs.begin(); it != cbs.end(); ++it) {
            if (it->first == id_) {
                cbs.erase(it);
                break;
            }
        }
        state_.reset();
    }

private:
    std::shared_ptr<detail::cancellation_state> state_;
    std::uint64_t id_ = 0;
};

/// Observes a cancellation_source. A default-constructed token is never cancelled and costs nothing.
class cancellation_token {
public:
    cancellation_token() = default;

    bool cancelled() const noexcept { return state_ && state_->cancelled.load(std::memory_order_acquire); }
    /// Whether this token can ever be cancelled.
    bool cancellable() const noexcept { return static_cast<bool>(state_); }

    /// Runs `callback` once when cancelled (at once if already). It runs on the cancelling thread,
    /// under a lock: keep it short and do not touch this token from it.
    cancellation_registration on_cancel(std::function<void()> callback) const {
        if (!state_) return {};
        std::unique_lock<std::mutex> lock(state_->mutex);
        if (state_->cancelled.load()) {
            lock.unlock();
            callback();
            return {};
        }
        auto id = state_->next_id++;
        state_->callbacks.emplace_back(id, std::move(callback));
        return {state_, id};
    }

private:
    friend class cancellation_source;
    explicit cancellation_token(std::shared_ptr<detail::cancellation_state> state) : state_(std::move(state)) {}
    std::shared_ptr<detail::cancellation_state> state_;
};

/// Owns a cancellation: `cancel()` fires every token taken from it.
///
///     sturdy::cancellation_source stop;
///     sturdy::request_options opts;
///     opts.cancel = stop.token();
///     // on another thread: stop.cancel();
class cancellation_source {
public:
    cancellation_source() : state_(std::make_shared<detail::cancellation_state>()) {}

    /// A source that also cancels when `parent` does.
    explicit cancellation_source(const cancellation_token& parent) : cancellation_source() {
        auto child = state_;
        link_ = parent.on_cancel([child] { child->cancel(); });
    }

    cancellation_token token() const { return cancellation_token(state_); }
    void cancel() const { state_->cancel(); }
    bool cancelled() const noexcept { return state_->cancelled.load(std::memory_order_acquire); }

private:
    std::shared_ptr<detail::cancellation_state> state_;
    cancellation_registration link_;
};

}  // namespace sturdy
