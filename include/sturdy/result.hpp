#pragma once
/// @file
/// `result<T>`: a value or a `sturdy::error`, for code that avoids exceptions.

#include <sturdy/error.hpp>

#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

namespace sturdy {

struct reply_observation;  // observation.hpp

/// A value or the error that prevented it. Tests true when it holds a value.
///
///     auto r = client.try_chat(request);
///     if (!r) std::cerr << r.error().what() << "\n";
///     else    std::cout << r->content() << "\n";
template <class T>
class result {
    static_assert(!std::is_same_v<T, sturdy::error>, "result<error> is ambiguous");

public:
    using value_type = T;

    result(T value) : state_(std::in_place_index<0>, std::move(value)) {}                  // NOLINT: implicit by design
    result(sturdy::error failure) : state_(std::in_place_index<1>, std::move(failure)) {}  // NOLINT: implicit by design

    bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; throws the error when there is none.
    T& value() & { return get_or_throw(*this); }
    const T& value() const& { return get_or_throw(*this); }
    T&& value() && { return std::move(get_or_throw(*this)); }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    /// The error. Precondition: `!has_value()` (otherwise std::bad_variant_access).
    const sturdy::error& error() const& { return std::get<1>(state_); }
    sturdy::error& error() & { return std::get<1>(state_); }

    /// What the attempt that made this outcome saw of its reply (status, headers, usage, latency;
    /// observation.hpp). Null for an outcome no attempt of a client made, such as a policy's refusal.
    const reply_observation* observation() const noexcept { return seen_.get(); }
    /// Attaches what the attempt saw; the client's attempts do, policies pass it on with the outcome.
    void set_observation(std::shared_ptr<const reply_observation> seen) noexcept { seen_ = std::move(seen); }

    template <class U>
    T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
    }

private:
    template <class Self>
    static auto& get_or_throw(Self& self) {
        if (!self.has_value()) throw std::get<1>(self.state_);
        return std::get<0>(self.state_);
    }

    std::variant<T, sturdy::error> state_;
    std::shared_ptr<const reply_observation> seen_;
};

}  // namespace sturdy
