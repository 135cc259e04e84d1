#pragma once
/// @file
/// Policies chosen at run time: `any_policy` holds any policy, `dynamic_pipeline` a list of them.
///
///     sturdy::dynamic_pipeline policies;
///     if (config.retries > 0) policies.add(sturdy::retry_policy(config.retries));
///     if (config.breaker) policies.add(breaker);
///     sturdy::basic_client<sturdy::curl_transport, sturdy::dynamic_pipeline> client(options, policies);
///
/// They cost one allocation per attempt and policy (the outcome is boxed to cross the type
/// erasure); static composition (pipeline.hpp) costs nothing.

#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/detail/function_ref.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

namespace detail {

using boxed_outcome = result<std::shared_ptr<void>>;
using boxed_attempt = function_ref<boxed_outcome(call_context&)>;

struct policy_concept {
    virtual ~policy_concept() = default;
    virtual boxed_outcome run(call_context& ctx, boxed_attempt attempt) const = 0;
};

template <class Policy>
struct policy_model final : policy_concept {
    explicit policy_model(Policy p) : policy(std::move(p)) {}
    boxed_outcome run(call_context& ctx, boxed_attempt attempt) const override { return policy.execute(ctx, attempt); }
    Policy policy;
};

}  // namespace detail

/// Any policy, behind one type. Copies share the policy (and so its state).
class any_policy {
public:
    any_policy() : any_policy(no_policy{}) {}

    template <class Policy, class = std::enable_if_t<!std::is_same_v<std::decay_t<Policy>, any_policy>>>
    any_policy(Policy policy)  // NOLINT: implicit, so policies of any type convert
        : self_(std::make_shared<const detail::policy_model<Policy>>(std::move(policy))) {}

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        using outcome = decltype(attempt(ctx));
        using value = typename outcome::value_type;
        auto boxed = [&attempt](call_context& inner) -> detail::boxed_outcome {
            outcome r = attempt(inner);
            if (!r) return r.error();
            return std::shared_ptr<void>(std::make_shared<value>(std::move(*r)));
        };
        detail::boxed_outcome out = self_->run(ctx, boxed);
        if (!out) return out.error();
        return std::move(*std::static_pointer_cast<value>(*out));
    }

private:
    std::shared_ptr<const detail::policy_concept> self_;
};

/// A list of policies decided at run time; they run outer to inner in the order added.
class dynamic_pipeline {
public:
    dynamic_pipeline() = default;
    dynamic_pipeline(std::initializer_list<any_policy> policies) : policies_(policies) {}

    /// Adds a policy inside the ones already added.
    dynamic_pipeline& add(any_policy policy) {
        policies_.push_back(std::move(policy));
        return *this;
    }
    std::size_t size() const noexcept { return policies_.size(); }

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        return run(0, ctx, attempt);
    }

private:
    template <class Attempt>
    auto run(std::size_t i, call_context& ctx, Attempt& attempt) const -> decltype(attempt(ctx)) {
        if (i == policies_.size()) return attempt(ctx);
        return policies_[i].execute(ctx, [&](call_context& inner) -> decltype(attempt(inner)) { return run(i + 1, inner, attempt); });
    }

    std::vector<any_policy> policies_;
};

}  // namespace sturdy
